"""The store's one writer thread: batches rows into the DuckDB file.

It runs in the worker process (addon/worker.py), which normalizes the flows of the live proxy
(read from the journal) and of ingest and `put`s their rows here. `put` only counts and
`put_nowait`s, so the worker goes on to the next flow while this thread builds one Arrow frame
per table with the schema's types and inserts it (`INSERT ... BY NAME`), never row by row. The
file is opened per batch and closed right after, so `runtap report` in another process can read
in between; while a reader holds the lock the batch is kept and retried with backoff, and new
rows keep queueing. Memory is bounded by `max_queued_rows`: rows accepted but not yet written
(queued or in the batch being retried). Past it, `put(block=True)` (the worker, both for the
journal and for ingest) waits for room; `put()` drops and counts, with one warning per
episode. Other write errors (disk full, unwritable file) are logged once and the batch is
retried every `error_retry_seconds`; the caller never sees them.

Journal position: a `put` may carry the journal position its rows came from (addon/journal.py);
the batch's last position is written to `runtap_meta` (key `journal_position`, "SEGMENT:OFFSET")
in the same transaction as its rows, so the recorder applies every journal record exactly once,
across crashes and restarts (`read_journal_position`). A put with a position and no rows (a
record that gives none) still moves the position. `on_commit(position)` is called after each
commit that moved it.

Per-batch cost, measured on this machine (duckdb 2.0, 2 cores), 500 rows of run_snapshots:
connect ~11 ms (the same for ":memory:": instance start-up, not the file), insert ~6 ms,
close ~7 ms (its checkpoint keeps the WAL empty), flat from an empty store to 2M rows (11 MB).
`PRAGMA disable_checkpoint_on_shutdown` made close ~4 ms but connect ~25 ms (WAL replay, which
every reader would pay too); `threads=1` and extension autoload settings changed nothing.
So defaults it is: ~25 ms per batch whatever its size. Hence a backlog (after a lock, or an
ingest outpacing the writer) drains in batches of up to 10 x batch_rows: 50,000 run snapshots
with 1 KB raw JSON went in at ~21,000 rows/s (6,700 rows/s with 500-row batches) at load ~4.
Each batch with snapshots or exchanges also extends the derived tables (store/derived.py) in its
transaction: ~75 ms more per batch whatever its size (DuckDB planning a dozen statements), ~130 ms
on the 1M-run benchmark store (measured at load 1, batches of 300 snapshots), ~225 ms there with
step snapshots, tool calls and polls in every batch.
Logs (logger "runtap.store") carry counts and errors only, never row contents.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from runtap.errors import RuntapError
from runtap.store import derived
from runtap.store.reader import connect_with_retry, first_line, is_lock_error
from runtap.store.schema import TABLES, all_ddl, arrow_schema, insert_sql, table_ddl, upgrade_ddl

log = logging.getLogger("runtap.store")

DEFAULT_MAX_QUEUED_ROWS = 100_000
_SCHEMAS = {t: arrow_schema(t) for t in TABLES}
_LOCK_BACKOFF = (0.02, 0.5)  # first and longest wait while another process holds the file
_LOCK_WARN_SECONDS = 5.0
_CATCH_UP_BATCHES = 10  # a backlog is written in batches of up to this many batch_rows
POSITION_KEY = "journal_position"
_SAVE_POSITION = "INSERT OR REPLACE INTO runtap_meta VALUES ('journal_position', ?)"


@dataclass
class WriterStats:
    """Counters of a `StoreWriter`, for logs and tests."""

    rows_written: dict[str, int] = field(default_factory=dict)  # per table
    batches: int = 0  # committed inserts (one transaction each)
    retries: int = 0  # failed attempts that were retried (lock or error)
    dropped: int = 0  # rows refused by `put`: queue limit reached, or writer closed
    rejected: int = 0  # rows that could not be typed (unknown table/column, bad value)
    unwritten: int = 0  # rows still unwritten when `close` gave up
    queued: int = 0  # rows accepted and not yet written


class _Marker:
    """A flush or stop request; the writer sets `done` once everything before it is written."""

    def __init__(self, stop: bool = False) -> None:
        self.stop = stop
        self.done = threading.Event()


class StoreWriter:
    """Batches rows into a runtap DuckDB store from one background thread."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = 500,
        batch_seconds: float = 0.5,
        max_queued_rows: int = DEFAULT_MAX_QUEUED_ROWS,
        error_retry_seconds: float = 2.0,
        on_commit=None,
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_queued_rows = max_queued_rows
        self.error_retry_seconds = error_retry_seconds
        self.on_commit = on_commit  # called with the journal position after each commit that moved it
        self.position: tuple[int, int] | None = None  # journal position committed last
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()  # guards the counters below; never held during I/O
        self._stats = WriterStats(rows_written=dict.fromkeys(TABLES, 0))
        self._full = False  # inside a queue-full episode (one warning each)
        self._closed = False
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        """Create the schema if needed and start the thread; RuntapError if `path` is no store."""
        if os.path.isdir(self.path):
            raise RuntapError(f"{self.path} is a directory, not a store file")
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
            raise RuntapError(f"the directory of {self.path} does not exist")
        con = connect_with_retry(self.path, read_only=False)
        try:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if tables and "runtap_meta" not in tables:
                raise RuntapError(f"{self.path} is a DuckDB file but not a runtap store; choose another --db")
            for statement in [table_ddl(t) for t in TABLES] + upgrade_ddl(_columns(con)) + all_ddl():
                con.execute(statement)
            if derived.refresh(con):
                log.info("store %s: status boundaries and run state rebuilt from its run snapshots", self.path)
        except duckdb.Error as exc:
            raise RuntapError(f"cannot create a runtap store in {self.path}: {first_line(exc)}") from None
        finally:
            con.close()
        self._thread = threading.Thread(target=self._run, name="runtap-store-writer", daemon=True)
        self._thread.start()

    def put(self, rows: dict[str, list[dict]], *, block: bool = False, position: tuple[int, int] | None = None) -> bool:
        """Queue rows (table -> row dicts) for writing; never raises, never touches DuckDB.

        Returns False when the rows were dropped (queue limit reached, or writer closed). With
        `block=True` (ingest, the recorder, never the event loop) it waits for room instead of
        dropping. `position`: the journal position these rows came from (see the module doc).
        """
        n = sum(len(v) for v in rows.values())
        if n == 0 and position is None:
            return True
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._closed or self._has_room(n))
            if self._closed or not self._has_room(n):
                self._drop(n)
                return False
            self._stats.queued += n
        self._queue.put_nowait((rows, position))
        return True

    def write_capture(self, row: dict) -> str:
        """Queue one `captures` row, filling capture_id and started_at when missing; return its id."""
        row = {"capture_id": uuid.uuid4().hex, "started_at": datetime.now(UTC), **row}
        self.put({"captures": [row]})
        return row["capture_id"]

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row put so far is in the file; RuntapError if `timeout` passes first."""
        if self._thread is None or not self._thread.is_alive():
            raise RuntapError(f"the store writer for {self.path} is not running")
        marker = _Marker()
        self._queue.put_nowait(marker)
        if not marker.done.wait(timeout):
            raise RuntapError(f"rows not written to {self.path} within {timeout}s: {self.last_error or 'file busy'}")

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread; give up (logged, counted) after `timeout`."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._thread is None:
            return
        self._queue.put_nowait(_Marker(stop=True))
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join()
            with self._cond:
                self._stats.unwritten = self._stats.queued
            log.error(
                "store writer gave up on %s after %.0fs: %d rows not written (%s)",
                self.path,
                timeout,
                self._stats.unwritten,
                self.last_error or "file busy",
            )
        s = self.stats()
        log.info(
            "store writer closed %s: %d rows in %d batches, %d retries, %d dropped, %d rejected",
            self.path,
            sum(s.rows_written.values()),
            s.batches,
            s.retries,
            s.dropped,
            s.rejected,
        )

    def stats(self) -> WriterStats:
        """Return a snapshot of the counters."""
        with self._cond:
            s = self._stats
            return WriterStats(dict(s.rows_written), s.batches, s.retries, s.dropped, s.rejected, s.unwritten, s.queued)

    # --- caller side helpers (hold self._cond) ---------------------------------------------------
    def _has_room(self, n: int) -> bool:
        # A single put larger than the limit is still accepted into an empty queue.
        return self._stats.queued + n <= self.max_queued_rows or self._stats.queued == 0

    def _drop(self, n: int) -> None:
        self._stats.dropped += n
        if not self._full:
            self._full = True
            why = (
                "the writer is closed"
                if self._closed
                else (f"{self.max_queued_rows} rows are waiting to be written (queue limit)")
            )
            log.warning("store writer for %s is dropping rows: %s; see the dropped count", self.path, why)

    # --- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        batch: dict[str, list[dict]] = {}
        size, deadline, position = 0, 0.0, None
        while True:
            timeout = max(0.0, deadline - time.monotonic()) if size or position else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None  # batch_seconds passed since the batch's first row
            if isinstance(item, tuple):
                if not size and position is None:
                    deadline = time.monotonic() + self.batch_seconds
                size += _extend(batch, item[0])
                position = item[1] or position
                if size < self.batch_rows:
                    continue
                size, position, item = self._catch_up(batch, size, position)
            if (size or position) and not self._write_until_done(batch, size, position):
                return  # abandoned by close()
            batch, size, position = {}, 0, None
            if isinstance(item, _Marker):
                item.done.set()
                if item.stop:
                    return

    def _catch_up(
        self, batch: dict[str, list[dict]], size: int, position: tuple[int, int] | None
    ) -> tuple[int, tuple[int, int] | None, _Marker | None]:
        """Add rows already waiting (a backlog after a lock) up to 10 batches' worth.

        Each open/close costs ~25 ms whatever the size, so a backlog drains in bigger batches.
        Stops at a flush/stop marker and returns it, to be honoured after this write.
        """
        while size < self.batch_rows * _CATCH_UP_BATCHES:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Marker):
                return size, position, item
            size += _extend(batch, item[0])
            position = item[1] or position
        return size, position, None

    def _write_until_done(self, batch: dict[str, list[dict]], size: int, position: tuple[int, int] | None) -> bool:
        frames = self._frames(batch)
        waited_since, delay, reported = time.monotonic(), _LOCK_BACKOFF[0], None
        while True:
            try:
                self._insert(frames, position)
                break
            except duckdb.Error as exc:
                if is_lock_error(exc):
                    delay, wait = min(delay * 2, _LOCK_BACKOFF[1]), delay
                    if reported is None and time.monotonic() - waited_since > _LOCK_WARN_SECONDS:
                        reported = "lock"
                        log.warning(
                            "%s has been locked by another process for %.0fs; %d rows wait and are kept",
                            self.path,
                            _LOCK_WARN_SECONDS,
                            size,
                        )
                else:
                    wait, message = self.error_retry_seconds, first_line(exc)
                    if message != reported:  # once per distinct error, not once per attempt
                        reported = self.last_error = message
                        log.error(
                            "cannot write to %s: %s; %d rows kept in memory, retrying every %gs: "
                            "free disk space or fix the file's permissions and recording resumes",
                            self.path,
                            message,
                            size,
                            wait,
                        )
                with self._cond:
                    self._stats.retries += 1
                if self._abandon.wait(wait):
                    return False
        if reported not in (None, "lock"):  # a warning, so it shows wherever the error did
            log.warning("%s is writable again; %d kept rows written", self.path, size)
        self.last_error = None
        with self._cond:
            self._stats.batches += bool(frames)
            for table, frame in frames.items():
                self._stats.rows_written[table] += frame.num_rows
            self._stats.queued -= size
            if self._full and self._stats.queued <= self.max_queued_rows // 2 and not self._closed:
                self._full = False
                log.info("store writer for %s has room again (%d rows dropped so far)", self.path, self._stats.dropped)
            self._cond.notify_all()
        if position is not None:
            self.position = position
            if self.on_commit is not None:
                try:
                    self.on_commit(position)
                except Exception as exc:  # the writer thread must outlive its listener
                    log.error("store writer: after a commit: %s", exc)
        return True

    def _insert(self, frames: dict[str, pa.Table], position: tuple[int, int] | None) -> None:
        if not frames and position is None:  # every row was rejected
            return
        con = duckdb.connect(self.path)
        try:
            con.execute("BEGIN")
            for table, frame in frames.items():
                con.register("runtap_frame", frame)
                con.execute(_INSERT_SQL[table])
                con.unregister("runtap_frame")
            derived.extend(con, frames)  # the derived tables, in the same transaction
            if position is not None:  # with the rows, or neither: exactly once
                con.execute(_SAVE_POSITION, [f"{position[0]}:{position[1]}"])
            con.execute("COMMIT")
        finally:
            try:
                con.close()
            except duckdb.Error as exc:  # committed (in the WAL): retrying would duplicate
                log.warning("closing %s after a write failed: %s", self.path, first_line(exc))

    def _frames(self, batch: dict[str, list[dict]]) -> dict[str, pa.Table]:
        frames = {}
        for table, rows in batch.items():
            frame, bad, reason = _frame(table, rows)
            if bad:
                with self._cond:
                    self._stats.rejected += bad
                log.error("rejected %d %s rows that do not fit the schema: %s", bad, table, reason)
            if frame is not None and frame.num_rows:
                frames[table] = frame
        return frames


def read_journal_position(path: str) -> tuple[int, int] | None:
    """The journal position committed in the store at `path` (None: nothing applied yet)."""
    if not os.path.exists(path):
        return None
    con = connect_with_retry(path, read_only=True)
    try:
        found = con.execute("SELECT value FROM runtap_meta WHERE key = ?", [POSITION_KEY]).fetchone()
    finally:
        con.close()
    if found is None:
        return None
    segment, _, offset = found[0].partition(":")
    return int(segment), int(offset)


def _extend(batch: dict[str, list[dict]], rows: dict[str, list[dict]]) -> int:
    for table, table_rows in rows.items():
        batch.setdefault(table, []).extend(table_rows)
    return sum(len(v) for v in rows.values())


def _frame(table: str, rows: list[dict]) -> tuple[pa.Table | None, int, str]:
    """Type rows as the table's Arrow frame; return (frame, rejected count, first reason)."""
    schema = _SCHEMAS.get(table)
    if schema is None:
        return None, len(rows), f"no table named {table!r}"
    try:
        return _typed(schema, rows), 0, ""
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    good, reason = [], ""
    for row in rows:  # slow path: find the rows at fault, keep the others
        try:
            _typed(schema, [row])
            good.append(row)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            reason = reason or first_line(exc)
    return _typed(schema, good), len(rows) - len(good), reason


def _typed(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    unknown = set().union(*rows) - set(schema.names) if rows else set()
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    if _plain(schema, rows):
        try:  # Arrow's own row conversion: ~3x faster than column by column in Python
            return pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass  # a value needs a conversion below (a JSON object as text, say), or is bad
    columns = []
    for fld in schema:
        values = [row.get(fld.name) for row in rows]
        try:
            if pa.types.is_timestamp(fld.type):
                values = [_timestamp(v) for v in values]
            elif fld.name in _JSON_COLUMNS:
                values = [v if v is None or isinstance(v, str) else json.dumps(v, default=str) for v in values]
            columns.append(pa.array(values, fld.type))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            # Name the column and the value types only: values may be user data.
            kinds = sorted({type(v).__name__ for v in values})
            raise ValueError(f"column {fld.name} ({fld.type}) got {'/'.join(kinds)} values") from None
    return pa.Table.from_arrays(columns, schema=schema)


def _plain(schema: pa.Schema, rows: list[dict]) -> bool:
    """Whether every timestamp is a datetime (or None): Arrow would read a number as microseconds,
    where `_timestamp` reads epoch seconds (and an ISO string needs parsing)."""
    names = _TIMESTAMPS[schema]
    return all(type(row.get(name)) in _DATETIME_OR_NONE for row in rows for name in names)


def _timestamp(value):
    """Accept datetimes (naive = UTC), epoch seconds (the API's own) and ISO strings (HAR)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return _timestamp(datetime.fromisoformat(value))
    return value


_JSON_COLUMNS = {c for cols in TABLES.values() for c, ty in cols if ty == "JSON"}
_TIMESTAMPS = {schema: [f.name for f in schema if pa.types.is_timestamp(f.type)] for schema in _SCHEMAS.values()}
_DATETIME_OR_NONE = (datetime, type(None))

_INSERT_SQL = {t: insert_sql(t, "runtap_frame") for t in TABLES}


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall():
        found.setdefault(table, set()).add(column)
    return found
