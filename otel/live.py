"""`runtap proxy --otlp URL`: each run's spans go to the receiver once the run reaches a terminal status.

This runs in the recorder process (addon/worker.py in journal mode), never in the proxy's event
loop, on a thread of its own, so the store writer never waits for it:

- `attach` wraps the store writer: each `put` of a journal record's rows notes what they touch
  (run ids, exchange ids with their run) with the record's journal position, and each commit
  wakes the exporter thread.
- A round (after a commit, at most one per `ROUND_SECONDS`; commits that came meanwhile are taken
  together): open the store with the writer's own connection settings (one DuckDB instance in
  this process: neither waits for the other), read in one transaction the journal position
  committed with the rows, take the notes up to it (exactly what that snapshot holds), load only
  what they touch (`load.load_sessions(only=...)`), build the spans with `runtap export`'s
  `SpanModel` (same ids, same attributes) and send:
  - a touched run in a terminal status, not sent yet: its `invoke_agent` span and everything
    under it (`chat`, `execute_tool`, its exchanges);
  - an exchange of a run already sent (a poll after the end): its span alone;
  - an exchange on no run (thread and message creation): its span, at once.
- At shutdown, after the last commit: a last round, then the runs still open (their spans end at
  their last observation), exchanges of runs the store never saw, and each thread's root span
  `thread` over what was sent for that thread (its parent, sent last: its extent is known then).
- Sent once: the ids of the runs sent, and per thread the extent of its spans, stay in memory
  (about 100 bytes a run). A restarted recorder process (addon/recorder_process.py) starts with
  none: runs it sees again are sent again with the same span ids (they derive from the recorded
  ids; receivers that keep one span per id, as Phoenix does, keep one), and threads that only the
  process that died saw get their `thread` span from `runtap export --otlp` only.
- Receiver down or refusing: one warning line; that round's spans are dropped (the store keeps
  everything, and `runtap export --otlp` sends it later with the same ids); later rounds try
  again, and one more warning says when the receiver accepts spans again. A request gives up
  after `TIMEOUT_SECONDS`, retries included (or OTEL_EXPORTER_OTLP_TRACES_TIMEOUT), so a round
  waits that long at most, and the shutdown twice that (the round under way, then the last
  send, joined into one); the exporter's own log lines are not shown.
- What is exported: what `runtap export` exports without `--include-content` (no message
  content, no header values); Responses API exchanges are HTTP spans only, as there.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

import duckdb
from opentelemetry.sdk.trace import ReadableSpan

from runtap.analysis.facts import TERMINAL
from runtap.analysis.filters import Filters
from runtap.errors import RuntapError
from runtap.otel import ids
from runtap.otel.export import BATCH_SPANS, span_model
from runtap.otel.load import Only, Session, load_sessions
from runtap.otel.sinks import OtlpHttpSink
from runtap.store.reader import connect_with_retry
from runtap.store.writer import POSITION_KEY

log = logging.getLogger("runtap.addon")

TIMEOUT_SECONDS = 5.0
ROUND_SECONDS = 2.0
Position = tuple[int, int]


@dataclass
class _Note:
    """What one journal record's rows touch."""

    position: Position
    runs: set[str] = field(default_factory=set)
    exchanges: list[tuple[str, str | None]] = field(default_factory=list)  # (exchange id, run id)


@dataclass
class _Due:
    """What a round sends: runs that may have ended, single exchanges (exchange id -> run id)."""

    runs: set[str] = field(default_factory=set)
    exchanges: dict[str, str | None] = field(default_factory=dict)


class LiveExporter:
    """Sends the spans of one store's runs as they end (see the module docstring)."""

    def __init__(self, db: str, url: str) -> None:
        self.db = db
        self.sink = OtlpHttpSink(url, timeout=TIMEOUT_SECONDS)
        self.model = span_model()
        self.spans_sent = 0
        self.sent_runs: set[str] = set()
        self.open_runs: set[str] = set()  # touched, not sent
        self.waiting: dict[str, set[str]] = {}  # run id -> its exchanges noted before the run was sent
        self.threads: dict[str, list[int]] = {}  # thread id -> [start, end, runs] of what was sent
        self._notes: collections.deque[_Note] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._failing: str | None = None  # the reason last said, while the receiver fails
        self._round_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="runtap-otlp", daemon=True)

    # --- the recorder's side -------------------------------------------------------------------------
    def attach(self, writer) -> None:
        """Note every `put` of `writer` (a StoreWriter) and wake up after each commit; start the thread."""
        put, on_commit = writer.put, writer.on_commit

        def noting_put(rows, *, block=False, position=None):
            if position is not None:
                self.note(rows, position)
            return put(rows, block=block, position=position)

        def committed(position):
            if on_commit is not None:
                on_commit(position)
            self._wake.set()

        writer.put, writer.on_commit = noting_put, committed
        self._thread.start()

    def note(self, rows: dict[str, list[dict]], position: Position) -> None:
        """Remember what one record's rows touch (applier thread: a few dict lookups per row)."""
        note = _Note(position)
        for table_rows in rows.values():
            for row in table_rows:
                if run_id := row.get("run_id"):
                    note.runs.add(run_id)
        for row in rows.get("exchanges", ()):
            note.exchanges.append((row["exchange_id"], row.get("run_id")))
        if note.runs or note.exchanges:
            with self._lock:
                self._notes.append(note)

    def close(self) -> None:
        """After the last commit: a last round, then open runs and thread spans; release the exporter."""
        self._closing.set()
        self._wake.set()
        self._thread.join()
        try:
            self._send(self._round(send=False) + self._final())  # one wait at most if the receiver is down
        except Exception as exc:  # never lose the recorder's own report over spans
            log.error("runtap recorder: OTLP spans at shutdown not sent: %s", exc)
        self.sink.close()
        log.info("runtap recorder: %d spans sent to %s", self.spans_sent, self.sink.endpoint)

    # --- rounds ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing.is_set():
                return
            started = time.monotonic()
            try:
                self._round()
                self._round_error = None
            except Exception as exc:  # a round that fails is retried with the next commit
                if str(exc) != self._round_error:
                    self._round_error = str(exc)
                    log.error("runtap recorder: OTLP spans not built: %s; trying again after the next commit", exc)
            # A round costs ~0.1-0.3 s of CPU whatever it loads (the query's fixed cost): at most
            # one per ROUND_SECONDS, commits meanwhile are taken together.
            if self._closing.wait(max(0.0, ROUND_SECONDS - (time.monotonic() - started))):
                return

    def _round(self, *, send: bool = True) -> list[ReadableSpan]:
        """One round (see the module docstring); the spans, unless sent."""
        # The writer's settings (read_only=True would break its connect), retried while a reader
        # in another process holds the file, as the writer is.
        con = connect_with_retry(self.db, read_only=False)
        try:
            con.execute("BEGIN TRANSACTION")
            due = self._take(_committed_position(con))
            spans = self._load(con, due) if due.runs or due.exchanges else []
            con.execute("COMMIT")
        finally:
            con.close()
        if send:
            self._send(spans)
            return []
        return spans

    def _take(self, position: Position | None) -> _Due:
        """The notes the store holds (journal position at or before `position`), as what to send."""
        due = _Due()
        with self._lock:
            notes = []
            while self._notes and position is not None and self._notes[0].position <= position:
                notes.append(self._notes.popleft())
        for note in notes:
            due.runs |= note.runs - self.sent_runs
            for exchange_id, run_id in note.exchanges:
                if run_id is None or run_id in self.sent_runs:
                    due.exchanges[exchange_id] = run_id
                else:
                    self.waiting.setdefault(run_id, set()).add(exchange_id)
        self.open_runs |= due.runs
        return due

    def _load(self, con, due: _Due, *, ended_only: bool = True) -> list[ReadableSpan]:
        """Spans of the runs of `due` that ended (every one: `ended_only=False`) and of its exchanges."""
        runs = due.runs | {r for r in due.exchanges.values() if r is not None}
        only = Only(runs=tuple(sorted(runs)), exchanges=tuple(sorted(due.exchanges)))
        out = []
        for session in load_sessions(con, Filters(), passes=1, only=only):
            out += self._pick(session, due, ended_only)
        return out

    def _pick(self, session: Session, due: _Due, ended_only: bool) -> list[ReadableSpan]:
        ended = {
            ids.span_id("run", run["run_id"]): run["run_id"]
            for run in session.runs
            if run["run_id"] in due.runs and (run.get("status") in TERMINAL or not ended_only)
        }
        singles = {ids.span_id("exchange", e) for e in due.exchanges}
        picked = [
            span
            for span in self.model.spans(session)
            if span.context.span_id in ended
            or span.context.span_id in singles
            or (span.parent is not None and span.parent.span_id in ended)
        ]
        for run_id in ended.values():
            self.sent_runs.add(run_id)
            self.open_runs.discard(run_id)
            self.waiting.pop(run_id, None)
        if session.thread_id is not None and picked:
            extent = self.threads.setdefault(session.thread_id, [picked[0].start_time, picked[0].end_time, 0])
            extent[0] = min(extent[0], *(s.start_time for s in picked))
            extent[1] = max(extent[1], *(s.end_time for s in picked))
            extent[2] += len(ended)
        return picked

    def _final(self) -> list[ReadableSpan]:
        """Runs still open, exchanges of runs never seen, then each thread's root span."""
        due = _Due(set(self.open_runs), {e: None for exchanges in self.waiting.values() for e in exchanges})
        spans = []
        if due.runs or due.exchanges:
            con = connect_with_retry(self.db, read_only=False)
            try:
                spans = self._load(con, due, ended_only=False)
            finally:
                con.close()
        roots = [self.model.thread_span(t, start, end, runs) for t, (start, end, runs) in self.threads.items()]
        return spans + roots

    # --- sending --------------------------------------------------------------------------------------
    def _send(self, spans: list[ReadableSpan]) -> None:
        """Send in batches; on a failure, say so once and drop the rest of this round's spans."""
        for start in range(0, len(spans), BATCH_SPANS):
            batch = spans[start : start + BATCH_SPANS]
            try:
                self.sink.export(batch)
            except RuntapError as exc:
                if self._failing is None:
                    log.warning(
                        "runtap recorder: %s; spans are dropped while it fails, recording goes on "
                        "(`runtap export --otlp` sends them later, with the same ids)",
                        exc,
                    )
                self._failing = str(exc)
                return
            if self._failing is not None:
                log.warning("runtap recorder: the OTLP receiver %s accepts spans again", self.sink.endpoint)
                self._failing = None
            self.spans_sent += len(batch)


def _committed_position(con: duckdb.DuckDBPyConnection) -> Position | None:
    found = con.execute("SELECT value FROM runtap_meta WHERE key = ?", [POSITION_KEY]).fetchone()
    if found is None:
        return None
    segment, _, offset = found[0].partition(":")
    return int(segment), int(offset)
