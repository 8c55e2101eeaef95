"""The one normalize-and-write worker: a child process that turns flows into store rows.

Parsing, normalization and the store writer run in this process, on the other core, so none of
it takes the GIL from mitmproxy's event loop (as threads in the proxy they cost it ~22% of its
throughput on 2 cores) or from ingest's file reader. It has two sources:

- the journal (live proxy, `runtap recover`): the proxy appends every exchange to the store's
  journal (addon/journal.py) and this process tails it into the store, exactly once
  (addon/journal_apply.py). The proxy starts, watches and restarts it
  (addon/recorder_process.py). stdin carries only the settings line, then `stop` (or EOF: the
  proxy is gone), after which the process applies what the journal holds and exits. With
  "otlp" in the settings (`runtap proxy --otlp URL`) it also sends each run's spans once the run
  ends, on a thread of its own (otel/live.py).
- a pipe (ingest, `Worker` below): stdin carries pickled lists of items. `put` only appends to
  a deque; a sender thread wakes every `SEND_INTERVAL` and pickles what accumulated in one
  write. Lossless: `put` waits for room instead of dropping, and so does the writer.

Protocol. stdin: one JSON settings line (with "journal": journal mode), then, from a pipe, pickled
lists of items until `None` or EOF (EOF: the parent died; everything received is still written).
An item is a `captures` row (a dict: written, and the flows after it belong to that capture), a
`CapturedFlow`, or an object with `to_flow()` (ingest's `FlowState`: the worker builds the flow
object, the costly half of reading a flow file). stdout: `ready` (journal mode: `ready SEGMENT`,
the journal segment the store has applied up to), or `error: <reason>` (store unusable, module
missing), once at start; journal mode then says `applied SEGMENT OFFSET` after each commit and,
when told to apply carefully, `trying SEGMENT OFFSET` before each record; `done <JSON>` (a
`WorkerResult`) at the end. The child logs to stderr, inherited from the parent, and ignores
SIGINT/SIGTERM: a signal sent to the whole process group must not cut it off before the parent
hands over its last flows.

This module is the child's `-m` target: only the standard library is imported at its top, so a
module missing from the environment is the one `error:` line, not a traceback.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import json
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

from runtap.errors import RuntapError, missing_module_message

log = logging.getLogger("runtap.addon")

SEND_INTERVAL = 0.02
DEFAULT_MAX_PENDING = 20_000  # flows waiting in the parent if the child falls behind
CLOSE_SECONDS = 30.0  # the child's writer gives up on rows it cannot write after this long


@dataclass
class WorkerResult:
    """What the worker did: flows seen, rows written (captures aside) and lost, failures by capture."""

    exchanges: int = 0
    rows_written: int = 0
    rows_lost: int = 0  # dropped (queue limit), rejected (untypable) or unwritten at close
    recovered: int = 0  # journal mode: exchanges that were in the journal before this process began
    last_error: str | None = None
    errors: dict[str, int] = field(default_factory=dict)  # capture id -> flows that failed

    def add_writes(self, writer) -> None:
        """Rows written (captures aside) and lost, and the last error, from a closed store writer."""
        stats = writer.stats()
        self.rows_written = sum(n for table, n in stats.rows_written.items() if table != "captures")
        self.rows_lost = stats.dropped + stats.rejected + stats.unwritten
        self.last_error = writer.last_error


class Worker:
    """Starts a pipe-fed worker process for one store (ingest) and feeds it captures rows and flows.

    Lossless: `put` waits while `max_pending` flows wait to be sent, and the child's writer waits
    for room too; a child that dies is a RuntapError, not a silent loss.
    """

    def __init__(
        self,
        db: str,
        *,
        redact: tuple[str, ...] = (),
        max_queued_rows: int,
        batch_rows: int = 500,
        max_pending: int = DEFAULT_MAX_PENDING,
        log_level: str = "INFO",
    ) -> None:
        self.db = db
        self.max_pending = max_pending
        self._pending: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._broken = False
        settings = {"db": db, "redact": list(redact), "max_queued_rows": max_queued_rows, "batch_rows": batch_rows}
        self._proc = spawn(settings, log_level)
        self._sender = threading.Thread(target=self._send_loop, name="runtap-worker-sender", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        """Wait until the child has opened the store (~1 s: imports); RuntapError if it cannot."""
        text = read_ready(self._proc, timeout)
        if text != "ready":
            self._broken = True
            raise RuntapError(text.removeprefix("error: ") or f"the worker for {self.db} did not start")
        self._sender.start()

    def write_capture(self, row: dict) -> None:
        """Queue one `captures` row; the flows put after it belong to that capture."""
        self._pending.append(row)

    def put(self, item) -> None:
        """Queue one flow (`CapturedFlow` or `FlowState`); waits while `max_pending` flows wait."""
        while len(self._pending) >= self.max_pending:
            if self._broken:
                raise RuntapError(self._gone())
            time.sleep(SEND_INTERVAL)
        self._pending.append(item)

    def busy(self) -> bool:
        """True while half of `max_pending` waits: the child is behind (ingest then does more itself)."""
        return len(self._pending) >= self.max_pending // 2

    def close(self) -> WorkerResult:
        """Send everything queued, tell the child to finish, wait for it; return what it did.

        RuntapError when the child is gone without saying.
        """
        self._stop.set()
        if self._sender.is_alive():
            self._sender.join()
        else:
            self._send_pending()
        self._send(None)
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        self._proc.wait()
        line = self._proc.stdout.readline().decode(errors="replace")
        self._proc.stdout.close()
        if line.startswith("done "):
            return WorkerResult(**json.loads(line.removeprefix("done ")))
        raise RuntapError(self._gone())

    def _gone(self) -> str:
        return f"the worker process for {self.db} stopped unexpectedly (exit code {self._proc.poll()})"

    def _send_loop(self) -> None:
        while not self._stop.wait(SEND_INTERVAL):
            self._send_pending()
        self._send_pending()

    def _send_pending(self) -> None:
        batch = []
        while self._pending:  # popleft is thread-safe; appends may continue meanwhile
            batch.append(self._pending.popleft())
        if batch:
            self._send(batch)

    def _send(self, batch: list | None) -> None:
        if self._broken:
            return
        try:
            pickle.dump(batch, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except (OSError, ValueError):  # the child is gone: close() and put() say so
            self._broken = True


def read_ready(proc: subprocess.Popen, timeout: float) -> str:
    """The child's first stdout line (`ready...` or `error: ...`); a child that says neither is killed."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    text = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
    if not text.startswith("ready"):
        proc.kill()
        proc.wait()
    return text


def spawn(settings: dict, log_level: str) -> subprocess.Popen:
    """Start a worker process and send it its settings line."""
    # stderr is inherited: the child's log lines land where the parent's do.
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtap.addon.worker", log_level], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    proc.stdin.write(json.dumps(settings).encode() + b"\n")
    proc.stdin.flush()
    return proc


# --- the child process ----------------------------------------------------------------------------
def serve(stdin, stdout) -> int:
    """Run the child's side of the protocol on binary `stdin`/`stdout`; return its exit code."""
    settings = json.loads(_read_line(stdin.fileno()))
    try:  # the heavy imports: a module missing from the environment is one line for the parent
        from runtap.addon.flows import CapturedFlow, captured_from_flow, to_exchange
        from runtap.addon.normalize import normalize
        from runtap.store.paths import check_store_path
        from runtap.store.writer import StoreWriter, read_journal_position
    except ModuleNotFoundError as exc:
        return _say(stdout, f"error: {missing_module_message(exc)}", 2)
    db, redact = settings["db"], tuple(settings["redact"])
    writer = StoreWriter(
        db,
        batch_rows=settings["batch_rows"],
        batch_seconds=settings.get("batch_seconds", 0.5),
        max_queued_rows=settings["max_queued_rows"],
    )
    try:
        check_store_path(db)
        writer.start()
        position = read_journal_position(db) if "journal" in settings else None
    except RuntapError as exc:
        return _say(stdout, f"error: {exc}", 2)
    if "journal" in settings:
        from runtap.addon.journal_apply import journal_end

        end = journal_end(settings["journal"])  # before the proxy starts a segment of its own
        _say(stdout, f"ready {position[0] if position else 0}", 0)
        return _serve_journal(settings, writer, stdin, stdout, end)
    _say(stdout, "ready", 0)
    result = WorkerResult()
    capture_id = None
    try:
        while (batch := _next_batch(stdin)) is not None:
            for item in batch:
                if isinstance(item, dict):
                    writer.write_capture(item)
                    capture_id = item["capture_id"]
                    continue
                result.exchanges += 1
                try:
                    captured = item if isinstance(item, CapturedFlow) else captured_from_flow(item.to_flow())
                    rows = normalize(to_exchange(captured, capture_id), redact_extra=redact)
                except Exception as exc:  # a flow state mitmproxy cannot load; normalize never raises
                    result.errors[capture_id] = result.errors.get(capture_id, 0) + 1
                    flow_id = getattr(item, "flow_id", None) or getattr(item, "id", "?")
                    log.error("runtap: could not read or normalize flow %s: %s", flow_id, exc)
                    continue
                writer.put(rows, block=True)
    finally:
        writer.close(CLOSE_SECONDS)
    stats = writer.stats()
    log.info(
        "runtap recorder: %d exchanges seen, %d rows written, %d dropped, %d rejected",
        result.exchanges,
        sum(stats.rows_written.values()),
        stats.dropped,
        stats.rejected,
    )
    result.add_writes(writer)
    return _say(stdout, "done " + json.dumps(asdict(result)), 0)


def _serve_journal(settings: dict, writer, stdin, stdout, end) -> int:
    """Journal mode: apply the journal until told to stop (or the parent is gone), then report."""
    from runtap.addon.journal_apply import JournalApplier

    lock = threading.Lock()  # the writer thread reports commits too

    def say(line: str) -> None:
        with lock, contextlib.suppress(OSError):  # an orphan: the proxy is gone, nobody listens
            _say(stdout, line, 0)

    def control(timeout: float) -> str | None:
        ready, _, _ = select.select([stdin], [], [], timeout)
        if not ready:
            return None
        data = os.read(stdin.fileno(), 4096)  # the raw fd: nothing may wait in a Python buffer
        return "stop" if not data or b"stop" in data else None

    live = None
    if settings.get("otlp"):  # `runtap proxy --otlp URL`: spans of runs as they end (otel/live.py)
        from runtap.otel.live import LiveExporter

        live = LiveExporter(settings["db"], settings["otlp"])
    applier = JournalApplier(
        settings["db"],
        settings["journal"],
        writer,
        redact=tuple(settings["redact"]),
        say=say,
        control=control,
        quarantine={tuple(p) for p in settings.get("quarantine", ())},
        careful_until=tuple(settings["careful_until"]) if settings.get("careful_until") else None,
        stop=settings.get("stop", False),
        recover_until=end,
    )
    if live is not None:
        live.attach(writer)
    try:
        counts = applier.run()
    finally:
        applier.finish(CLOSE_SECONDS)
        if live is not None:
            live.close()
    stats = writer.stats()
    log.info(
        "runtap recorder: %d exchanges applied from the journal, %d rows written, %d rejected",
        counts.exchanges,
        sum(stats.rows_written.values()),
        stats.rejected,
    )
    result = WorkerResult(exchanges=counts.exchanges, recovered=counts.recovered)
    result.add_writes(writer)
    say("done " + json.dumps(asdict(result)))
    return 0


def _read_line(fd: int) -> bytes:
    """One line from the raw fd, byte by byte: what follows it stays in the pipe, where `select`
    sees it (a buffered readline could swallow the proxy's `stop` sent right after)."""
    line = bytearray()
    while (byte := os.read(fd, 1)) and byte != b"\n":
        line += byte
    return bytes(line)


def _say(stdout, line: str, code: int) -> int:
    stdout.write(line.encode() + b"\n")
    stdout.flush()
    return code


def _next_batch(stdin) -> list | None:
    try:
        return pickle.load(stdin)
    except EOFError:
        return None  # the parent is gone: write what we have
    except pickle.UnpicklingError as exc:  # a torn write from a killed parent
        log.error("runtap worker: unreadable batch from the parent (%s); stopping", exc)
        return None


def main() -> None:
    """Entry point of the child process: `python -m runtap.addon.worker [LOG_LEVEL]`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where every thread is
    level = sys.argv[1] if len(sys.argv) > 1 else "INFO"
    logging.basicConfig(
        stream=sys.stderr, level=level, format="[%(asctime)s.%(msecs)03d] %(message)s", datefmt="%H:%M:%S"
    )
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))


if __name__ == "__main__":
    main()
