"""Run `runtap serve`: in a background thread (tests, embedding) or blocking until a signal.

The recording is read once, before the server starts listening, and the store is closed
again at once, so a proxy can keep recording into the same file while serve answers.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Sequence

from aiohttp import web

from runtap.errors import RuntapError
from runtap.recordings.pacing import check_speed
from runtap.serve.app import build_app
from runtap.serve.recording import Recording, load_recording
from runtap.serve.registry import Registry


async def _start(recording: Recording, speed: float, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_app(Registry(recording), speed), shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise RuntapError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return runner, runner.addresses[0][1]


class ServeHandle:
    """A serve instance on its own thread and event loop; a context manager.

    `url` is `http://HOST:PORT`; `base_url` adds `/v1` (what `openai.OpenAI(base_url=...)` takes).
    """

    def __init__(self, recording: Recording, speed: float, host: str, port: int) -> None:
        self.recording = recording
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="runtap-serve", daemon=True)
        self._thread.start()
        try:
            self._runner, bound = self._call(_start(recording, speed, host, port))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            raise
        self.url = f"http://{host}:{bound}"
        self.base_url = self.url + "/v1"

    def stop(self) -> None:
        """Close the server and join its thread."""
        if self._thread.is_alive():
            self._call(self._runner.cleanup())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def __enter__(self) -> ServeHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_serve(db: str | Sequence[str], *, speed: float = 1.0, host: str = "127.0.0.1", port: int = 0) -> ServeHandle:
    """Load the recording in `db` (one store or several, as `--db` names them) and serve it on a
    background thread; return the handle."""
    speed = check_speed(speed)
    return ServeHandle(load_recording(db), speed, host, port)


def serve_forever(
    db: str | Sequence[str],
    *,
    speed: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 9200,
    on_ready: Callable[[str, Recording], None] | None = None,
) -> None:
    """Serve the recording in `db` until SIGINT/SIGTERM; `on_ready` gets the base URL."""
    check_speed(speed)
    recording = load_recording(db)

    async def main() -> None:
        runner, bound = await _start(recording, speed, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(f"http://{host}:{bound}/v1", recording)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
