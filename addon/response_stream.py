"""Rows from a streamed Responses answer (`createResponse` or `getResponse` with `stream=true`).

One pass over the events, each parsed once. An event is named by its data's ``type`` (the SDK
reads that, not the ``event:`` line, which is the fallback). Events carrying a ``response``
(created, queued, in_progress, completed, failed, incomplete) become response snapshots, with
their output items; ``output_item.added/done`` and ``function_call_arguments.done`` become item
rows; ``function_call_arguments.delta`` pieces are accumulated per item, so a call whose stream
was cut before its ``.done`` still gets a row with the arguments seen (as for runs' step deltas).
Every event gets an ``sse_events`` row. A Responses stream ends with its final response event
(``response.completed|failed|incomplete``) or an ``error`` event, not ``[DONE]``.
"""

from __future__ import annotations

import json
from datetime import datetime

from runtap.addon.exchange import Exchange
from runtap.addon.response_snapshots import conversation_id_of, item_row, item_rows, response_row
from runtap.addon.snapshots import epoch, loads
from runtap.addon.sse import parse_sse_text

FINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


class _Call:
    """What one stream said about one output item so far."""

    __slots__ = ("arguments", "index", "item", "unsettled")

    def __init__(self, item: dict, index: int | None) -> None:
        self.item = item
        self.index = index
        self.arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else ""
        self.unsettled: tuple[int, datetime | None] | None = None


class _Stream:
    """The state of one stream while its events become rows."""

    def __init__(self, rows: dict[str, list[dict]], notes, response_id: str | None) -> None:
        self.rows = rows
        self.notes = notes
        self.response_id = response_id
        self.conversation_id: str | None = None
        self.items: dict[str, _Call] = {}

    def item(self, item: dict, index: int | None, seq: int, at: datetime | None, event: str) -> None:
        self.rows["response_items"].append(
            item_row(
                item,
                self.notes,
                seq=seq,
                index=index,
                observed_at=at,
                source="sse",
                event=event,
                response_id=self.response_id,
                conversation_id=self.conversation_id,
            )
        )

    def response(self, obj: dict, seq: int, at: datetime | None, event: str) -> None:
        # `raw` is the response object itself, like a JSON body's, not the event around it.
        row = response_row(obj, json.dumps(obj), self.notes, seq=seq, observed_at=at, source="sse", event=event)
        self.rows["response_snapshots"].append(row)
        self.response_id = self.response_id or row["response_id"]
        self.conversation_id = self.conversation_id or conversation_id_of(obj)
        self.rows["response_items"] += item_rows(
            obj.get("output") or None,
            self.notes,
            seq=seq,
            observed_at=at,
            source="sse",
            event=event,
            response_id=row["response_id"],
            conversation_id=row["conversation_id"],
            what="response output",
        )

    def output_item(self, data: dict, seq: int, at: datetime | None, event: str) -> None:
        item = data.get("item")
        if not isinstance(item, dict):
            self.notes.note(f"event {seq} ({event}): no item object")
            return
        index = data.get("output_index") if isinstance(data.get("output_index"), int) else None
        key = item.get("id") if isinstance(item.get("id"), str) else f"#{index}"
        call = self.items.get(key)
        if call is None:
            call = self.items[key] = _Call(item, index)
        else:
            call.item = {**call.item, **item}
        if isinstance(item.get("arguments"), str) and event.endswith(".done"):
            call.arguments = item["arguments"]
        call.unsettled = None
        self.item(call.item, index, seq, at, event)

    def arguments(self, data: dict, seq: int, at: datetime | None, event: str) -> None:
        item_id = data.get("item_id")
        index = data.get("output_index") if isinstance(data.get("output_index"), int) else None
        key = item_id if isinstance(item_id, str) else f"#{index}"
        call = self.items.get(key)
        if call is None:  # a stream joined late (starting_after): the item was announced before
            call = self.items[key] = _Call({"id": item_id, "type": "function_call"}, index)
        if event.endswith(".delta"):
            delta = data.get("delta")
            if isinstance(delta, str):
                call.arguments += delta
            call.unsettled = (seq, at)
            return
        if isinstance(data.get("arguments"), str):
            call.arguments = data["arguments"]
        name = data.get("name")
        call.item = {**call.item, "arguments": call.arguments, **({"name": name} if isinstance(name, str) else {})}
        call.unsettled = None
        self.item(call.item, index, seq, at, event)

    def settle(self) -> None:
        """Calls known only from argument deltas (no later item event in the stream) get rows too."""
        for call in self.items.values():
            if call.unsettled is not None:
                seq, at = call.unsettled
                item = {**call.item, "arguments": call.arguments}
                self.item(item, call.index, seq, at, "response.function_call_arguments.delta")


def _error_text(obj: dict) -> str:
    error = obj.get("error") if isinstance(obj.get("error"), dict) else obj
    return str(error.get("message") or error.get("code") or "no message")[:200]


def _ids(obj: dict) -> tuple[str | None, str | None]:
    """(object id, object type) an event is about: its response, else its item."""
    for key in ("response", "item"):
        inner = obj.get(key)
        if isinstance(inner, dict):
            object_id = inner.get("id")
            kind = inner.get("object") if key == "response" else inner.get("type")
            return (object_id if isinstance(object_id, str) else None, kind if isinstance(kind, str) else key)
    item_id = obj.get("item_id")
    return (item_id if isinstance(item_id, str) else None, None)


def response_stream_rows(
    exchange: Exchange, text: str, rows: dict[str, list[dict]], notes, response_id: str | None = None
) -> dict:
    """Add the rows of a streamed Responses answer; return the ids it teaches about the exchange.

    Events come from `exchange.sse_events` (real arrival times) or are parsed from `text`; an
    event without its own time is dated at the response's end (or start). `response_id` is the
    one the request's path names, if any (a background response streamed again).
    """
    fallback = exchange.response_ended_at or exchange.response_started_at
    events = exchange.sse_events
    if events is None:
        events = parse_sse_text(text, fallback)
    fallback_at = epoch(fallback)
    stream = _Stream(rows, notes, response_id)
    final = False
    for ev in events:
        at = epoch(ev.received_at) if ev.received_at is not None else fallback_at
        data = ev.data
        obj = None
        if data and data != "[DONE]":
            try:
                obj = loads(data)
            except (ValueError, RecursionError):
                notes.note(f"event {ev.seq} ({ev.event[:40]}): data is not JSON")
        is_dict = isinstance(obj, dict)
        kind = obj.get("type") if is_dict and isinstance(obj.get("type"), str) else ev.event
        object_id, object_type = _ids(obj) if is_dict else (None, None)
        number = obj.get("sequence_number") if is_dict else None
        rows["sse_events"].append(
            {
                "exchange_id": exchange.exchange_id,
                "seq": ev.seq,
                "event": kind,
                "received_at": at,
                "object_id": object_id,
                "object_type": object_type,
                "data_bytes": len(data) if data.isascii() else len(data.encode("utf-8", "replace")),
                "sequence_number": number if isinstance(number, int) and not isinstance(number, bool) else None,
            }
        )
        final = final or kind in FINAL_EVENTS
        if not is_dict:
            continue
        if kind == "error":
            notes.note(f"stream error event: {_error_text(obj)}")
        elif isinstance(obj.get("response"), dict):
            stream.response(obj["response"], ev.seq, at, kind)
        elif kind in ("response.output_item.added", "response.output_item.done"):
            stream.output_item(obj, ev.seq, at, kind)
        elif kind.startswith("response.function_call_arguments."):
            stream.arguments(obj, ev.seq, at, kind)
    stream.settle()
    if not final:
        notes.note("stream truncated: no final response event")
    learned = {"response_id": stream.response_id, "conversation_id": stream.conversation_id}
    return {key: value for key, value in learned.items() if value is not None}
