"""The store side of an ingest in its own process: flow object -> `to_exchange` -> `normalize` -> `StoreWriter`.

The reading process parses the flow file and routes each flow on its state; this process builds
the flow objects of the flows to store (`FlowState.to_flow`, then `captured_from_flow`, unless the
reader already sent a `CapturedFlow`), decodes bodies, parses SSE, normalizes and writes, on the
other core. It is the live addon's split (event loop copies, a recorder process normalizes).
The process is spawned (not forked: DuckDB, Arrow and polars thread pools do not survive a fork)
and ignores SIGINT: the parent decides when to stop, and `close` always writes what was sent.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import signal
from dataclasses import dataclass, field

from runtap.addon.flows import CapturedFlow, captured_from_flow, to_exchange
from runtap.addon.normalize import normalize
from runtap.errors import RuntapError
from runtap.store.paths import check_store_path
from runtap.store.writer import StoreWriter

log = logging.getLogger("runtap.ingest")

FLOWS_PER_MESSAGE = 100
MAX_MESSAGES = 8  # in flight: bounds the parent's memory while the store process catches up
_POLL_SECONDS = 0.5


@dataclass
class StoreResult:
    """What the store process did: rows written and lost, and conversion errors per file index."""

    rows_written: int = 0
    rows_lost: int = 0
    last_error: str | None = None
    errors: dict[int, int] = field(default_factory=dict)


class StoreProcess:
    """A child process that normalizes `CapturedFlow`s and writes them into the store at `db`."""

    def __init__(self, db: str, *, redact_extra: tuple[str, ...], batch_rows: int, max_queued_rows: int) -> None:
        ctx = mp.get_context("spawn")
        self._inbox = ctx.Queue(maxsize=MAX_MESSAGES)
        self._outbox = ctx.Queue()
        self._process = ctx.Process(
            target=_serve,
            name="runtap-ingest-store",
            daemon=True,
            args=(db, redact_extra, batch_rows, max_queued_rows, self._inbox, self._outbox),
        )
        self._batch: list[tuple[int, str, CapturedFlow]] = []

    def start(self) -> None:
        """Start the process; RuntapError if `db` cannot be a store (nothing is written then)."""
        self._process.start()
        kind, payload = self._receive()
        if kind == "error":
            self._process.join()
            raise RuntapError(payload)

    def write_capture(self, row: dict) -> None:
        """Write one `captures` row (before the flows that follow it)."""
        self._send_batch()
        self._send(("capture", row))

    def add(self, file_index: int, capture_id: str, captured: CapturedFlow) -> None:
        """Queue one flow of file `file_index` for normalization and writing."""
        self._batch.append((file_index, capture_id, captured))
        if len(self._batch) >= FLOWS_PER_MESSAGE:
            self._send_batch()

    def busy(self) -> bool:
        """True while the process has a backlog: the caller should do more of the work itself."""
        return self._inbox.qsize() >= MAX_MESSAGES // 2

    def close(self) -> StoreResult:
        """Write everything sent so far, stop the process and return what it did."""
        self._send_batch()
        self._send(("close", None))
        kind, payload = self._receive()
        self._process.join()
        if kind == "error":
            raise RuntapError(payload)
        return payload

    def _send_batch(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._send(("flows", batch))

    def _send(self, message: tuple) -> None:
        while True:
            try:
                self._inbox.put(message, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                self._check_alive()

    def _receive(self) -> tuple:
        while True:
            try:
                return self._outbox.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                self._check_alive()

    def _check_alive(self) -> None:
        if not self._process.is_alive():
            raise RuntapError(f"the ingest's store process stopped unexpectedly (exit code {self._process.exitcode})")


def _serve(
    db: str, redact_extra: tuple[str, ...], batch_rows: int, max_queued_rows: int, inbox: mp.Queue, outbox: mp.Queue
) -> None:
    """The store process: open the writer, then handle messages until "close"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        check_store_path(db)
        writer = StoreWriter(db, batch_rows=batch_rows, max_queued_rows=max_queued_rows)
        writer.start()
    except RuntapError as exc:
        outbox.put(("error", str(exc)))
        return
    outbox.put(("ready", None))
    result = StoreResult()
    try:
        while (message := inbox.get())[0] != "close":
            kind, payload = message
            if kind == "capture":
                writer.write_capture(payload)
                continue
            for file_index, capture_id, item in payload:
                try:
                    captured = item if isinstance(item, CapturedFlow) else captured_from_flow(item.to_flow())
                    rows = normalize(to_exchange(captured, capture_id), redact_extra=redact_extra)
                except Exception as exc:  # a flow whose state mitmproxy cannot load, etc.
                    result.errors[file_index] = result.errors.get(file_index, 0) + 1
                    log.error("could not read or normalize flow %s: %s", getattr(item, "id", "?"), exc)
                    continue
                writer.put(rows, block=True)
    finally:
        writer.close(timeout=60.0)
    stats = writer.stats()
    result.rows_written = sum(n for table, n in stats.rows_written.items() if table != "captures")
    result.rows_lost = stats.dropped + stats.rejected + stats.unwritten
    result.last_error = writer.last_error
    outbox.put(("done", result))
