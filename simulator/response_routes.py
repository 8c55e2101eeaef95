"""HTTP routes of the Responses and Conversations APIs (mounted under any path prefix by `routes`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from runtap.simulator.middleware import CONFIG, CUT_AFTER, read_body, request_text
from runtap.simulator.objects import ApiError
from runtap.simulator.response_engine import END_EVENTS, ResponseEngine
from runtap.simulator.response_objects import conversation_object, to_items
from runtap.simulator.response_requests import check_items, check_metadata
from runtap.simulator.response_state import ConversationState, ResponseState
from runtap.simulator.sse import stream_events
from runtap.simulator.state import paginate

RESPONSES = web.AppKey("responses", ResponseEngine)


async def create_response(request: web.Request) -> web.StreamResponse:
    """createResponse: POST /responses (JSON when done, at once for `background`, or SSE)."""
    body = await read_body(request)
    engine = _engine(request)
    state = engine.create(body, request_text(request, body))
    if body.get("stream"):
        return await _stream(request, state, engine.subscribe(state))
    if not state.obj["background"]:
        await state.done.wait()
    return _response_json(request, state)


async def get_response(request: web.Request) -> web.StreamResponse:
    """getResponse: GET /responses/{response_id}; `stream=true` streams a background response
    again from `starting_after` (a sequence number)."""
    state = _response(request)
    if request.query.get("stream") != "true":
        return _response_json(request, state)
    if not state.obj["background"]:
        raise ApiError(400, "Only responses created with background=true can be streamed again.", param="stream")
    after = request.query.get("starting_after", "-1")
    if not after.lstrip("-").isdigit():
        raise ApiError(400, f"Invalid 'starting_after': expected an integer, got {after!r}.", param="starting_after")
    return await _stream(request, state, _engine(request).subscribe(state, int(after)))


async def cancel_response(request: web.Request) -> web.Response:
    """cancelResponse: POST /responses/{response_id}/cancel (background responses only)."""
    state = _response(request)
    _engine(request).cancel(state)
    return _response_json(request, state)


async def delete_response(request: web.Request) -> web.Response:
    """deleteResponse: DELETE /responses/{response_id}."""
    state = _response(request)
    _engine(request).delete(state)
    return web.json_response({"id": state.obj["id"], "object": "response", "deleted": True})


async def list_input_items(request: web.Request) -> web.Response:
    """listInputItems: GET /responses/{response_id}/input_items (limit, order, after)."""
    return web.json_response(paginate(_response(request).input_items, dict(request.query)))


async def create_conversation(request: web.Request) -> web.Response:
    """createConversation: POST /conversations with optional `metadata` and `items`."""
    body = await read_body(request)
    check_metadata(body.get("metadata"))
    raw_items = check_items(body.get("items"), "items", required=False)
    store = _engine(request).store
    items = to_items(raw_items, "items", store.items.get)
    conversation = store.add_conversation(conversation_object(body.get("metadata")))
    store.add_items(conversation, items)
    return web.json_response(conversation.obj)


async def get_conversation(request: web.Request) -> web.Response:
    """getConversation: GET /conversations/{conversation_id}."""
    return web.json_response(_conversation(request).obj)


async def update_conversation(request: web.Request) -> web.Response:
    """updateConversation: POST /conversations/{conversation_id} (`metadata` is required)."""
    conversation = _conversation(request)
    body = await read_body(request)
    if "metadata" not in body:
        raise ApiError(
            400, "Missing required parameter: 'metadata'.", param="metadata", code="missing_required_parameter"
        )
    check_metadata(body["metadata"])
    conversation.obj["metadata"] = body["metadata"] or {}
    return web.json_response(conversation.obj)


async def delete_conversation(request: web.Request) -> web.Response:
    """deleteConversation: DELETE /conversations/{conversation_id}."""
    conversation = _conversation(request)
    conversation.deleted = True
    return web.json_response({"id": conversation.obj["id"], "object": "conversation.deleted", "deleted": True})


async def create_conversation_items(request: web.Request) -> web.Response:
    """createConversationItems: POST /conversations/{conversation_id}/items; lists the added items."""
    conversation = _conversation(request)
    body = await read_body(request)
    store = _engine(request).store
    items = to_items(check_items(body.get("items"), "items", required=True), "items", store.items.get)
    store.add_items(conversation, items)
    return web.json_response(paginate(items, {"order": "asc", "limit": "100"}))


async def list_conversation_items(request: web.Request) -> web.Response:
    """listConversationItems: GET /conversations/{conversation_id}/items (limit, order, after)."""
    return web.json_response(paginate(_conversation(request).items, dict(request.query)))


async def get_conversation_item(request: web.Request) -> web.Response:
    """getConversationItem: GET /conversations/{conversation_id}/items/{item_id}."""
    conversation = _conversation(request)
    return web.json_response(_engine(request).store.conversation_item(conversation, request.match_info["item_id"]))


async def delete_conversation_item(request: web.Request) -> web.Response:
    """deleteConversationItem: DELETE /conversations/{conversation_id}/items/{item_id}; returns the conversation."""
    conversation = _conversation(request)
    item = _engine(request).store.conversation_item(conversation, request.match_info["item_id"])
    conversation.items.remove(item)
    return web.json_response(conversation.obj)


ROUTES = [
    ("POST", "/responses", create_response, "createResponse"),
    ("GET", "/responses/{response_id}", get_response, "getResponse"),
    ("DELETE", "/responses/{response_id}", delete_response, "deleteResponse"),
    ("POST", "/responses/{response_id}/cancel", cancel_response, "cancelResponse"),
    ("GET", "/responses/{response_id}/input_items", list_input_items, "listInputItems"),
    ("POST", "/conversations", create_conversation, "createConversation"),
    ("GET", "/conversations/{conversation_id}", get_conversation, "getConversation"),
    ("POST", "/conversations/{conversation_id}", update_conversation, "updateConversation"),
    ("DELETE", "/conversations/{conversation_id}", delete_conversation, "deleteConversation"),
    ("POST", "/conversations/{conversation_id}/items", create_conversation_items, "createConversationItems"),
    ("GET", "/conversations/{conversation_id}/items", list_conversation_items, "listConversationItems"),
    ("GET", "/conversations/{conversation_id}/items/{item_id}", get_conversation_item, "getConversationItem"),
    ("DELETE", "/conversations/{conversation_id}/items/{item_id}", delete_conversation_item, "deleteConversationItem"),
]


async def _stream(request: web.Request, state: ResponseState, queue: asyncio.Queue) -> web.StreamResponse:
    engine = _engine(request)
    try:
        return await stream_events(
            request,
            queue,
            request.get(CUT_AFTER),
            lambda status: engine.note_served(state, status),
            END_EVENTS,
            done=None,  # the Responses API ends a stream with its final event, not [DONE]
        )
    finally:
        engine.unsubscribe(state, queue)


def _response_json(request: web.Request, state: ResponseState) -> web.Response:
    _engine(request).note_served(state, state.obj["status"])
    headers = {"openai-poll-after-ms": str(request.app[CONFIG].poll_after_ms)}
    return web.json_response(state.obj, headers=headers)


def _response(request: web.Request) -> ResponseState:
    return _engine(request).store.response(request.match_info["response_id"])


def _conversation(request: web.Request) -> ConversationState:
    return _engine(request).store.conversation(request.match_info["conversation_id"])


def _engine(request: web.Request) -> ResponseEngine:
    return request.app[RESPONSES]
