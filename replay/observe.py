"""Reduce a response (JSON or SSE text) to what replay compares: an `Outcome`.

Recorded and replayed responses go through the same functions, so the matchers compare like with
like: the final state of every thread, run, step and message the response showed (stream deltas
accumulated), every run status seen in order, and the stream's event types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtap.addon.accumulate import StepDeltas
from runtap.addon.sse import parse_sse_text
from runtap.recordings.toolcalls import run_tool_calls, step_tool_calls

# The API's `object` names, and the kind replay files them under.
KINDS = {"thread": "thread", "thread.run": "run", "thread.run.step": "step", "thread.message": "message"}


@dataclass
class Outcome:
    """What one response (or one wait-for-outcome loop) showed."""

    status_code: int | None
    streamed: bool = False
    events: list[str] = field(default_factory=list)  # SSE event names, in order
    # kind -> object id -> the latest state seen; dicts keep first-seen order.
    objects: dict[str, dict[str, dict]] = field(default_factory=lambda: {k: {} for k in KINDS.values()})
    run_statuses: list[tuple[str, str]] = field(default_factory=list)  # (run id, status), in order
    error: str | None = None  # API error message, transport error, or unparseable body
    duration_ms: float | None = None

    def of(self, kind: str) -> list[dict]:
        """The final objects of one kind (thread, run, step, message), in first-seen order."""
        return list(self.objects[kind].values())

    def shown(self) -> list[list[dict]]:
        """The final objects of every kind, kind by kind: what `IdMap.learn` pairs by position."""
        return [self.of(kind) for kind in KINDS.values()]

    def created_ids(self) -> set[str]:
        """Ids of every object and tool call this response showed: ids a replay must learn."""
        ids = {oid for objs in self.objects.values() for oid in objs}
        for run in self.of("run"):
            ids.update(c.id for c in run_tool_calls(run) if c.id)
        for step in self.of("step"):
            ids.update(c.id for c in step_tool_calls(step) if c.id)
        return ids


def observe(status_code: int | None, body: str | None, *, streamed: bool) -> Outcome:
    """Observe one response body: SSE text when `streamed`, else JSON."""
    obs = Outcome(status_code=status_code, streamed=streamed)
    if not body:
        return obs
    if streamed:
        deltas = StepDeltas()
        for event in parse_sse_text(body, None):
            obs.events.append(event.event)
            _add_event(obs, deltas, event.event, event.data)
        for sid, step in obs.objects["step"].items():
            step["step_details"] = deltas.merged(sid, step.get("step_details"))
        return obs
    try:
        _add(obs, json.loads(body))
    except ValueError:
        obs.error = f"response is not JSON: {body[:80]!r}"
    return obs


def merge_polls(polls: list[Outcome]) -> Outcome:
    """One observation for a poll loop: every status seen, the final objects of the last poll."""
    last = polls[-1]
    merged = Outcome(status_code=last.status_code, objects=last.objects, error=last.error)
    for poll in polls:
        merged.run_statuses.extend(poll.run_statuses)
    return merged


def _add_event(obs: Outcome, deltas: StepDeltas, name: str, data: str) -> None:
    try:
        value = json.loads(data or "")
    except ValueError:
        return  # `data: [DONE]` and keep-alive comments carry nothing to compare
    if name == "error" or (isinstance(value, dict) and "error" in value and "object" not in value):
        obs.error = _error_message(value)
        return
    if isinstance(value, dict) and value.get("object") == "thread.run.step.delta":
        deltas.add(value.get("id"), value.get("delta"))
        return
    _add(obs, value)


def _add(obs: Outcome, value: Any) -> None:
    if not isinstance(value, dict):
        return
    if "error" in value and "object" not in value:
        obs.error = _error_message(value)
        return
    if value.get("object") == "list":
        for item in value.get("data") or []:
            _add(obs, item)
        return
    kind = KINDS.get(value.get("object"))
    oid = value.get("id")
    if kind is None or not isinstance(oid, str):
        return
    obs.objects[kind][oid] = value
    if kind == "run" and value.get("status"):
        obs.run_statuses.append((oid, value["status"]))


def _error_message(value: Any) -> str:
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error or value)
