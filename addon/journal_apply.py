"""The recorder process's side of the journal: apply it to the store exactly once, then delete it.

Runs in the worker process (addon/worker.py) of the live proxy and of `runtap recover`. One
applier at a time per journal (`apply.lock`): an orphaned recorder (its proxy was killed)
finishes what was journaled before a new one starts.

- Start where the store says it stopped: the journal position committed with the rows
  (`runtap_meta.journal_position`, store/writer.py). Everything after it is applied; what the
  store already has is never applied twice, however the previous recorder ended.
- Tail the newest segment while the proxy appends to it (polling every POLL_SECONDS: the
  recorder is 20 ms behind at most, the client never waits for it). A segment is finished once
  a newer one exists; a torn record at its end (the process died while writing it) is skipped.
- Each record's rows go to the store writer with the position just past the record; after
  each commit the segments before the committed one are deleted, so the journal stays about
  one segment long once the recorder has caught up.
- Told to stop (the proxy is closing, or gone: EOF on stdin), apply what the journal holds up
  to the newest segment at that moment, commit, delete the applied segments, return.
- `careful_until`: after repeated crashes, records before that position are applied one at a
  time, each announced on stdout first (`trying SEG OFFSET`) and committed alone, so the proxy
  learns which record crashes the process; `quarantine` lists records to move aside instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from runtap.addon.flows import CapturedFlow, to_exchange
from runtap.addon.journal import (
    CAPTURE,
    FLOW,
    HEADER,
    QUARANTINE,
    JournalLock,
    decode_payload,
    frame,
    parse,
    resync,
    segment_path,
    segments,
)
from runtap.addon.normalize import normalize
from runtap.store.reader import connect_with_retry
from runtap.store.writer import StoreWriter, read_journal_position

log = logging.getLogger("runtap.addon")

POLL_SECONDS = 0.02
READ_BYTES = 1 << 20
Position = tuple[int, int]


@dataclass
class ApplyCounts:
    """What one applier did."""

    exchanges: int = 0  # flow records applied
    recovered: int = 0  # of those, the ones journaled before this process started
    failed: int = 0  # records that could not be read or normalized (skipped)
    quarantined: int = 0  # records moved aside


class SegmentReader:
    """Reads the complete records of one segment from an offset, as they are appended."""

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.offset = offset
        self.skipped = 0  # damaged bytes passed over
        self._want = READ_BYTES
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> list[tuple[int, int, bytes]]:
        """The complete records after `offset` (absolute start, end, payload); advances past them."""
        data = os.pread(self._fd, self._want, self.offset)
        records, stop, state = parse(data)
        self._want = READ_BYTES
        if state == "incomplete" and not records and len(data) >= HEADER.size:
            self._want = max(READ_BYTES, HEADER.size + HEADER.unpack_from(data, 0)[1])  # a big one
        elif state == "damaged":
            found = resync(data, stop)
            if found is not None:
                log.error(
                    "runtap recorder: %d damaged bytes in journal segment %s at offset %d skipped",
                    found - stop,
                    self.path,
                    self.offset + stop,
                )
                self.skipped += found - stop
                stop = found
        base = self.offset
        self.offset += stop
        return [(base + start, base + end, payload) for start, end, payload in records]

    def leftover(self) -> int:
        """Bytes after `offset`: the torn or damaged tail of a finished segment."""
        return max(0, os.fstat(self._fd).st_size - self.offset)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


class JournalApplier:
    """Applies one store's journal (see the module docstring)."""

    def __init__(
        self,
        db: str,
        directory: str,
        writer: StoreWriter,
        *,
        redact: tuple[str, ...] = (),
        say: Callable[[str], None] = lambda line: None,
        control: Callable[[float], str | None] = lambda timeout: None,
        quarantine: set[Position] = frozenset(),
        careful_until: Position | None = None,
        stop: bool = False,
        recover_until: Position | None = None,
    ) -> None:
        self.db = db
        self.directory = directory
        self.writer = writer
        self.redact = redact
        self.say = say
        self.control = control  # waits up to `timeout` for the parent; "stop" when it is done
        self.quarantine = set(quarantine)
        self.careful_until = careful_until
        self.counts = ApplyCounts()
        self._stop_at: int | None = None
        self._stop_requested = stop
        self._capture_id: str | None = None
        self._captures: set[str] = set()
        self._start: Position | None = None  # where the store stood when this process began
        self._put: Position | None = None  # last position handed to the writer
        # Records up to here were journaled before this process said it was ready (the proxy's new
        # segment comes after that): applying them is recovering; `journal_end()` gives it.
        self._recovered_until = recover_until
        self._recovered_at: Position | None = None  # log the recovery once committed up to here
        self._lock = threading.Lock()
        writer.on_commit = self._committed

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> ApplyCounts:
        """Apply until told to stop; return the counts. The store writer is left open."""
        lock = JournalLock(self.directory, "apply.lock")
        if not self._acquire(lock):
            return self.counts  # told to stop while an earlier recorder was still applying
        try:
            self._run()
        finally:
            lock.release()
        return self.counts

    def _acquire(self, lock: JournalLock) -> bool:
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory, exist_ok=True)
        waited = False
        while not lock.acquire(blocking=False):
            if not waited:
                log.info("runtap recorder: waiting for the previous recorder process to finish the journal")
                waited = True
            if self._stop_requested or self.control(0.1) == "stop":
                return False
        return True

    def _run(self) -> None:
        position = read_journal_position(self.db)
        self._put = self._start = position
        self._captures = _capture_ids(self.db)
        present = segments(self.directory)
        self._delete_before(position[0] if position else 0)
        current, offset = None, 0
        reader: SegmentReader | None = None
        if self._stop_requested:
            self._stop_at = present[-1] if present else 0
        try:
            while True:
                if reader is None:
                    current = self._next_segment(current, position)
                    if current is not None:
                        offset = position[1] if position and position[0] == current else 0
                        reader = SegmentReader(segment_path(self.directory, current), offset)
                if reader is not None:
                    records = reader.read()
                    if records:
                        for start, end, payload in records:
                            self._apply(current, start, end, payload)
                        continue
                    if self._next_segment(current, None) is not None:
                        # Finished: the proxy wrote its last records here before starting the next.
                        records = reader.read()
                        for start, end, payload in records:
                            self._apply(current, start, end, payload)
                        if records:
                            continue
                        self._finish_segment(reader)
                        reader, position = None, None
                        continue
                self._idle()
                if self._stop_at is not None and (current is None or current >= self._stop_at):
                    if reader is not None:
                        self._finish_segment(reader)  # says if its tail was torn
                        reader = None
                    break
                if self.control(POLL_SECONDS) == "stop" and self._stop_at is None:
                    self._stop_at = max(segments(self.directory), default=0)
        finally:
            if reader is not None:
                reader.close()

    def finish(self, timeout: float) -> None:
        """After `run`: write everything (the writer is closed), then delete what is applied."""
        self.writer.close(timeout)
        committed = self.writer.position or self._start
        if self._stop_at is not None and committed == self._put:
            self._delete_before(self._stop_at + 1)

    # --- one record -------------------------------------------------------------------------------
    def _apply(self, segment: int, start: int, end: int, payload: bytes) -> None:
        position = (segment, end)
        careful = self.careful_until is not None and (segment, start) < self.careful_until
        rows: dict = {}
        if (segment, start) in self.quarantine:
            self._move_aside(segment, start, payload)
        else:
            if careful:
                self.say(f"trying {segment} {start}")
            rows = self._rows(payload, position)
        self.writer.put(rows, block=True, position=position)
        self._put = position
        if careful:
            self.writer.flush()
        elif self.careful_until is not None:
            self.careful_until = None  # past the records that crashed it: batches again

    def _rows(self, payload: bytes, position: Position) -> dict:
        try:
            record = decode_payload(payload)
            if record[0] == CAPTURE:
                self._capture_id = record[1]
                if record[1] in self._captures:
                    return {}
                self._captures.add(record[1])
                return {"captures": [_capture_row(record)]}
            if record[0] != FLOW:
                raise ValueError(f"unknown record kind {record[0]!r}")
            captured = CapturedFlow(*record[1:])
            rows = normalize(to_exchange(captured, self._capture_id), redact_extra=self.redact)
        except Exception as exc:  # a record this version cannot read; normalize itself never raises
            self.counts.failed += 1
            log.error("runtap recorder: journal record at %d:%d skipped: %s", position[0], position[1], exc)
            return {}
        self.counts.exchanges += 1
        if self._recovered_until is not None and position <= self._recovered_until:
            self.counts.recovered += 1
        return rows

    def _move_aside(self, segment: int, start: int, payload: bytes) -> None:
        path = os.path.join(self.directory, QUARANTINE)
        with open(path, "ab") as fh:
            fh.write(frame(payload))
        self.counts.quarantined += 1
        log.error(
            "runtap recorder: the exchange at journal position %d:%d crashed the recorder repeatedly; "
            "moved it aside to %s (not recorded) and went on",
            segment,
            start,
            path,
        )

    # --- segments -----------------------------------------------------------------------------------
    def _next_segment(self, current: int | None, position: Position | None) -> int | None:
        after = current if current is not None else (position[0] - 1 if position else -1)
        for number in segments(self.directory):
            if number > after and (self._stop_at is None or number <= self._stop_at):
                return number
        return None

    def _finish_segment(self, reader: SegmentReader) -> None:
        torn = reader.leftover()
        if torn:
            log.warning(
                "runtap recorder: journal segment %s ends with %d bytes of a record cut off by a crash "
                "(written while the process died: its client got no response); skipped",
                reader.path,
                torn,
            )
        reader.close()

    def _idle(self) -> None:
        """Nothing to read: the journal of earlier runs is in; log the recovery once committed."""
        if self._recovered_until is not None:
            self._recovered_until = None
            with self._lock:
                self._recovered_at = self._put
            if self.writer.position is not None and self._put is not None and self.writer.position >= self._put:
                self._committed(self.writer.position)

    def _committed(self, position: Position) -> None:
        """Writer thread, after each commit: report it, delete the segments before it."""
        self.say(f"applied {position[0]} {position[1]}")
        self._delete_before(position[0])
        with self._lock:
            due = self._recovered_at is not None and position >= self._recovered_at
            if due:
                self._recovered_at = None
        if due:  # said whenever the journal held segments at start: 0 is an answer too
            log.warning(
                "runtap recorder: recovered %d exchanges from the journal %s into %s",
                self.counts.recovered,
                self.directory,
                self.db,
            )

    def _delete_before(self, number: int) -> None:
        for old in segments(self.directory):
            if old >= number:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(segment_path(self.directory, old))


def journal_end(directory: str) -> Position | None:
    """(newest segment, its size) of the journal in `directory`, None when it has no segment."""
    present = segments(directory)
    if not present:
        return None
    with contextlib.suppress(FileNotFoundError):
        return present[-1], os.path.getsize(segment_path(directory, present[-1]))
    return None


def _capture_row(record: tuple) -> dict:
    _, capture_id, started_at, upstream, mode, tool_version, source = record
    return {
        "capture_id": capture_id,
        "started_at": datetime.fromtimestamp(started_at, UTC),
        "upstream": upstream,
        "mode": mode,
        "tool_version": tool_version,
        "source": source,
    }


def _capture_ids(db: str) -> set[str]:
    con = connect_with_retry(db, read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT capture_id FROM captures").fetchall()}
    finally:
        con.close()
