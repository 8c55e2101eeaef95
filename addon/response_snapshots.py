"""Rows for one observed response or item (Responses and Conversations APIs), shaped as the
store's ``response_snapshots`` and ``response_items`` tables.

As for runs (addon/snapshots.py), values are taken as the API sent them; a value of an
unexpected type becomes NULL (the raw JSON keeps it) and is noted for ``exchanges.error``.
`notes` is the exchange's notes object (its ``exchange_id``, ``request_started_at`` and ``note``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from runtap.addon.snapshots import epoch

_BIGINT = 1 << 63
_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _count(value: Any, name: str, notes) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and -_BIGINT <= value < _BIGINT:
        return value
    if value is not None:
        notes.note(f"unusable {name}")
    return None


def _time(obj: dict, key: str, notes) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        stamp = epoch(value)
        if stamp is not None:
            return stamp
    notes.note(f"unusable {key} {str(value)[:40]!r}")
    return None


def _usage(obj: dict, notes) -> dict:
    """has_usage and the five token counts of a response's ``usage`` (details included)."""
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        if usage is not None:
            notes.note("usage is not an object")
        return {"has_usage": False, **dict.fromkeys((*_USAGE_KEYS, "cached_tokens", "reasoning_tokens"))}
    counts = {key: _count(usage.get(key), f"usage.{key}", notes) for key in _USAGE_KEYS}
    input_details = _dict(usage.get("input_tokens_details"))
    output_details = _dict(usage.get("output_tokens_details"))
    counts["cached_tokens"] = _count(input_details.get("cached_tokens"), "usage cached_tokens", notes)
    counts["reasoning_tokens"] = _count(output_details.get("reasoning_tokens"), "usage reasoning_tokens", notes)
    return {"has_usage": True, **counts}


def conversation_id_of(obj: dict) -> str | None:
    """The id of a response's ``conversation`` (an object, or a bare id as requests may send it)."""
    conversation = obj.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    return conversation if isinstance(conversation, str) else None


def response_row(
    obj: dict, raw: str, notes, *, seq: int, observed_at: datetime | None, source: str, event: str | None
) -> dict:
    """One ``response_snapshots`` row for a Response object; `raw` is its JSON text as received."""
    error = _dict(obj.get("error"))
    background = obj.get("background")
    output = obj.get("output")
    return {
        "exchange_id": notes.exchange_id,
        "seq": seq,
        "request_started_at": notes.request_started_at,
        "observed_at": observed_at,
        "source": source,
        "event": event,
        "response_id": _text(obj.get("id")),
        "conversation_id": conversation_id_of(obj),
        "previous_response_id": _text(obj.get("previous_response_id")),
        "model": _text(obj.get("model")),
        "status": _text(obj.get("status")),
        "background": background if isinstance(background, bool) else None,
        "created_at": _time(obj, "created_at", notes),
        "completed_at": _time(obj, "completed_at", notes),
        **_usage(obj, notes),
        "error_code": _text(error.get("code")),
        "error_message": _text(error.get("message")),
        "incomplete_reason": _text(_dict(obj.get("incomplete_details")).get("reason")),
        "output_items": len(output) if isinstance(output, list) else None,
        "raw": raw,
    }


def item_row(
    item: dict,
    notes,
    *,
    seq: int,
    index: int | None,
    observed_at: datetime | None,
    source: str,
    event: str | None,
    response_id: str | None,
    conversation_id: str | None,
) -> dict:
    """One ``response_items`` row: an input, output or conversation item (message, function_call,
    function_call_output, other tool calls); message content is not copied (the exchange keeps it)."""
    output = item.get("output")
    return {
        "exchange_id": notes.exchange_id,
        "seq": seq,
        "item_index": index,
        "request_started_at": notes.request_started_at,
        "observed_at": observed_at,
        "source": source,
        "event": event,
        "response_id": response_id,
        "conversation_id": conversation_id,
        "item_id": _text(item.get("id")),
        "type": _text(item.get("type")),
        "role": _text(item.get("role")),
        "status": _text(item.get("status")),
        "call_id": _text(item.get("call_id")),
        "name": _text(item.get("name")),
        "arguments": _text(item.get("arguments")),
        "output": None if output is None else _text(output),
    }


def item_rows(
    items: Any,
    notes,
    *,
    seq: int,
    observed_at: datetime | None,
    source: str,
    event: str | None = None,
    response_id: str | None = None,
    conversation_id: str | None = None,
    what: str = "items",
) -> list[dict]:
    """``response_items`` rows for a list of items (a response's output, a list's data, a request's input)."""
    if not isinstance(items, list):
        if items is not None:
            notes.note(f"{what} is not a list")
        return []
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            notes.note(f"{what}[{index}] is not an object")
            continue
        rows.append(
            item_row(
                item,
                notes,
                seq=seq,
                index=index,
                observed_at=observed_at,
                source=source,
                event=event,
                response_id=response_id,
                conversation_id=conversation_id,
            )
        )
    return rows
