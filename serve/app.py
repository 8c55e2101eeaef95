"""The HTTP side of `runtap serve`: one catch-all aiohttp handler over a `Registry`.

JSON answers are sent at once; streamed answers are sent event by event with the recorded
gaps divided by `speed` (0: no waiting). The `openai-poll-after-ms` header is scaled the same
way, so the SDK's polling helpers keep the recorded pace (or none). Unmatched requests get a
404 in OpenAI's error format, which the SDK raises as `NotFoundError`.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from runtap.addon.sse import parse_sse_text
from runtap.recordings.pacing import scaled
from runtap.serve.registry import Miss, Registry, Reply

REGISTRY = web.AppKey("registry", Registry)
SPEED = web.AppKey("speed", float)
_POLL_AFTER = "openai-poll-after-ms"


def build_app(registry: Registry, speed: float) -> web.Application:
    """An aiohttp application answering every path from `registry` at `speed`."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[REGISTRY] = registry
    app[SPEED] = speed
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def handle(request: web.Request) -> web.StreamResponse:
    """Answer one request from the recording, or with a `no_recording` 404."""
    body = await request.text()
    answer = request.app[REGISTRY].answer(request.method, request.path_qs, body)
    if isinstance(answer, Miss):
        return not_found(answer.message)
    speed = request.app[SPEED]
    exchange = answer.recorded.exchange
    if exchange.streamed:
        return await _stream(request, answer, speed)
    return web.Response(
        status=exchange.status_code,
        headers=_headers(answer, speed),
        body=(answer.ids.rewrite(exchange.response_body) or "").encode(),
    )


def not_found(message: str) -> web.Response:
    """OpenAI's error body for a request the recording cannot answer."""
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": "no_recording"}
    return web.json_response({"error": error}, status=404)


def _headers(answer: Reply, speed: float) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}  # replaced by the recorded one if any
    for name, value in answer.recorded.headers:
        if name.lower() == _POLL_AFTER:
            value = _scaled_ms(value, speed)
        headers["Content-Type" if name.lower() == "content-type" else name] = value
    headers["x-runtap-exchange-id"] = answer.recorded.exchange.exchange_id
    return headers


def _scaled_ms(value: str, speed: float) -> str:
    try:
        ms = float(value)
    except ValueError:
        return value
    return str(round(scaled(ms, speed)))


async def _stream(request: web.Request, answer: Reply, speed: float) -> web.StreamResponse:
    exchange = answer.recorded.exchange
    response = web.StreamResponse(status=exchange.status_code, headers=_headers(answer, speed))
    response.content_type = "text/event-stream"
    await response.prepare(request)
    events = parse_sse_text(answer.ids.rewrite(exchange.response_body) or "")
    gaps = exchange.event_gaps
    for index, event in enumerate(events):
        delay = scaled(gaps[index], speed) if index < len(gaps) else 0.0
        if delay > 0:
            await asyncio.sleep(delay)
        await response.write(_event_bytes(event.event, event.data))
    await response.write_eof()
    return response


def _event_bytes(name: str, data: str) -> bytes:
    lines = [f"event: {name}"] if name and name != "message" else []
    lines += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()
