"""Build `RecordedExchange`s for tests of the recordings layer, serve and replay.

    exchanges = [recorded("e1", "POST", "/threads", thread="thread_A", body="{}"), ...]

The operation comes from the route, as the proxy records it; `started` is seconds after a fixed
base time; `events` are SSE arrival times in such seconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from runtap.addon.routes import match_route
from runtap.recordings.exchanges import RecordedExchange

BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """The fixed base time plus `seconds`."""
    return BASE + timedelta(seconds=seconds)


def recorded(
    exchange_id: str,
    method: str,
    path: str,
    *,
    thread: str | None = None,
    status: int | None = 200,
    body: str | None = "",
    response: str | None = "{}",
    started: float = 0.0,
    streamed: bool = False,
    headers: list | None = None,
    request_headers: dict[str, str] | None = None,
    events: tuple[float, ...] = (),
) -> RecordedExchange:
    """One recorded exchange on `/v1{path}` of a local upstream."""
    url = f"http://127.0.0.1:9/v1{path}"
    route = match_route(method, url)
    response_headers = headers or [["Content-Type", "application/json"]]
    return RecordedExchange(
        exchange_id=exchange_id,
        operation=route.operation if route else None,
        method=method,
        url=url,
        thread_id=thread,
        status_code=status,
        started_at=at(started),
        duration_ms=5.0,
        streamed=streamed,
        request_headers=tuple((request_headers or {}).items()),
        request_body=body,
        response_body=response,
        response_headers=tuple((str(n), str(v)) for n, v in json.loads(json.dumps(response_headers))),
        event_times=tuple(at(t) for t in events),
    )
