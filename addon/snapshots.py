"""Rows for one observed run, run step or tool call, shaped as the store's snapshot tables.

Values are taken as the API sent them; a value of an unexpected type becomes NULL (the raw JSON
keeps it) and is reported in `ExchangeNotes.problems`, which ends up in ``exchanges.error``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_BIGINT = 1 << 63


@dataclass(slots=True)
class ExchangeNotes:
    """What normalizing one exchange notes down: its id and start time, which every row it
    produces carries, and the problems found in its data (for ``exchanges.error``)."""

    exchange_id: str
    request_started_at: datetime | None
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        """Record a problem once."""
        if problem not in self.problems:
            self.problems.append(problem)


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: the store's JSON columns would refuse them.
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # built once: json.loads would per call


def loads(text: str) -> Any:
    """Parse strict JSON text (no NaN/Infinity); raise ValueError (or RecursionError) otherwise."""
    return _DECODER.decode(text)


def epoch(value: float | None) -> datetime | None:
    """Turn epoch seconds (the proxy's clock) into an aware UTC datetime; None stays None."""
    try:
        return None if value is None else datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _time(obj: dict, key: str, notes: ExchangeNotes) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        stamp = epoch(value)
        if stamp is not None:
            return stamp
    notes.note(f"unusable {key} {str(value)[:40]!r}")
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _usage(obj: dict, notes: ExchangeNotes) -> tuple[bool, int | None, int | None, int | None]:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        if usage is not None:
            notes.note("usage is not an object")
        return False, None, None, None
    tokens = []
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and -_BIGINT <= value < _BIGINT:
            tokens.append(value)
        else:
            if value is not None:
                notes.note(f"unusable usage.{key}")
            tokens.append(None)
    return True, tokens[0], tokens[1], tokens[2]


def run_row(
    obj: dict, raw: str, notes: ExchangeNotes, *, seq: int, observed_at: datetime | None, source: str, event: str | None
) -> dict:
    """One ``run_snapshots`` row for a run object; `raw` is its JSON text as received."""
    has_usage, prompt, completion, total = _usage(obj, notes)
    last_error = _dict(obj.get("last_error"))
    return {
        "exchange_id": notes.exchange_id,
        "seq": seq,
        "request_started_at": notes.request_started_at,
        "observed_at": observed_at,
        "source": source,
        "event": event,
        "run_id": _text(obj.get("id")),
        "thread_id": _text(obj.get("thread_id")),
        "assistant_id": _text(obj.get("assistant_id")),
        "status": _text(obj.get("status")),
        "model": _text(obj.get("model")),
        "created_at": _time(obj, "created_at", notes),
        "started_at": _time(obj, "started_at", notes),
        "expires_at": _time(obj, "expires_at", notes),
        "cancelled_at": _time(obj, "cancelled_at", notes),
        "failed_at": _time(obj, "failed_at", notes),
        "completed_at": _time(obj, "completed_at", notes),
        "has_usage": has_usage,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "last_error_code": _text(last_error.get("code")),
        "last_error_message": _text(last_error.get("message")),
        "incomplete_reason": _text(_dict(obj.get("incomplete_details")).get("reason")),
        "required_action": _json(obj.get("required_action")),
        "raw": raw,
    }


def step_row(
    obj: dict,
    raw: str,
    details: Any,
    notes: ExchangeNotes,
    *,
    seq: int,
    observed_at: datetime | None,
    source: str,
    event: str | None,
) -> dict:
    """One ``step_snapshots`` row; `details` is the step_details to store (deltas accumulated)."""
    has_usage, prompt, completion, total = _usage(obj, notes)
    # The spec names it expired_at; the hosted API sent expires_at.
    expired_key = "expired_at" if obj.get("expired_at") is not None else "expires_at"
    return {
        "exchange_id": notes.exchange_id,
        "seq": seq,
        "request_started_at": notes.request_started_at,
        "observed_at": observed_at,
        "source": source,
        "event": event,
        "step_id": _text(obj.get("id")),
        "run_id": _text(obj.get("run_id")),
        "thread_id": _text(obj.get("thread_id")),
        "assistant_id": _text(obj.get("assistant_id")),
        "type": _text(obj.get("type")),
        "status": _text(obj.get("status")),
        "created_at": _time(obj, "created_at", notes),
        "completed_at": _time(obj, "completed_at", notes),
        "cancelled_at": _time(obj, "cancelled_at", notes),
        "failed_at": _time(obj, "failed_at", notes),
        "expired_at": _time(obj, expired_key, notes),
        "has_usage": has_usage,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "last_error_code": _text(_dict(obj.get("last_error")).get("code")),
        "step_details": _json(details),
        "raw": raw,
    }


def _call_fields(call: dict) -> tuple[str | None, str | None, str | None]:
    """(function name, arguments, output) of a tool call, whatever its type."""
    kind = call.get("type")
    if kind == "function" or "function" in call:
        function = _dict(call.get("function"))
        return _text(function.get("name")), _text(function.get("arguments")), _text(function.get("output"))
    if kind == "code_interpreter":
        interpreter = _dict(call.get("code_interpreter"))
        return None, _text(interpreter.get("input")), _json(interpreter.get("outputs"))
    if kind == "file_search":
        return None, None, _json(_dict(call.get("file_search")).get("results"))
    return None, None, None


def tool_call_rows(
    calls: Any,
    notes: ExchangeNotes,
    *,
    seq: int,
    observed_at: datetime | None,
    source: str,
    run_id: str | None,
    step_id: str | None,
) -> list[dict]:
    """``tool_call_snapshots`` rows for a list of tool calls (from required_action or a step)."""
    if not isinstance(calls, list):
        if calls is not None:
            notes.note(f"{source} tool_calls is not a list")
        return []
    rows = []
    for call in calls:
        if not isinstance(call, dict):
            notes.note(f"{source} tool call is not an object")
            continue
        name, arguments, output = _call_fields(call)
        rows.append(
            {
                "exchange_id": notes.exchange_id,
                "seq": seq,
                "observed_at": observed_at,
                "source": source,
                "run_id": run_id,
                "step_id": step_id,
                "tool_call_id": _text(call.get("id")),
                "type": _text(call.get("type")),
                "function_name": name,
                "arguments": arguments,
                "output": output,
            }
        )
    return rows


def required_action_calls(run: dict) -> Any:
    """The tool calls a run asks for, or None when it asks for none."""
    action = _dict(run.get("required_action"))
    return _dict(action.get("submit_tool_outputs")).get("tool_calls")


def step_calls(details: Any) -> Any:
    """The tool calls listed in step details, or None for a message-creation step."""
    return _dict(details).get("tool_calls")
