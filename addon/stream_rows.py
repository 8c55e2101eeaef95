"""Rows from a streamed (Server-Sent Events) runs response: one pass over its events.

Each event is parsed once. Run objects become run snapshots, step objects step snapshots (their
``step_details`` completed by the step's earlier deltas), step deltas are accumulated, and every
event gets an ``sse_events`` row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runtap.addon.accumulate import StepDeltas
from runtap.addon.exchange import Exchange
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
from runtap.addon.sse import parse_sse_text

_KIND_BY_OBJECT = {
    "thread.run": "run",
    "thread.run.step": "step",
    "thread.run.step.delta": "delta",
    "thread": "thread",
}


def _kind(obj: dict, event: str) -> str | None:
    """What an event carries: the data's own ``object`` decides; the event name only without it."""
    object_type = obj.get("object")
    if isinstance(object_type, str):
        return _KIND_BY_OBJECT.get(object_type)
    if event == "thread.created":
        return "thread"
    if event.startswith("thread.run.step."):
        return "delta" if event == "thread.run.step.delta" else "step"
    if event.startswith("thread.run."):
        return "run"
    return None


class _Stream:
    """The state of one stream while its events are turned into rows."""

    def __init__(self, rows: dict[str, list[dict]], notes: ExchangeNotes) -> None:
        self.rows = rows
        self.notes = notes
        self.deltas = StepDeltas()
        # Steps whose latest deltas no later snapshot has carried yet: step id -> (seq, time).
        self.unsettled: dict[str, tuple[int, datetime | None]] = {}
        self.run_of_step: dict[str, str | None] = {}
        self.learned: dict[str, str | None] = {}

    def run(self, obj: dict, raw: str, seq: int, observed_at: datetime | None, event: str) -> None:
        row = run_row(obj, raw, self.notes, seq=seq, observed_at=observed_at, source="sse", event=event)
        self.rows["run_snapshots"].append(row)
        self.rows["tool_call_snapshots"] += tool_call_rows(
            required_action_calls(obj),
            self.notes,
            seq=seq,
            observed_at=observed_at,
            source="required_action",
            run_id=row["run_id"],
            step_id=None,
        )
        if "run_id" not in self.learned:
            self.learned["run_id"] = row["run_id"]
            self.learned.setdefault("thread_id", row["thread_id"])

    def step(self, obj: dict, raw: str, seq: int, observed_at: datetime | None, event: str) -> None:
        step_id = obj.get("id")
        details = obj.get("step_details")
        if isinstance(step_id, str):
            details = self.deltas.merged(step_id, details)
            self.unsettled.pop(step_id, None)
        row = step_row(obj, raw, details, self.notes, seq=seq, observed_at=observed_at, source="sse", event=event)
        self.rows["step_snapshots"].append(row)
        self.run_of_step[row["step_id"]] = row["run_id"]
        self.rows["tool_call_snapshots"] += tool_call_rows(
            step_calls(details),
            self.notes,
            seq=seq,
            observed_at=observed_at,
            source="step",
            run_id=row["run_id"],
            step_id=row["step_id"],
        )

    def delta(self, obj: dict, seq: int, observed_at: datetime | None) -> None:
        step_id = obj.get("id")
        if not isinstance(step_id, str):
            self.notes.note(f"event {seq}: step delta without a step id")
            return
        self.deltas.add(step_id, obj.get("delta"))
        self.unsettled[step_id] = (seq, observed_at)

    def settle(self) -> None:
        """Tool calls known only from deltas (no later step snapshot in the stream) get rows too."""
        for step_id, (seq, observed_at) in self.unsettled.items():
            self.rows["tool_call_snapshots"] += tool_call_rows(
                step_calls(self.deltas.details(step_id)),
                self.notes,
                seq=seq,
                observed_at=observed_at,
                source="step",
                run_id=self.run_of_step.get(step_id),
                step_id=step_id,
            )


def _error_text(obj: Any) -> str:
    error = obj.get("error") if isinstance(obj, dict) else None
    error = error if isinstance(error, dict) else obj if isinstance(obj, dict) else {}
    return str(error.get("message") or error.get("code") or "no message")[:200]


def stream_rows(exchange: Exchange, text: str, rows: dict[str, list[dict]], notes: ExchangeNotes) -> dict:
    """Add the rows of a streamed response; return the ids it teaches about the exchange.

    Events come from `exchange.sse_events` (real arrival times) or are parsed from `text`; an
    event without its own time is dated at the response's end (or start).
    """
    fallback = exchange.response_ended_at or exchange.response_started_at
    events = exchange.sse_events
    if events is None:
        events = parse_sse_text(text, fallback)
    fallback_at = epoch(fallback)
    stream = _Stream(rows, notes)
    done = False
    for ev in events:
        received_at = epoch(ev.received_at) if ev.received_at is not None else fallback_at
        data = ev.data
        obj = None
        if ev.event == "done" or data == "[DONE]":
            done = True
        elif data:
            try:
                obj = loads(data)
            except (ValueError, RecursionError):
                notes.note(f"event {ev.seq} ({ev.event[:40]}): data is not JSON")
        is_dict = isinstance(obj, dict)
        object_id = obj.get("id") if is_dict else None
        object_type = obj.get("object") if is_dict else None
        rows["sse_events"].append(
            {
                "exchange_id": exchange.exchange_id,
                "seq": ev.seq,
                "event": ev.event,
                "received_at": received_at,
                "object_id": object_id if isinstance(object_id, str) else None,
                "object_type": object_type if isinstance(object_type, str) else None,
                "data_bytes": len(data) if data.isascii() else len(data.encode("utf-8", "replace")),
                "sequence_number": None,  # Responses streams number their events; runs streams do not
            }
        )
        if not is_dict:
            continue
        if ev.event == "error":
            notes.note(f"stream error event: {_error_text(obj)}")
            continue
        kind = _kind(obj, ev.event)
        if kind == "run":
            stream.run(obj, data, ev.seq, received_at, ev.event)
        elif kind == "step":
            stream.step(obj, data, ev.seq, received_at, ev.event)
        elif kind == "delta":
            stream.delta(obj, ev.seq, received_at)
        elif kind == "thread" and isinstance(object_id, str):
            stream.learned.setdefault("thread_id", object_id)
    stream.settle()
    if not done:
        notes.note("stream truncated: no done event")
    return stream.learned
