"""Turn a mitmproxy flow into a transport-neutral `Exchange`, the one path for live and ingest.

The live addon copies what it needs off the flow on the event loop (`flow_record`, cheap:
references to immutable bytes and a few floats) into the journal, and the worker process
(addon/worker.py) does the expensive part, header and content decoding and SSE parsing
(`to_exchange`). Ingest of
flow files calls the same two functions there, so a flow recorded live and the same flow read
from a file give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtap.addon.decode import decode_body, make_decoder
from runtap.addon.exchange import Exchange
from runtap.addon.sse import SSEParser

# Header fields as mitmproxy holds them: (name, value) bytes pairs, in wire order.
RawHeaders = tuple[tuple[bytes, bytes], ...]


@dataclass
class CapturedFlow:
    """Plain data copied from a mitmproxy HTTP flow: safe to hand to another thread or process.

    Headers stay raw bytes (mitmproxy's own immutable `fields` tuple, taken by reference):
    decoding them is left to `to_exchange`, off the proxy's event loop. The journal stores the
    fields as a tuple in this order (`flow_record`); `CapturedFlow(*fields)` rebuilds it.
    """

    flow_id: str
    method: str
    url: str
    request_headers: RawHeaders
    request_body: bytes
    request_started_at: float
    status_code: int | None = None
    response_headers: RawHeaders = ()
    response_started_at: float | None = None
    response_ended_at: float | None = None
    # Raw (still content-encoded) body chunks with arrival times, when the addon tapped the
    # stream; otherwise the whole raw body read from the flow.
    chunks: list[tuple[float, bytes]] | None = None
    raw_body: bytes | None = None
    error: str | None = None


def _decode_headers(fields: RawHeaders) -> list[tuple[str, str]]:
    # as mitmproxy's `Headers.items(multi=True)` decodes them
    return [
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")) for name, value in fields
    ]


def flow_record(flow, chunks: list[tuple[float, bytes]] | None = None, redact=None) -> tuple:
    """The `CapturedFlow` fields of a mitmproxy `HTTPFlow`, as a tuple in declaration order.

    Plain values only (what the journal stores, addon/journal.py), copied by reference: cheap
    enough for the event loop. `chunks` are the tapped body chunks of a streamed response (live
    capture); without them the flow's own raw body is used (buffered responses, flow files).
    `redact`, when given, replaces secret header values (addon/redact.py `RawRedactor`).
    """
    request = flow.request
    response = flow.response
    request_headers = request.headers.fields
    if redact is not None:
        request_headers = redact(request_headers)
    error = flow.error.msg if flow.error else None
    if response is None:
        status, response_headers, started, ended, raw_body = None, (), None, None, None
    else:
        status, response_headers = response.status_code, response.headers.fields
        if redact is not None:
            response_headers = redact(response_headers)
        started, ended = response.timestamp_start, response.timestamp_end
        raw_body = response.raw_content if chunks is None else None
    if ended is None:
        # A stream cut short never gets a response end (nor one yet, when the last chunk is
        # being handed over): the last thing we saw is the end.
        ends = [t for t, _ in chunks or ()]
        if flow.error:
            ends.append(flow.error.timestamp)
        ended = max(ends) if ends else None
    return (
        flow.id,
        request.method,
        request.url,
        request_headers,
        request.raw_content or b"",
        request.timestamp_start,
        status,
        response_headers,
        started,
        ended,
        chunks,
        raw_body,
        error,
    )


def captured_from_flow(flow, chunks: list[tuple[float, bytes]] | None = None) -> CapturedFlow:
    """Copy the parts of a mitmproxy `HTTPFlow` that normalization needs (see `flow_record`)."""
    return CapturedFlow(*flow_record(flow, chunks))


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _is_event_stream(headers: list[tuple[str, str]]) -> bool:
    return "text/event-stream" in (_header(headers, "content-type") or "").lower()


def to_exchange(captured: CapturedFlow, capture_id: str) -> Exchange:
    """Decode the body and parse SSE events (with real arrival times when chunks are known)."""
    request_headers = _decode_headers(captured.request_headers)
    response_headers = _decode_headers(captured.response_headers)
    encoding = _header(response_headers, "content-encoding")
    request_encoding = _header(request_headers, "content-encoding")
    request_body, request_error = decode_body(captured.request_body, request_encoding)
    errors = [e for e in (captured.error, request_error) if e]
    streamed = _is_event_stream(response_headers)
    sse_events = None
    first_byte_at = None
    if captured.chunks is not None:
        decoder = make_decoder(encoding)
        parser = SSEParser() if streamed else None
        parts: list[bytes] = []
        sse_events = [] if streamed else None
        for received_at, chunk in captured.chunks:
            if chunk and first_byte_at is None:
                first_byte_at = received_at
            data = decoder.feed(chunk)
            parts.append(data)
            if parser is not None and data:
                sse_events.extend(parser.feed(data, received_at))
        tail = decoder.flush()
        parts.append(tail)
        end_time = captured.response_ended_at or captured.request_started_at
        if parser is not None:
            if tail:
                sse_events.extend(parser.feed(tail, end_time))
            sse_events.extend(parser.close())
        if decoder.error:
            errors.append(f"response body decoding failed: {decoder.error}")
        body = b"".join(parts)
    else:
        body, body_error = decode_body(captured.raw_body or b"", encoding)
        if body_error:
            errors.append(f"response body decoding failed: {body_error}")
    return Exchange(
        exchange_id=captured.flow_id,
        capture_id=capture_id,
        method=captured.method,
        url=captured.url,
        request_headers=request_headers,
        request_body=request_body,
        status_code=captured.status_code,
        response_headers=response_headers,
        response_body=body,
        request_started_at=captured.request_started_at,
        response_started_at=captured.response_started_at,
        first_byte_at=first_byte_at,
        response_ended_at=captured.response_ended_at,
        streamed=streamed,
        sse_events=sse_events,
        error="; ".join(errors) if errors else None,
    )
