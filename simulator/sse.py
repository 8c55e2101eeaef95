"""Server-sent events: the wire encoding and the response that forwards a run's events."""

from __future__ import annotations

import asyncio

from aiohttp import web

from runtap.simulator.engine import END_EVENTS, Engine
from runtap.simulator.state import RunState

DONE = b"event: done\ndata: [DONE]\n\n"


def encode(event: str, data: str) -> bytes:
    """One SSE frame: `event: NAME`, one compact JSON `data:` line, a blank line."""
    return f"event: {event}\ndata: {data}\n\n".encode()


async def stream_run(
    request: web.Request,
    engine: Engine,
    run: RunState,
    queue: asyncio.Queue,
    cut_after: int | None,
) -> web.StreamResponse:
    """Send the run's events as `text/event-stream` until it pauses or ends, then `done`.

    `cut_after` (a `cut` fault) closes the connection abruptly after that many events.
    """
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    sent = 0
    try:
        while True:
            if cut_after is not None and sent >= cut_after:
                request.transport.close()  # mid-stream: no terminating chunk, no [DONE]
                return response
            event, data, status = await queue.get()
            await response.write(encode(event, data))
            sent += 1
            if status is not None:
                engine.note_served(run.obj["id"], status)
            if event in END_EVENTS:
                break
        await response.write(DONE)
        await response.write_eof()
    finally:
        engine.unsubscribe(run, queue)
    return response
