"""One CLIENT span per recorded HTTP exchange, with the HTTP semantic-convention attributes.

Name `{method} {url.template}` (e.g. `GET /v1/threads/{thread_id}/runs/{run_id}`,
`GET /v1/responses/{response_id}`), from request
start to response end. No header value is exported except two the store keeps in columns of
their own and that carry no secret: the response's `x-request-id` and `openai-processing-ms`.
The URL loses any user info and every query parameter but `api-version`. Bodies are never
exported here (content goes on the agent and tool spans, and only with `--include-content`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry.sdk.trace import Event
from opentelemetry.trace import SpanKind, Status, StatusCode

_KEPT_QUERY = ("api-version",)


def url_template(path: str, exchange: dict) -> str:
    """The path with the exchange's own ids replaced by `{thread_id}`, `{run_id}`, `{step_id}`,
    `{response_id}`, `{conversation_id}`."""
    keys = ("thread_id", "run_id", "step_id", "response_id", "conversation_id")
    names = {exchange.get(k): "{" + k + "}" for k in keys if exchange.get(k)}
    return "/".join(names.get(segment, segment) for segment in path.split("/"))


def safe_url(url: str) -> tuple[str, str | None, int | None, str]:
    """(url.full without credentials or query values other than api-version, host, port, scheme)."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    netloc = (host or "") if port is None else f"{host}:{port}"
    if host and ":" in host:
        netloc = f"[{host}]" + (f":{port}" if port is not None else "")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in _KEPT_QUERY])
    scheme = parts.scheme or "http"
    default = {"http": 80, "https": 443}.get(scheme)
    return urlunsplit((scheme, netloc, parts.path, query, "")), host, port or default, scheme


def exchange_span_fields(exchange: dict) -> dict[str, Any]:
    """Name, kind, times, attributes, events and status of one exchange's span (ids are the caller's)."""
    method = exchange.get("method") or "_OTHER"
    path = exchange.get("path") or urlsplit(exchange.get("url") or "").path or "/"
    template = url_template(path, exchange)
    start = exchange["request_started_at"]
    end = exchange.get("response_ended_at")
    if end is None and exchange.get("duration_ms") is not None:
        end = start + int(exchange["duration_ms"] * 1e6)
    end = max(start, end or exchange.get("response_started_at") or start)
    code = exchange.get("status_code")
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.template": template,
        "url.path": path,
        "http.response.status_code": code,
        "runtap.exchange.id": exchange["exchange_id"],
        "runtap.operation": exchange.get("operation"),
        "runtap.capture.id": exchange.get("capture_id"),
        "runtap.streamed": exchange.get("streamed"),
        "runtap.poll": exchange.get("is_poll"),
        "runtap.sse_events": exchange.get("sse_events"),
        "runtap.exchange.error": exchange.get("error"),
        "gen_ai.conversation.id": exchange.get("thread_id") or exchange.get("conversation_id"),
    }
    if exchange.get("url"):
        full, host, port, scheme = safe_url(exchange["url"])
        attributes |= {"url.full": full, "server.address": host, "server.port": port, "url.scheme": scheme}
    if exchange.get("x_request_id"):
        attributes["http.response.header.x-request-id"] = [exchange["x_request_id"]]
    if exchange.get("openai_processing_ms") is not None:
        attributes["http.response.header.openai-processing-ms"] = [f"{exchange['openai_processing_ms']:g}"]
    status = Status(StatusCode.UNSET)
    if code is None:
        attributes["error.type"] = "no_response"
        status = Status(StatusCode.ERROR, exchange.get("error") or "no response")
    elif code >= 400:
        attributes["error.type"] = str(code)
        status = Status(StatusCode.ERROR)
    events = []
    if exchange.get("response_started_at") is not None:
        events.append(Event("runtap.http.response_headers", timestamp=exchange["response_started_at"]))
    if exchange.get("streamed") and exchange.get("first_byte_at") is not None:
        events.append(Event("runtap.http.first_body_byte", timestamp=exchange["first_byte_at"]))
    return {
        "name": f"{method} {template}",
        "kind": SpanKind.CLIENT,
        "start": start,
        "end": end,
        "attributes": attributes,
        "events": events,
        "status": status,
    }
