"""Turn one recorded `Exchange` into rows for the store's tables; never raises.

The live addon and the offline ingest both call `normalize`, so a flow gives the same rows
either way. Whatever does not fit (a body that is not JSON, a cut stream, an odd shape) is kept
as it came in the exchange row, and the reason is appended to ``exchanges.error``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from runtap.addon.exchange import Exchange
from runtap.addon.redact import redact_headers
from runtap.addon.response_routes import ResponseRoute
from runtap.addon.response_rows import response_exchange_rows
from runtap.addon.routes import Route, match_recorded, url_path
from runtap.addon.snapshots import (
    ExchangeNotes,
    epoch,
    loads,
    required_action_calls,
    run_row,
    step_calls,
    step_row,
    tool_call_rows,
)
from runtap.addon.stream_rows import stream_rows
from runtap.store.schema import column_names

Rows = dict[str, list[dict]]
TABLES = (
    "exchanges",
    "run_snapshots",
    "step_snapshots",
    "tool_call_snapshots",
    "sse_events",
    "response_snapshots",
    "response_items",
)
_EXCHANGE_COLUMNS = column_names("exchanges")


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000.0


def _headers_by_name(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {str(name).lower(): value for name, value in headers}


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def normalize(exchange: Exchange, *, redact_extra: Iterable[str] = ()) -> Rows:
    """Return the rows one exchange gives, keyed by table name; each row has exactly its columns.

    Times are aware UTC datetimes, JSON columns JSON text. Problems never raise: they are kept in
    the exchange row's ``error`` (after any transport error).
    """
    rows: Rows = {name: [] for name in TABLES}
    notes = ExchangeNotes(exchange.exchange_id, epoch(exchange.request_started_at))
    try:
        _normalize(exchange, tuple(redact_extra), rows, notes)
    except Exception as exc:  # a bug must cost one exchange's detail, never the proxy
        notes.note(f"normalization failed: {type(exc).__name__}: {exc}")
    if not rows["exchanges"]:
        row = dict.fromkeys(_EXCHANGE_COLUMNS)
        row.update(
            exchange_id=exchange.exchange_id, capture_id=exchange.capture_id, method=exchange.method, url=exchange.url
        )
        rows["exchanges"].append(row)
    errors = ([exchange.error] if exchange.error else []) + notes.problems
    rows["exchanges"][0]["error"] = "; ".join(errors) if errors else None
    return rows


def _normalize(exchange: Exchange, redact_extra: tuple[str, ...], rows: Rows, notes: ExchangeNotes) -> None:
    route = match_recorded(exchange.method, exchange.url)
    request_headers = _headers_by_name(exchange.request_headers)
    response_headers = _headers_by_name(exchange.response_headers)
    request_text = exchange.request_body.decode("utf-8", "replace")
    response_text = exchange.response_body.decode("utf-8", "replace")
    request_json = _request_json(request_text)
    row = _exchange_row(
        exchange, route, redact_extra, request_headers, response_headers, request_text, response_text, request_json
    )
    rows["exchanges"].append(row)
    status = exchange.status_code
    if route is None or status is None or not 200 <= status < 300:
        return  # not ours, no response, or an API error: the exchange row says it all
    content_type = response_headers.get("content-type", "").lower()
    is_stream = (
        exchange.sse_events is not None
        or "text/event-stream" in content_type
        or (not content_type and request_json.get("stream") is True)
    )
    if is_stream:
        row["streamed"] = True
    if isinstance(route, ResponseRoute):
        learned = response_exchange_rows(exchange, route, request_json, response_text, is_stream, rows, notes)
    elif is_stream:
        learned = stream_rows(exchange, response_text, rows, notes)
    else:
        learned = _json_rows(exchange, route, response_text, rows, notes)
    for key in ("thread_id", "run_id", "response_id", "conversation_id"):
        if row[key] is None:
            row[key] = learned.get(key)
    row["sse_events"] = len(rows["sse_events"]) if is_stream else None


def _request_json(text: str) -> dict:
    if not text.lstrip().startswith("{"):
        return {}
    try:
        body = loads(text)
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _exchange_row(
    exchange: Exchange,
    route: Route | ResponseRoute | None,
    redact_extra: tuple[str, ...],
    request_headers: dict[str, str],
    response_headers: dict[str, str],
    request_text: str,
    response_text: str,
    request_json: dict,
) -> dict:
    start = exchange.request_started_at
    model = request_json.get("model")
    runs = route if isinstance(route, Route) else None
    responses = route if isinstance(route, ResponseRoute) else None
    return {
        "exchange_id": exchange.exchange_id,
        "capture_id": exchange.capture_id,
        "operation": route.operation if route else None,
        "method": exchange.method,
        "url": exchange.url,
        "path": route.path if route else url_path(exchange.url),
        "thread_id": runs.thread_id if runs else None,
        "run_id": runs.run_id if runs else None,
        "step_id": runs.step_id if runs else None,
        "response_id": responses.response_id if responses else None,
        "conversation_id": responses.conversation_id if responses else None,
        "status_code": exchange.status_code,
        "request_started_at": epoch(start),
        "response_started_at": epoch(exchange.response_started_at),
        "first_byte_at": epoch(exchange.first_byte_at),
        "response_ended_at": epoch(exchange.response_ended_at),
        "duration_ms": _ms(start, exchange.response_ended_at),
        "ttfb_ms": _ms(start, exchange.response_started_at),
        "streamed": bool(exchange.streamed),
        "is_poll": request_headers.get("x-stainless-poll-helper", "").lower() == "true",
        "request_model": model if isinstance(model, str) else None,
        "request_headers": json.dumps(redact_headers(exchange.request_headers, redact_extra)),
        "response_headers": json.dumps(redact_headers(exchange.response_headers, redact_extra)),
        "request_body": request_text,
        "response_body": response_text,
        "error": None,
        "x_request_id": response_headers.get("x-request-id"),
        "openai_processing_ms": _float(response_headers.get("openai-processing-ms")),
        "sse_events": None,
    }


def _json_rows(exchange: Exchange, route: Route, text: str, rows: Rows, notes: ExchangeNotes) -> dict:
    """Rows from a JSON response body; returns the ids it teaches about the exchange."""
    if not text.strip():
        notes.note("empty response body")
        return {}
    try:
        doc = loads(text)
    except (ValueError, RecursionError) as exc:
        notes.note(f"response body is not JSON: {str(exc).splitlines()[0][:80]}")
        return {}
    observed_at = epoch(exchange.response_ended_at or exchange.response_started_at)
    operation = route.operation
    if operation == "createThread":
        return {"thread_id": doc.get("id")} if isinstance(doc, dict) and isinstance(doc.get("id"), str) else {}
    if operation == "createMessage":
        return {}
    items: list[tuple[int, Any, str]]
    if operation in ("listRuns", "listRunSteps"):
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            notes.note("list response has no data array")
            return {}
        source, items = "list", [(i, item, "") for i, item in enumerate(data)]
    else:
        source, items = "response", [(0, doc, text)]
    want = "thread.run.step" if operation in ("listRunSteps", "getRunStep") else "thread.run"
    for seq, obj, raw in items:
        if not isinstance(obj, dict) or obj.get("object", want) != want:
            notes.note(f"{source} item {seq} is not a {want} object")
            continue
        raw = raw or json.dumps(obj)
        if want == "thread.run":
            run = run_row(obj, raw, notes, seq=seq, observed_at=observed_at, source=source, event=None)
            rows["run_snapshots"].append(run)
            rows["tool_call_snapshots"] += tool_call_rows(
                required_action_calls(obj),
                notes,
                seq=seq,
                observed_at=observed_at,
                source="required_action",
                run_id=run["run_id"],
                step_id=None,
            )
        else:
            details = obj.get("step_details")
            step = step_row(obj, raw, details, notes, seq=seq, observed_at=observed_at, source=source, event=None)
            rows["step_snapshots"].append(step)
            rows["tool_call_snapshots"] += tool_call_rows(
                step_calls(details),
                notes,
                seq=seq,
                observed_at=observed_at,
                source="step",
                run_id=step["run_id"],
                step_id=step["step_id"],
            )
    if source == "response" and rows["run_snapshots"]:
        first = rows["run_snapshots"][0]
        return {"thread_id": first["thread_id"], "run_id": first["run_id"]}
    return {}
