"""Reduce a Responses or Conversations answer (JSON or SSE text) to what the migration compares.

The counterpart of `replay.observe` for the new API: the final state of the response the answer
showed (stream events carry it whole; argument and text deltas are accumulated for a stream cut
before its end), every status seen in order, the stream's event names, and the error, if any.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtap.addon.sse import parse_sse_text
from runtap.recordings import toolcalls


@dataclass
class ResponseView:
    """What one answer (or one polling loop) showed of a response or a conversation."""

    status_code: int | None
    streamed: bool = False
    events: list[str] = field(default_factory=list)  # stream event names, in order
    response: dict | None = None  # the latest state of the response
    statuses: list[str] = field(default_factory=list)  # every response status seen, in order
    items: dict[str, dict] = field(default_factory=dict)  # streamed output items by id (deltas applied)
    object: dict | None = None  # any other JSON object (a conversation, an item list)
    error: str | None = None

    @property
    def id(self) -> str | None:
        """The response's id."""
        return (self.response or {}).get("id")

    @property
    def status(self) -> str | None:
        """The response's latest status."""
        return (self.response or {}).get("status")

    def output(self) -> list[dict]:
        """The response's output items; a stream cut before its end shows the items it got to."""
        output = (self.response or {}).get("output")
        return output if output else list(self.items.values())

    def function_calls(self) -> list[toolcalls.ToolCall]:
        """The response's `function_call` items as tool calls (name and parsed arguments)."""
        return [
            toolcalls.ToolCall(
                item.get("call_id"), "function", item.get("name"), toolcalls.parse_arguments(item.get("arguments"))
            )
            for item in self.output()
            if item.get("type") == "function_call"
        ]

    def has_message(self) -> bool:
        """True when the response wrote an assistant message."""
        return any(i.get("type") == "message" and i.get("role", "assistant") == "assistant" for i in self.output())


def observe_response(status_code: int | None, body: str | None, *, streamed: bool) -> ResponseView:
    """Observe one answer body: SSE text when `streamed`, else JSON."""
    view = ResponseView(status_code=status_code, streamed=streamed)
    if not body:
        return view
    if streamed:
        for event in parse_sse_text(body, None):
            _add_event(view, event.event, event.data)
        return view
    try:
        value = json.loads(body)
    except ValueError:
        view.error = f"response is not JSON: {body[:80]!r}"
        return view
    if isinstance(value, dict) and value.get("object") == "response":
        _set_response(view, value)
    elif isinstance(value, dict) and "error" in value:
        view.error = error_message(value)
    elif isinstance(value, dict):
        view.object = value
    return view


def merge_polls(polls: list[ResponseView]) -> ResponseView:
    """One view of a polling loop: every status seen, the last poll's response."""
    last = polls[-1]
    merged = ResponseView(status_code=last.status_code, response=last.response, error=last.error)
    merged.statuses = [s for poll in polls for s in poll.statuses]
    return merged


def _add_event(view: ResponseView, name: str, data: str) -> None:
    try:
        value = json.loads(data or "")
    except ValueError:
        return  # `[DONE]` and keep-alives
    if not isinstance(value, dict):
        return
    name = value.get("type") if isinstance(value.get("type"), str) else name  # the data names the event
    view.events.append(name)
    if name == "error" or ("error" in value and "response" not in value and "type" not in value):
        view.error = error_message(value)
    elif isinstance(value.get("response"), dict):
        _set_response(view, value["response"])
    elif isinstance(value.get("item"), dict) and value["item"].get("id"):
        view.items[value["item"]["id"]] = dict(value["item"])
    elif name == "response.function_call_arguments.delta" and value.get("item_id") in view.items:
        item = view.items[value["item_id"]]
        item["arguments"] = (item.get("arguments") or "") + str(value.get("delta") or "")
    elif name == "response.output_text.delta" and value.get("item_id") in view.items:
        view.items[value["item_id"]].setdefault("content", [])


def _set_response(view: ResponseView, response: dict) -> None:
    view.response = response
    if response.get("status"):
        view.statuses.append(response["status"])


def error_message(value: Any) -> str:
    """The message of an API error body (wrapped `{"error": {...}}` or a flat stream `error` event)."""
    error = value.get("error") if isinstance(value, dict) and "error" in value else value
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error)
