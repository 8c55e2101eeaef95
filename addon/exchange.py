"""One HTTP exchange in plain data, whatever recorded it (live proxy, flow file, HAR)."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtap.addon.sse import SSEEvent


@dataclass(slots=True)
class Exchange:
    """A request and its response (if any), bodies already content-decoded, times in epoch seconds.

    `sse_events` holds a stream's events with their real arrival times when the recorder parsed
    them as they came; None means "parse `response_body` if it is an event stream".
    `error` is a transport problem (a client that went away, an upstream that failed).
    """

    exchange_id: str
    capture_id: str | None
    method: str
    url: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: bytes = b""
    status_code: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    request_started_at: float | None = None
    response_started_at: float | None = None
    first_byte_at: float | None = None
    response_ended_at: float | None = None
    streamed: bool = False
    sse_events: list[SSEEvent] | None = None
    error: str | None = None
