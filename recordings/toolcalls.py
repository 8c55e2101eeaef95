"""Tool calls of recorded runs and steps: function name plus parsed arguments, paired across runs.

Where a run or step lists its tool calls is read by the capture layer's extractors
(`addon.snapshots.required_action_calls` and `step_calls`), so the store and replay agree on it.
The id mapping (which new `call_...` id answers which recorded one) and replay's tool-call
matcher pair two lists of calls the same way: first by function name and arguments, then by
name alone, then by position, so a reordered parallel call does not look like a change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from runtap.addon.snapshots import required_action_calls, step_calls


@dataclass(frozen=True)
class ToolCall:
    """One tool call: its id (ignored when comparing), type, function name and parsed arguments."""

    id: str | None
    type: str | None
    name: str | None
    arguments: Any  # parsed JSON when the arguments are JSON, else the raw string


def parse_arguments(raw: Any) -> Any:
    """Arguments as parsed JSON, so key order and whitespace never count as a difference."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def from_raw(raw: dict) -> ToolCall:
    """Normalize a tool call dict from `required_action` or `step_details.tool_calls`."""
    function = raw.get("function") if isinstance(raw.get("function"), dict) else {}
    return ToolCall(
        id=raw.get("id"),
        type=raw.get("type"),
        name=function.get("name"),
        arguments=parse_arguments(function.get("arguments")),
    )


def run_tool_calls(run: dict) -> list[ToolCall]:
    """The tool calls a run waits on (`required_action.submit_tool_outputs.tool_calls`)."""
    return _parsed(required_action_calls(run))


def step_tool_calls(step: dict) -> list[ToolCall]:
    """The tool calls of a `tool_calls` step (none for a message-creation step)."""
    return _parsed(step_calls(step.get("step_details")))


def _parsed(calls: Any) -> list[ToolCall]:
    return [from_raw(call) for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []


def _key(call: ToolCall) -> str:
    return json.dumps([call.type, call.name, call.arguments], sort_keys=True, default=str)


def pair(recorded: list[ToolCall], replayed: list[ToolCall]) -> list[tuple[ToolCall | None, ToolCall | None]]:
    """Pair calls by name and arguments, then by name, then by position; unpaired ones get None."""
    pairs: dict[int, tuple[ToolCall, ToolCall]] = {}
    left = list(range(len(replayed)))
    for same in (lambda a, b: _key(a) == _key(b), lambda a, b: a.name == b.name, lambda a, b: True):
        for i, rec in enumerate(recorded):
            if i in pairs:
                continue
            j = next((j for j in left if same(rec, replayed[j])), None)
            if j is not None:
                pairs[i] = (rec, replayed[j])
                left.remove(j)
    result: list[tuple[ToolCall | None, ToolCall | None]] = [
        pairs.get(i, (rec, None)) for i, rec in enumerate(recorded)
    ]
    result += [(None, replayed[j]) for j in left]
    return result
