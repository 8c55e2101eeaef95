"""The recorder's child process: normalizes captured flows and writes them to the store.

Started by `RecordSink` (addon/record_sink.py) as `python -m addon.record_worker`, so parsing,
normalization and the store writer never take the GIL from mitmproxy's event loop (on a 2-core
machine that cost the proxy ~22% of its throughput when they ran as threads in its process).

Protocol: one JSON settings line on stdin, then pickled lists of `CapturedFlow` until `None` or
EOF. EOF means the proxy died (SIGKILL, crash): everything received is still written. The child
prints `ready` (or `error: <reason>`) on stdout once the store is open, and logs to stderr,
which it shares with the proxy. It ignores SIGINT/SIGTERM: a Ctrl-C or a stop signal sent to the
whole process group must not cut it off before the proxy hands over its last flows.
"""

from __future__ import annotations

import json
import logging
import pickle
import signal
import sys

from runtap.addon.flows import to_exchange
from runtap.addon.normalize import normalize
from runtap.errors import RuntapError
from runtap.store.writer import StoreWriter

log = logging.getLogger("runtap.addon")


def serve(stdin, stdout) -> int:
    """Run the protocol on binary `stdin`/`stdout`; return the process exit code."""
    settings = json.loads(stdin.readline())
    writer = StoreWriter(settings["db"], max_queued_rows=settings["max_queued_rows"])
    try:
        writer.start()
    except RuntapError as exc:
        stdout.write(f"error: {exc}\n".encode())
        stdout.flush()
        return 2
    stdout.write(b"ready\n")
    stdout.flush()
    writer.write_capture(settings["capture"])
    redact = tuple(settings["redact"])
    exchanges = 0
    try:
        while (batch := _next_batch(stdin)) is not None:
            for captured in batch:
                exchanges += 1
                _record(writer, captured, settings["capture"]["capture_id"], redact)
    finally:
        writer.close()
    stats = writer.stats()
    log.info(
        "runtap recorder: %d exchanges seen, %d rows written, %d dropped, %d rejected",
        exchanges,
        sum(stats.rows_written.values()),
        stats.dropped,
        stats.rejected,
    )
    return 0


def _next_batch(stdin) -> list | None:
    try:
        return pickle.load(stdin)
    except EOFError:
        return None  # the proxy is gone: write what we have
    except pickle.UnpicklingError as exc:  # a torn write from a killed proxy
        log.error("runtap recorder: unreadable batch from the proxy (%s); stopping", exc)
        return None


def _record(writer: StoreWriter, captured, capture_id: str, redact: tuple[str, ...]) -> None:
    try:
        rows = normalize(to_exchange(captured, capture_id), redact_extra=redact)
    except Exception as exc:  # normalize never raises by contract; a recorder must not stop
        log.error("runtap: could not normalize exchange %s: %s", captured.flow_id, type(exc).__name__)
        return
    writer.put(rows)


def main() -> None:
    """Entry point of the child process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    level = sys.argv[1] if len(sys.argv) > 1 else "INFO"
    logging.basicConfig(
        stream=sys.stderr, level=level, format="[%(asctime)s.%(msecs)03d] %(message)s", datefmt="%H:%M:%S"
    )
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))


if __name__ == "__main__":
    main()
