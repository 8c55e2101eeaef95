"""The proxy side of recording: hands captured flows to the recorder child process.

`put` runs on mitmproxy's event loop and only appends to a deque. A sender thread wakes every
`SEND_INTERVAL` seconds and pickles what accumulated into the child's stdin in one write, so the
event loop never waits on the child and the per-flow cost in the proxy process stays at
`captured_from_flow` plus a share of one pickle. See addon/record_worker.py for the child.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import pickle
import select
import subprocess
import sys
import threading

from runtap.addon.flows import CapturedFlow
from runtap.errors import RuntapError

log = logging.getLogger("runtap.addon")

SEND_INTERVAL = 0.02
DEFAULT_MAX_PENDING = 20_000  # flows waiting in the proxy process if the child falls behind


class RecordSink:
    """Starts the recorder child for one store and feeds it captured flows."""

    def __init__(
        self,
        db: str,
        capture: dict,
        *,
        redact: tuple[str, ...] = (),
        max_queued_rows: int,
        log_level: str = "INFO",
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.db = db
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: collections.deque[CapturedFlow] = collections.deque()
        self._stop = threading.Event()
        self._full = False
        self._broken = False
        settings = {"db": db, "capture": capture, "redact": list(redact), "max_queued_rows": max_queued_rows}
        # stderr is inherited: the child's log lines land where the proxy's do.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "runtap.addon.record_worker", log_level],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._proc.stdin.write(json.dumps(settings, default=str).encode() + b"\n")
        self._proc.stdin.flush()
        self._sender = threading.Thread(target=self._send_loop, name="runtap-record-sender", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        """Wait until the child has opened the store (~1 s: imports); RuntapError if it cannot."""
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        text = self._proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if text != "ready":
            self._broken = True
            self._proc.kill()
            self._proc.wait()
            raise RuntapError(text.removeprefix("error: ") or f"the recorder for {self.db} did not start")
        self._sender.start()

    def put(self, captured: CapturedFlow) -> None:
        """Queue one flow for the child; drops (counted, one warning) past `max_pending`."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            if not self._full:
                self._full = True
                log.warning(
                    "runtap: the recorder process is not keeping up; %d flows wait, "
                    "dropping new ones (see the count at shutdown)",
                    self.max_pending,
                )
            return
        if self._full and len(self._pending) < self.max_pending // 2:
            self._full = False  # the episode is over: warn again next time
        self._pending.append(captured)

    def close(self, timeout: float = 60.0) -> None:
        """Send everything queued, tell the child to finish, and wait for it to write and exit."""
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
            log.error("runtap: the recorder for %s did not finish within %.0fs; stopping it", self.db, timeout)
            self._proc.kill()
            self._proc.wait()
        if self.dropped:
            log.warning("runtap: %d flows were not recorded (recorder process behind or gone)", self.dropped)

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

    def _send(self, batch: list[CapturedFlow] | None) -> None:
        if self._broken:
            self.dropped += len(batch or ())
            return
        try:
            pickle.dump(batch, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
        except (OSError, ValueError):  # the child is gone: say so once, keep proxying
            self._broken = True
            self.dropped += len(batch or ())
            log.error(
                "runtap: the recorder process for %s exited (code %s); traffic still passes "
                "but is not recorded: restart the proxy to record again",
                self.db,
                self._proc.poll(),
            )
