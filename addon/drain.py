"""Graceful stop: finish the exchanges in flight before flushing and exiting.

Without it, SIGTERM under load lost a few exchanges whose response had fully reached the client
but whose `response` hook had not run yet (mitmproxy sends the body before the hook; 6 of 509 in
tests/test_faults_store.py). On the first signal the proxy stops listening, answers each request
already started with `Connection: close` (so keep-alive clients do not send more), and waits for
the exchanges in flight, at most `grace` seconds; then mitmproxy shuts down and the recorder
flushes. A second signal stops at once.

The recorder addon installs the signal handlers in its `running` hook (`Drain.install`), after
mitmproxy's own, so `runtap proxy` and `mitmdump -s addon/script.py` stop the same way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from mitmproxy import ctx, http

log = logging.getLogger("runtap.addon")


class Drain:
    """Tracks exchanges in flight and drains them on `begin`.

    Its hook-named methods are called from the recorder's hooks (addon/recorder.py) rather than
    registered as a second addon: mitmproxy's per-event dispatch costs CPU per addon.
    """

    def __init__(self, grace: float = 5.0) -> None:
        self.grace = grace
        self.in_flight: set[str] = set()
        self.draining = False
        self._task: asyncio.Task | None = None

    def install(self, master) -> None:
        """Make SIGTERM drain before `master.shutdown`, and SIGINT too unless the master asks
        before exiting (mitmproxy's console). Replaces mitmproxy's handlers, which shut down at once."""
        loop = asyncio.get_running_loop()
        signals = [signal.SIGTERM] + ([] if hasattr(master, "prompt_for_exit") else [signal.SIGINT])
        for sig in signals:
            try:
                loop.add_signal_handler(sig, self.begin, master.shutdown)
            except (NotImplementedError, RuntimeError, ValueError):  # no loop signals (Windows): mitmproxy's stay
                return

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """An exchange starts."""
        self.in_flight.add(flow.id)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """While draining, end keep-alive connections after this response."""
        if self.draining:
            flow.response.headers["connection"] = "close"

    def response(self, flow: http.HTTPFlow) -> None:
        """An exchange is complete (and recorded: called after the recorder queued it)."""
        self.in_flight.discard(flow.id)

    def error(self, flow: http.HTTPFlow) -> None:
        """An exchange broke; it is no longer in flight."""
        self.in_flight.discard(flow.id)

    def begin(self, shutdown) -> None:
        """Signal handler: start draining, then call `shutdown`; a second call shuts down now."""
        if self.draining:
            shutdown()
            return
        self.draining = True
        self._task = asyncio.get_running_loop().create_task(self._drain(shutdown))

    async def _drain(self, shutdown) -> None:
        ctx.options.update(server=False)  # stop accepting connections; open ones carry on
        deadline = time.monotonic() + self.grace
        await asyncio.sleep(0)
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.in_flight:
            log.warning(
                "runtap: stopping with %d exchanges still in flight after %.0fs", len(self.in_flight), self.grace
            )
        shutdown()
