"""What every request goes through: auth, latency, HTTP faults, error bodies, common headers."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from runtap.simulator.config import SimConfig
from runtap.simulator.ids import new_request_id
from runtap.simulator.objects import ApiError, error_body

CONFIG = web.AppKey("config", SimConfig)
HTTP_FAULTS = web.AppKey("http_faults", list)
OPERATIONS = web.AppKey("operations", dict)  # handler -> operationId
STARTED = web.RequestKey("started", float)
CUT_AFTER = web.RequestKey("cut_after", int)

_FAULT_ERRORS = {
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


@web.middleware
async def api_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Authenticate, apply latency and HTTP faults, and turn errors into OpenAI error bodies."""
    request[STARTED] = time.monotonic()
    try:
        if not request.path.startswith("/__sim/"):
            _check_auth(request)
            op = request.app[OPERATIONS].get(request.match_info.handler)
            await _apply_http_faults(request, op)
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body, status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:  # the router's own 404/405
        if exc.status < 400:
            raise
        body = error_body(f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
        return web.json_response(body, status=exc.status)


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: a fresh `x-request-id` and `openai-processing-ms` on all."""
    response.headers["x-request-id"] = new_request_id()
    started = request.get(STARTED, time.monotonic())
    response.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))


def _check_auth(request: web.Request) -> None:
    """A key is required: `Authorization: Bearer KEY` (OpenAI) or `api-key: KEY` (Azure OpenAI)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and token.strip()
    if not bearer and not request.headers.get("api-key", "").strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )


async def _apply_http_faults(request: web.Request, op: str | None) -> None:
    config = request.app[CONFIG]
    if config.latency_ms:
        await asyncio.sleep(config.latency_ms / 1000)
    if op is None or not config.faults:
        return
    body = (await request.read()).decode("utf-8", "replace")
    text = f"{request.path_qs}\n{body}"
    for fault in config.faults:
        if fault.kind == "delay" and fault.matches(op, text):
            _record(request, op, fault)
            await asyncio.sleep(fault.value / 1000)
        elif fault.kind == "cut" and _is_stream(request, body) and fault.matches(op, text):
            _record(request, op, fault)
            request[CUT_AFTER] = fault.value
        elif fault.kind == "status" and fault.matches(op, text):
            _record(request, op, fault)
            message, type_, code = _FAULT_ERRORS[fault.value]
            headers = {"retry-after": str(fault.retry_after)} if fault.value == 429 else {}
            raise ApiError(fault.value, message, type_, code=code, headers=headers)


def _record(request: web.Request, op: str, fault) -> None:
    request.app[HTTP_FAULTS].append(
        {
            "op": op,
            "method": request.method,
            "path": request.path,
            "kind": fault.kind,
            "value": fault.value,
            "spec": fault.spec,
        }
    )


def _is_stream(request: web.Request, body: str) -> bool:
    if request.query.get("stream") == "true":  # getResponse streams a background response again
        return True
    try:
        data = json.loads(body) if body else {}
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("stream") is True


def request_text(request: web.Request, body: dict) -> str:
    """The request as text for fault matching: its path and JSON body."""
    return f"{request.path}\n{json.dumps(body, ensure_ascii=False)}"


async def read_body(request: web.Request) -> dict:
    """The request's JSON object body (`{}` when empty); a 400 in OpenAI's format otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body
