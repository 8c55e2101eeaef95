"""Server lifecycle: an in-process simulator on a background thread, or a blocking `serve`."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from runtap.errors import RuntapError
from runtap.simulator.config import SimConfig
from runtap.simulator.engine import Engine
from runtap.simulator.routes import build_app
from runtap.simulator.truth import ground_truth


class _Server:
    """One running aiohttp site and its engine, bound to the loop it was started on."""

    def __init__(self, config: SimConfig) -> None:
        self.engine = Engine(config)
        self.http_faults: list[dict] = []
        self.runner = web.AppRunner(build_app(self.engine, self.http_faults), shutdown_timeout=0.5)
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            raise RuntapError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        self.engine.close()
        await self.runner.cleanup()
        path = self.engine.config.ground_truth_path
        if path:
            Path(path).write_text(json.dumps(self.truth(), indent=2), encoding="utf-8")

    def truth(self) -> dict:
        return ground_truth(self.engine, self.http_faults)


class SimulatorHandle:
    """A simulator running on its own thread and event loop; a context manager.

    `url` is `http://HOST:PORT`, `base_url` adds `/v1` (what `openai.OpenAI(base_url=...)` takes).
    """

    def __init__(self, server: _Server, loop: asyncio.AbstractEventLoop, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._loop = loop
        self._thread = thread
        self.url = f"http://{host}:{server.port}"
        self.base_url = self.url + "/v1"

    def ground_truth(self) -> dict:
        """What the simulator served so far (runs, responses, conversations, statuses, usage, calls, faults)."""
        return self._call(self._truth())

    def stop(self) -> None:
        """Shut the server down (writing `ground_truth_path` if configured) and join its thread."""
        if self._thread.is_alive():
            self._call(self._server.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _truth(self) -> dict:
        return self._server.truth()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)


def start_simulator(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> SimulatorHandle:
    """Start a simulator in a background thread with its own event loop; return its handle."""
    loop = asyncio.new_event_loop()
    server = _Server(config)
    thread = threading.Thread(target=loop.run_forever, name="runtap-simulator", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(host, port), loop).result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        raise
    return SimulatorHandle(server, loop, thread, host)


def serve(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 9100,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly; `on_ready` gets the base URL."""

    async def main() -> None:
        server = _Server(config)
        await server.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(f"http://{host}:{server.port}/v1")
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
