"""The one normalize-and-write worker: a child process that turns flows into store rows.

The live recorder (addon/recorder.py) and ingest (ingest/pipeline.py) both hand flows to it
through `Worker`. Parsing, normalization and the store writer run in that process, on the
other core, so none of it takes the GIL from mitmproxy's event loop (as threads in the proxy
they cost it ~22% of its throughput on 2 cores) or from ingest's file reader.

Parent side: `put` only appends to a deque (on the event loop: no pickling, no system call); a
sender thread wakes every `SEND_INTERVAL` and pickles what accumulated into the child's stdin in
one write. Live, `put` drops (counted, one warning) past `max_pending` flows: the traffic matters
more than the recording. With `lossless=True` (ingest) `put` waits for room instead, and so does
the child's writer.

Protocol. stdin: one JSON settings line, then pickled lists of items until `None` or EOF (EOF:
the parent died; everything received is still written). An item is a `captures` row (a dict:
written, and the flows after it belong to that capture), a `CapturedFlow`, or an object with
`to_flow()` (ingest's `FlowState`: the worker builds the flow object, the costly half of
reading a flow file). stdout: `ready`, or `error: <reason>` (store unusable, module missing),
once at start; `done <JSON>` (a `WorkerResult`) at the end. The child logs to stderr, inherited
from the parent, and ignores SIGINT/SIGTERM: a signal sent to the whole process group must not
cut it off before the parent hands over its last flows.

This module is the child's `-m` target: only the standard library is imported at its top, so a
module missing from the environment is the one `error:` line, not a traceback.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
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
    last_error: str | None = None
    errors: dict[str, int] = field(default_factory=dict)  # capture id -> flows that failed


class Worker:
    """Starts the worker process for one store and feeds it captures rows and flows."""

    def __init__(
        self,
        db: str,
        *,
        redact: tuple[str, ...] = (),
        max_queued_rows: int,
        batch_rows: int = 500,
        lossless: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        log_level: str = "INFO",
    ) -> None:
        self.db = db
        self.lossless = lossless
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._full = False
        self._broken = False
        settings = {
            "db": db,
            "redact": list(redact),
            "max_queued_rows": max_queued_rows,
            "batch_rows": batch_rows,
            "lossless": lossless,
        }
        # stderr is inherited: the child's log lines land where the parent's do.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "runtap.addon.worker", log_level], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._proc.stdin.write(json.dumps(settings).encode() + b"\n")
        self._proc.stdin.flush()
        self._sender = threading.Thread(target=self._send_loop, name="runtap-worker-sender", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        """Wait until the child has opened the store (~1 s: imports); RuntapError if it cannot."""
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        text = self._proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if text != "ready":
            self._broken = True
            self._proc.kill()
            self._proc.wait()
            raise RuntapError(text.removeprefix("error: ") or f"the worker for {self.db} did not start")
        self._sender.start()

    def write_capture(self, row: dict) -> None:
        """Queue one `captures` row; the flows put after it belong to that capture."""
        self._pending.append(row)

    def put(self, item) -> None:
        """Queue one flow (`CapturedFlow` or `FlowState`); past `max_pending`, drop or wait (lossless)."""
        if len(self._pending) >= self.max_pending:
            if not self.lossless:
                self._drop()
                return
            self._wait_for_room()
        elif self._full and len(self._pending) < self.max_pending // 2:
            self._full = False  # the episode is over: warn again next time
        self._pending.append(item)

    def busy(self) -> bool:
        """True while half of `max_pending` waits: the child is behind (ingest then does more itself)."""
        return len(self._pending) >= self.max_pending // 2

    def close(self) -> WorkerResult | None:
        """Send everything queued, tell the child to finish, wait for it; return what it did.

        Live, the child is stopped after `2 * CLOSE_SECONDS`; lossless, it takes what it takes.
        None when the child is gone without saying (lossless: RuntapError instead).
        """
        timeout = None if self.lossless else 2 * CLOSE_SECONDS
        self._stop.set()
        if self._sender.is_alive():
            self._sender.join()
        else:
            self._send_pending()
        self._send(None)
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("runtap: the worker for %s did not finish within %.0fs; stopping it", self.db, timeout)
            self._proc.kill()
            self._proc.wait()
        if self.dropped:
            log.warning("runtap: %d flows were not recorded (worker process behind or gone)", self.dropped)
        line = self._proc.stdout.readline().decode(errors="replace")
        self._proc.stdout.close()
        if line.startswith("done "):
            return WorkerResult(**json.loads(line.removeprefix("done ")))
        if self.lossless:
            raise RuntapError(self._gone())
        return None

    def _drop(self) -> None:
        self.dropped += 1
        if not self._full:
            self._full = True
            log.warning(
                "runtap: the worker process is not keeping up; %d flows wait, "
                "dropping new ones (see the count at shutdown)",
                self.max_pending,
            )

    def _wait_for_room(self) -> None:
        while len(self._pending) >= self.max_pending:
            if self._broken:
                raise RuntapError(self._gone())
            time.sleep(SEND_INTERVAL)

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
            self.dropped += len(batch or ())
            return
        try:
            pickle.dump(batch, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except (OSError, ValueError):  # the child is gone: say so once, carry on without it
            self._broken = True
            self.dropped += len(batch or ())
            log.error(
                "runtap: the worker process for %s exited (code %s); traffic still passes "
                "but is not recorded: restart the proxy to record again",
                self.db,
                self._proc.poll(),
            )


# --- the child process ----------------------------------------------------------------------------
def serve(stdin, stdout) -> int:
    """Run the child's side of the protocol on binary `stdin`/`stdout`; return its exit code."""
    settings = json.loads(stdin.readline())
    try:  # the heavy imports: a module missing from the environment is one line for the parent
        from runtap.addon.flows import CapturedFlow, captured_from_flow, to_exchange
        from runtap.addon.normalize import normalize
        from runtap.store.paths import check_store_path
        from runtap.store.writer import StoreWriter
    except ModuleNotFoundError as exc:
        return _say(stdout, f"error: {missing_module_message(exc)}", 2)
    db, lossless, redact = settings["db"], settings["lossless"], tuple(settings["redact"])
    writer = StoreWriter(db, batch_rows=settings["batch_rows"], max_queued_rows=settings["max_queued_rows"])
    try:
        check_store_path(db)
        writer.start()
    except RuntapError as exc:
        return _say(stdout, f"error: {exc}", 2)
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
                writer.put(rows, block=lossless)
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
    result.rows_written = sum(n for table, n in stats.rows_written.items() if table != "captures")
    result.rows_lost = stats.dropped + stats.rejected + stats.unwritten
    result.last_error = writer.last_error
    return _say(stdout, "done " + json.dumps(asdict(result)), 0)


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
    level = sys.argv[1] if len(sys.argv) > 1 else "INFO"
    logging.basicConfig(
        stream=sys.stderr, level=level, format="[%(asctime)s.%(msecs)03d] %(message)s", datefmt="%H:%M:%S"
    )
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))


if __name__ == "__main__":
    main()
