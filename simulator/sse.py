"""Server-sent events: the wire encoding and the response that forwards queued events.

A subscriber queue carries `(event, json_text, status)` tuples (`status` is the run's or the
response's status when the event carries the object, else None), or `None` when the object
stops without a final event (a cancelled background response).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from runtap.simulator.engine import END_EVENTS, Engine
from runtap.simulator.state import RunState

DONE = b"event: done\ndata: [DONE]\n\n"


def encode(event: str, data: str) -> bytes:
    """One SSE frame: `event: NAME`, one compact JSON `data:` line, a blank line."""
    return f"event: {event}\ndata: {data}\n\n".encode()


async def stream_events(
    request: web.Request,
    queue: asyncio.Queue,
    cut_after: int | None,
    served: Callable[[str], None],
    end_events: frozenset[str],
    done: bytes | None,
) -> web.StreamResponse:
    """Send queued events as `text/event-stream` until one of `end_events`, then `done` if any.

    `served` is told every status sent; `cut_after` (a `cut` fault) closes the connection
    abruptly after that many events.
    """
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    sent = 0
    while True:
        if cut_after is not None and sent >= cut_after:
            request.transport.close()  # mid-stream: no terminating chunk, no [DONE]
            return response
        item = await queue.get()
        if item is None:
            break
        event, data, status = item
        await response.write(encode(event, data))
        sent += 1
        if status is not None:
            served(status)
        if event in end_events:
            break
    if done is not None:
        await response.write(done)
    await response.write_eof()
    return response


async def stream_run(
    request: web.Request,
    engine: Engine,
    run: RunState,
    queue: asyncio.Queue,
    cut_after: int | None,
) -> web.StreamResponse:
    """Send the run's events until it pauses or ends, then `done` (Assistants framing)."""
    try:
        return await stream_events(
            request, queue, cut_after, lambda status: engine.note_served(run.obj["id"], status), END_EVENTS, DONE
        )
    finally:
        engine.unsubscribe(run, queue)
