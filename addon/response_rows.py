"""Rows from one successful Responses or Conversations exchange (the runs API has addon/normalize.py).

JSON answers: a Response (createResponse, getResponse, cancelResponse) is a response snapshot
with its output items; item lists (listInputItems, createConversationItems,
listConversationItems) and single items (getConversationItem) are item rows; conversation
objects and deletions teach the exchange its ids. Streams go to addon/response_stream.py. The
input items a createResponse or createConversation request sent (the `function_call_output`
items that continue function calls among them) are item rows too, once the answer says which
response or conversation they went to.
"""

from __future__ import annotations

from typing import Any

from runtap.addon.exchange import Exchange
from runtap.addon.response_routes import ResponseRoute
from runtap.addon.response_snapshots import conversation_id_of, item_row, item_rows, response_row
from runtap.addon.response_stream import response_stream_rows
from runtap.addon.snapshots import epoch, loads

Rows = dict[str, list[dict]]
_RESPONSE_OBJECTS = frozenset({"createResponse", "getResponse", "cancelResponse"})
_ITEM_LISTS = frozenset({"listInputItems", "createConversationItems", "listConversationItems"})
# Requests whose items the answer does not repeat: (operation, body key).
_REQUEST_ITEMS = {"createResponse": "input", "createConversation": "items"}


def response_exchange_rows(
    exchange: Exchange, route: ResponseRoute, request: dict, text: str, streamed: bool, rows: Rows, notes
) -> dict:
    """Add the rows of a 2xx exchange on a Responses/Conversations route; return the ids it
    teaches about the exchange (response_id, conversation_id)."""
    if streamed:
        learned = response_stream_rows(exchange, text, rows, notes, route.response_id)
    else:
        learned = _json_rows(exchange, route, text, rows, notes)
    key = _REQUEST_ITEMS.get(route.operation)
    if key is not None and isinstance(request.get(key), list):
        rows["response_items"] += item_rows(
            request[key],
            notes,
            seq=0,
            observed_at=epoch(exchange.request_started_at),
            source="request",
            response_id=learned.get("response_id"),
            conversation_id=learned.get("conversation_id") or conversation_id_of(request),
            what=f"request {key}",
        )
    return learned


def _json_rows(exchange: Exchange, route: ResponseRoute, text: str, rows: Rows, notes) -> dict:
    if not text.strip():
        notes.note("empty response body")
        return {}
    try:
        doc = loads(text)
    except (ValueError, RecursionError) as exc:
        notes.note(f"response body is not JSON: {str(exc).splitlines()[0][:80]}")
        return {}
    if not isinstance(doc, dict):
        notes.note("response body is not a JSON object")
        return {}
    at = epoch(exchange.response_ended_at or exchange.response_started_at)
    operation = route.operation
    ids = {"response_id": route.response_id, "conversation_id": route.conversation_id}
    if operation in _RESPONSE_OBJECTS:
        if doc.get("object", "response") != "response":
            notes.note("response body is not a response object")
            return {}
        row = response_row(doc, text, notes, seq=0, observed_at=at, source="response", event=None)
        rows["response_snapshots"].append(row)
        ids = {"response_id": row["response_id"], "conversation_id": row["conversation_id"]}
        rows["response_items"] += item_rows(
            doc.get("output"), notes, seq=0, observed_at=at, source="response", **ids, what="response output"
        )
    elif operation in _ITEM_LISTS:
        # A response's input items were input to it; a conversation's are just its items.
        source = "input_items" if operation == "listInputItems" else "list"
        rows["response_items"] += item_rows(
            _data(doc, notes), notes, seq=0, observed_at=at, source=source, **ids, what="list data"
        )
    elif operation == "getConversationItem":
        rows["response_items"].append(
            item_row(doc, notes, seq=0, index=None, observed_at=at, source="item", event=None, **ids)
        )
    elif operation in ("createConversation", "getConversation", "updateConversation", "deleteConversationItem"):
        ids["conversation_id"] = _id(doc) or ids["conversation_id"]  # all answer with the conversation
    return {key: value for key, value in ids.items() if value is not None}


def _data(doc: dict, notes) -> Any:
    data = doc.get("data")
    if not isinstance(data, list):
        notes.note("list response has no data array")
        return None
    return data


def _id(doc: dict) -> str | None:
    value = doc.get("id")
    return value if isinstance(value, str) else None
