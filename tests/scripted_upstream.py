"""A tiny scripted upstream on 127.0.0.1 for proxy tests: odd bodies, pauses, broken streams."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading

from aiohttp import web

RUN = {
    "id": "run_scripted1",
    "object": "thread.run",
    "created_at": 1718035200,
    "thread_id": "thread_scripted1",
    "assistant_id": "asst_scripted1",
    "status": "in_progress",
    "model": "gpt-4o",
}


def sse(event: str, data: dict | str) -> bytes:
    """One SSE event on the wire."""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def run_event(status: str, **extra) -> dict:
    """A run object with the given status."""
    return {**RUN, "status": status, **extra}


GATES = web.AppKey("gates", dict)
HEADS = web.AppKey("heads", dict)


async def paused_stream(request: web.Request) -> web.StreamResponse:
    """SSE with a pause after each of the first two events.

    With `?gate=NAME` the stream also holds after the first event until the test opens that gate
    (`ScriptedUpstream.open_gate`), at most 30 s: a client that can open it got the first event
    while the rest was still held back, so nothing between them buffered the stream.
    """
    pause = float(request.query.get("pause", "0.5"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(sse("thread.run.created", run_event("queued")))
    if gate := request.query.get("gate"):
        gates = request.app[GATES]
        try:
            await asyncio.wait_for(gates.setdefault(gate, asyncio.Event()).wait(), 30)
        except TimeoutError:
            gates[gate] = None  # the client never got the first event in time
    await asyncio.sleep(pause)
    await resp.write(sse("thread.run.in_progress", run_event("in_progress")))
    await asyncio.sleep(pause)
    await resp.write(
        sse(
            "thread.run.completed",
            run_event("completed", usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
        )
    )
    await resp.write(sse("done", "[DONE]"))
    await resp.write_eof()
    return resp


async def endless_stream(request: web.Request) -> web.StreamResponse:
    """SSE that keeps sending until the client goes away."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    try:
        for _ in range(200):
            await resp.write(sse("thread.run.in_progress", run_event("in_progress")))
            await asyncio.sleep(0.02)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


async def truncated_stream(request: web.Request) -> web.StreamResponse:
    """SSE cut off mid-event: the connection closes without `done`."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(sse("thread.run.created", run_event("queued")))
    await resp.write(b'event: thread.run.in_progress\ndata: {"id": "run_scr')
    await asyncio.sleep(0.05)
    request.transport.close()
    return resp


async def server_error(request: web.Request) -> web.Response:
    """An upstream 500 with an OpenAI error body."""
    status = int(request.query.get("status", "500"))
    body = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
    return web.json_response(body, status=status)


async def not_json(request: web.Request) -> web.Response:
    """A 200 whose body is not JSON at all."""
    return web.Response(text="<html>gateway says hi</html>", content_type="text/html")


async def gzipped_run(request: web.Request) -> web.Response:
    """A gzip-encoded JSON run object."""
    body = gzip.compress(
        json.dumps(
            run_event("completed", usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
        ).encode()
    )
    return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})


async def echo_after_head(request: web.Request) -> web.Response:
    """Note that the request's head arrived (`ScriptedUpstream.saw_head`), then read its body."""
    request.app[HEADS].setdefault(request.query["head"], threading.Event()).set()
    body = await request.read()
    return web.json_response(run_event("queued", metadata={"body_bytes": str(len(body))}))


def _app() -> web.Application:
    app = web.Application()
    app[GATES] = {}
    app[HEADS] = {}
    base = "/v1/threads/thread_scripted1/runs"
    app.router.add_post(base, paused_stream)
    app.router.add_get(base + "/run_endless", endless_stream)
    app.router.add_get(base + "/run_truncated", truncated_stream)
    app.router.add_get(base + "/run_error", server_error)
    app.router.add_get(base + "/run_notjson", not_json)
    app.router.add_get(base + "/run_gzip", gzipped_run)
    app.router.add_post(base + "/run_scripted1/submit_tool_outputs", echo_after_head)
    app.router.add_get("/v1/models", not_json)  # a route runtap does not record
    return app


class ScriptedUpstream:
    """Runs the scripted app on its own event loop thread; `url` is its base URL."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = ""

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(_app())
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._runner = runner
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def open_gate(self, name: str) -> None:
        """Let a `?gate=NAME` stream go on (thread-safe)."""

        def open_() -> None:
            gate = self._runner.app[GATES].setdefault(name, asyncio.Event())
            if gate is not None:
                gate.set()

        self.loop.call_soon_threadsafe(open_)

    def saw_head(self, name: str, timeout: float) -> bool:
        """Wait until a `?head=NAME` request's head has reached the upstream (False: timed out)."""
        return self._runner.app[HEADS].setdefault(name, threading.Event()).wait(timeout)

    def gate_timed_out(self, name: str) -> bool:
        """True when a `?gate=NAME` stream gave up waiting for its gate."""
        return name in self._runner.app[GATES] and self._runner.app[GATES][name] is None

    def __enter__(self) -> ScriptedUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
