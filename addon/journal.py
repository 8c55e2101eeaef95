"""The journal: every recorded exchange is on disk before its client has the whole response.

The proxy appends each exchange here, on mitmproxy's event loop, at hand-over time (see
addon/recorder.py for exactly when); the recorder process (addon/journal_apply.py) tails the
journal into the store and commits how far it got in the same DuckDB transaction as the rows.
So the journal is both the hand-off between the two processes and what survives a crash.

Layout, beside the store: `<db>.journal/`

    000000000007.seg   segments, numbered upwards; the proxy appends to the newest one and
    000000000008.seg   starts the next after SEGMENT_BYTES; the recorder deletes a segment
                       once everything in it is in the store
    writer.lock        flock held by the proxy that appends (one proxy per store)
    apply.lock         flock held by the recorder process that applies (one at a time)
    quarantine.seg     records that crashed the recorder again and again, moved aside

Record format (little-endian), back to back in a segment:

    4 bytes  marker b"rtj1" (format version 1; also where a reader resynchronizes)
    4 bytes  payload length N
    4 bytes  CRC-32 of (the 4 length bytes + payload): a torn or zeroed tail fails it
    N bytes  payload: `marshal` (version 4) of a tuple of plain values:
             (CAPTURE, capture_id, started_at, upstream, mode, tool_version, source), first in
             every segment, so each segment says which capture its flows belong to; or
             (FLOW, *CapturedFlow fields in declaration order), see addon/flows.py.

marshal, not pickle: the payload is builtins only, and marshal writes it ~3x faster, on the
event loop. A record is written with one `write()`; a process killed in the middle leaves a
torn record at the end of its last segment, which the reader detects and skips (its client
never got a response: the record is written before the last byte is sent).

Durability: `write()` puts the record in the OS page cache, which survives the death of the
process (SIGKILL, OOM kill). With `fsync=True` the writer also fsyncs, batched: one background
thread fsyncs whatever was appended since its last fsync, and `synced(ticket)` lets the
response wait for it (group commit), so power loss cannot lose an exchange a client has.

Bound: past `limit_bytes` of journal not yet in the store (the recorder is dead or the store
stays locked), new exchanges are not journaled and so not recorded, with one warning per
episode and a count; traffic always passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import marshal
import os
import struct
import threading
import zlib

from runtap.errors import RuntapError

log = logging.getLogger("runtap.addon")

MARKER = b"rtj1"
HEADER = struct.Struct("<4sII")
_LENGTH = struct.Struct("<I")
CAPTURE, FLOW = 0, 1
SEGMENT_BYTES = 1 << 20
DEFAULT_LIMIT_MB = 1024
SUFFIX = ".seg"
QUARANTINE = "quarantine.seg"


def journal_dir(db: str) -> str:
    """The journal directory of the store at `db`."""
    return db + ".journal"


def segment_path(directory: str, number: int) -> str:
    """Path of segment `number` in `directory`."""
    return os.path.join(directory, f"{number:012d}{SUFFIX}")


def segments(directory: str) -> list[int]:
    """Numbers of the segments in `directory`, ascending (none when it does not exist)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(n[: -len(SUFFIX)]) for n in names if n.endswith(SUFFIX) and n[: -len(SUFFIX)].isdigit())


def journal_bytes(directory: str) -> int:
    """Total size of the segments in `directory`."""
    total = 0
    for number in segments(directory):
        with contextlib.suppress(FileNotFoundError):  # applied and deleted meanwhile
            total += os.stat(segment_path(directory, number)).st_size
    return total


def encode(record: tuple) -> bytes:
    """One record: header + marshalled payload."""
    return frame(marshal.dumps(record, 4))


def frame(payload: bytes) -> bytes:
    """A payload with its record header."""
    length = _LENGTH.pack(len(payload))
    return MARKER + length + _LENGTH.pack(zlib.crc32(payload, zlib.crc32(length))) + payload


def decode_payload(payload: bytes) -> tuple:
    """The tuple a record's payload holds."""
    return marshal.loads(payload)


def parse(data: bytes, start: int = 0) -> tuple[list[tuple[int, int, bytes]], int, str]:
    """Parse the complete records in `data` from `start`.

    Returns (records as (start, end, payload), offset where parsing stopped, state): state is
    "end" (all of `data` parsed), "incomplete" (a record continues past `data`: still being
    written, or torn) or "damaged" (bytes at the offset are not a valid record).
    """
    records = []
    offset, size = start, len(data)
    while offset < size:
        if size - offset < HEADER.size:
            return records, offset, "incomplete" if MARKER.startswith(data[offset : offset + 4]) else "damaged"
        marker, length, crc = HEADER.unpack_from(data, offset)
        if marker != MARKER or length == 0:
            return records, offset, "damaged"
        end = offset + HEADER.size + length
        if end > size:
            return records, offset, "incomplete"
        payload = data[offset + HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(data[offset + 4 : offset + 8])) != crc:
            return records, offset, "damaged"
        records.append((offset, end, payload))
        offset = end
    return records, offset, "end"


def resync(data: bytes, start: int) -> int | None:
    """Offset of the next valid (or still incomplete) record after damage at `start`, or None."""
    offset = data.find(MARKER, start + 1)
    while offset != -1:
        records, _, state = parse(data, offset)
        if records or state == "incomplete":
            return offset
        offset = data.find(MARKER, offset + 1)
    return None


class JournalLock:
    """An exclusive flock on a file in the journal directory (released when the process dies)."""

    def __init__(self, directory: str, name: str) -> None:
        self.path = os.path.join(directory, name)
        self._fd: int | None = None

    def acquire(self, blocking: bool) -> bool:
        """Take the lock; False when another process holds it (and `blocking` is False)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Let go (closing the file releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class JournalWriter:
    """Appends records to the journal of one store; used on the proxy's event loop.

    `lock()` first (RuntapError when another proxy records to the same store), then `open(after)`
    with the segment number the store has applied up to, so new segments always come after it.
    """

    def __init__(
        self,
        db: str,
        capture: tuple,
        *,
        limit_bytes: int = DEFAULT_LIMIT_MB << 20,
        fsync: bool = False,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.db = db
        self.directory = journal_dir(db)
        self.capture = capture
        self.limit_bytes = limit_bytes
        self.segment_bytes = segment_bytes
        self.dropped = 0  # exchanges not journaled (limit reached, write failed)
        self.appended = 0  # bytes appended so far: the ticket `synced` waits for
        self.segment = 0
        self._fd: int | None = None
        self._offset = 0
        self._sizes: dict[int, int] = {}  # finished segments not yet applied -> their size
        self._applied: tuple[int, int] | None = None  # what the recorder process last committed
        self._unapplied = 0  # journal bytes after `_applied`: what the limit bounds
        self._full = False  # inside an episode of the limit (one error line each)
        self._failing: str | None = None
        self._lock = JournalLock(self.directory, "writer.lock")
        self._syncer = _Syncer(self) if fsync else None

    # --- life cycle ---------------------------------------------------------------------------
    def lock(self) -> None:
        """Become the one proxy appending to this journal; RuntapError if another one is."""
        try:
            acquired = self._lock.acquire(blocking=False)
        except OSError as exc:
            raise RuntapError(f"cannot create the journal {self.directory}: {exc.strerror}") from None
        if not acquired:
            raise RuntapError(
                f"another runtap proxy is recording to {self.db} (its journal {self.directory} is in use)"
            )

    def open(self, after: int) -> None:
        """Start a new segment numbered after `after` and after every existing one."""
        present = segments(self.directory)
        for number in present:  # earlier runs' segments, applied or not: count them until told
            with contextlib.suppress(FileNotFoundError):
                self._sizes[number] = os.path.getsize(segment_path(self.directory, number))
        self._unapplied = sum(self._sizes.values())
        self.segment = max([after, *present])
        if not self._rotate():
            raise RuntapError(f"cannot write the journal {self.directory}: {self._failing}")
        if self._syncer is not None:
            self._syncer.start()

    def close(self) -> None:
        """Stop appending (fsync first with `fsync=True`), release the lock."""
        if self._syncer is not None:
            self._syncer.stop()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lock.release()
        if self.dropped:
            log.warning("runtap: %d exchanges were not recorded (journal full or not writable)", self.dropped)

    # --- appending ----------------------------------------------------------------------------
    def append(self, record: tuple) -> int:
        """Write one record; return its ticket for `synced`, or 0 when it was not journaled."""
        data = encode(record)
        if self._unapplied + len(data) > self.limit_bytes:
            self._limit_reached()
            return 0
        rotate = self._fd is None or self._offset >= self.segment_bytes
        if rotate and not self._rotate() and self._fd is None:  # else: go on in the current segment
            self.dropped += 1
            return 0
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            written, error = 0, exc.strerror
        else:
            error = None if written == len(data) else "short write (disk full?)"
        if error is not None:
            self._write_failed(error, written)
            return 0
        if self._failing is not None:
            log.warning("runtap: the journal %s is writable again; recording resumes", self.directory)
            self._failing = None
        self._offset += written
        self._unapplied += written
        self.appended += written
        if self._syncer is not None:
            self._syncer.wake()
        return self.appended

    async def synced(self, ticket: int) -> None:
        """Wait until the fsync thread has synced up to `ticket` (at once without `fsync`)."""
        if self._syncer is not None and ticket:
            await self._syncer.wait(ticket)

    def end(self) -> tuple[int, int]:
        """(segment, offset) just past the last record appended."""
        return self.segment, self._offset

    def pending_bytes(self) -> int:
        """Journal bytes the recorder process has not reported applied yet."""
        return self._unapplied

    def applied(self, position: tuple[int, int]) -> None:
        """The recorder process committed up to `position`: what is before it no longer counts."""
        self._applied = position
        segment, offset = position
        for number in [n for n in self._sizes if n < segment]:
            del self._sizes[number]
        if segment == self.segment:
            self._unapplied = max(0, self._offset - offset)
        else:
            newer = sum(size for number, size in self._sizes.items() if number > segment)
            self._unapplied = max(0, self._sizes.get(segment, 0) - offset) + newer + self._offset
        if self._full and self._unapplied < self.limit_bytes // 2:
            self._full = False
            log.warning(
                "runtap: the recorder caught up; recording resumes (%d exchanges were not recorded so far)",
                self.dropped,
            )

    # --- internals ----------------------------------------------------------------------------
    def _rotate(self) -> bool:
        """Finish the current segment and start the next one, its capture record first."""
        number = self.segment + 1
        try:
            fd = os.open(
                segment_path(self.directory, number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
            )
            head = encode((CAPTURE, *self.capture))
            os.write(fd, head)
        except OSError as exc:
            self._write_failed(exc.strerror, 0)
            return False  # keep appending to the current segment, if there is one
        old, previous, self.segment = self._fd, self.segment, number
        if old is not None:
            self._sizes[previous] = self._offset
        self._offset = len(head)
        if self._syncer is not None:
            self._syncer.switch(old, fd)
        else:
            self._fd = fd
            if old is not None:
                os.close(old)
        self.appended += len(head)
        self._unapplied += len(head)
        return True

    def _limit_reached(self) -> None:
        self.dropped += 1
        if not self._full:
            self._full = True
            log.error(
                "runtap: the journal %s holds %d MB that the recorder process has not written to the store "
                "(limit %d MB: runtap_journal_limit): new exchanges are NOT recorded until it catches up; "
                "traffic still passes",
                self.directory,
                self._unapplied >> 20,
                self.limit_bytes >> 20,
            )

    def _write_failed(self, reason: str, written: int) -> None:
        self.dropped += 1
        if written and self._fd is not None:
            try:  # take back the torn record so the next one follows a whole one
                os.ftruncate(self._fd, self._offset)
            except OSError:
                self._offset = self.segment_bytes  # give up on this segment: start the next one
        if self._failing != reason:
            self._failing = reason
            log.error(
                "runtap: cannot write the journal %s: %s; exchanges are NOT recorded until it can "
                "(traffic still passes)",
                self.directory,
                reason,
            )


class _Syncer:
    """`--fsync`: a thread that fsyncs what was appended, many records per fsync (group commit)."""

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer
        self.synced = 0
        self.fsyncs = 0
        self._cond = threading.Condition()
        self._retired: list[int] = []
        self._new_entry = False  # a segment was created: fsync the directory too
        self._stopping = False
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="runtap-journal-fsync", daemon=True)

    def start(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._thread.start()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def switch(self, old: int | None, new: int) -> None:
        """A new segment: the writer appends to `new`; `old` is fsynced once more and closed here."""
        with self._cond:
            self.writer._fd = new
            self._new_entry = True
            if old is not None:
                self._retired.append(old)
            self._cond.notify()

    async def wait(self, ticket: int) -> None:
        if self.synced >= ticket:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, future))
        await future

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        directory_fd = os.open(self.writer.directory, os.O_RDONLY)
        try:
            while True:
                with self._cond:
                    while not self._stopping and not self._retired and self.writer.appended <= self.synced:
                        self._cond.wait()
                    stopping, new_entry, self._new_entry = self._stopping, self._new_entry, False
                    target, fd, retired, self._retired = self.writer.appended, self.writer._fd, self._retired, []
                for old in retired:
                    os.fsync(old)
                    os.close(old)
                if new_entry:
                    os.fsync(directory_fd)  # the new segment's directory entry
                if fd is not None and target > self.synced:
                    os.fsync(fd)  # only this thread closes a segment the writer has switched away from
                self.fsyncs += 1
                self.synced = target
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self._release)
                if stopping:
                    return
        finally:
            os.close(directory_fd)

    def _release(self) -> None:
        keep = []
        for ticket, future in self._waiters:
            if ticket <= self.synced:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((ticket, future))
        self._waiters = keep
