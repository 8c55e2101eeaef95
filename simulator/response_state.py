"""In-memory state of the Responses and Conversations APIs: responses, conversations, items.

Everything here runs on the server's event loop, so no locking is needed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from runtap.simulator.behaviour import Plan
from runtap.simulator.objects import ApiError

TERMINAL = ("completed", "failed", "incomplete", "cancelled")


@dataclass
class ConversationState:
    """A conversation's public object, its items (oldest first) and the responses made in it."""

    obj: dict
    items: list[dict] = field(default_factory=list)
    responses: list[ResponseState] = field(default_factory=list)
    deleted: bool = False


@dataclass
class ResponseState:
    """A response's public object plus what the engine needs to play it out and report on it.

    `turn` is 0 for a fresh turn (function calls or a message), 1 for the turn after function
    outputs (a message), as a run's turns before and after `submit_tool_outputs`. `context` is
    what the model saw before this request's `input_items` (a previous response chain or the
    conversation's items). `events` keeps the events `(type, json_text, status)` of logged ones.
    """

    obj: dict
    plan: Plan
    turn: int
    user_texts: list[str]
    tool_outputs: list[str]
    extra_prompt: int
    cached_tokens: int
    context: list[dict]
    input_items: list[dict]
    conversation: ConversationState | None
    streamed: bool
    logged: bool  # keep every event (background responses can be streamed again from the log)
    sequence: int = 0  # the next event's sequence_number
    function_calls: list[dict] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str | None]] = field(default_factory=list)
    subscribers: list[asyncio.Queue] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    deleted: bool = False

    @property
    def finished(self) -> bool:
        """Whether the response reached a final status."""
        return self.obj["status"] in TERMINAL


class ResponseStore:
    """Responses, conversations and items by id (unknown ids raise a 404 `ApiError`)."""

    def __init__(self) -> None:
        self.responses: dict[str, ResponseState] = {}
        self.conversations: dict[str, ConversationState] = {}
        self.items: dict[str, dict] = {}  # every item seen, by id (for item_reference)
        self.call_origin: dict[str, ResponseState] = {}  # call_id -> the response that made the call

    def response(self, response_id: str) -> ResponseState:
        """A stored, undeleted response, or a 404."""
        state = self.responses.get(response_id)
        if state is None or state.deleted or not state.obj["store"]:
            raise ApiError(404, f"Response with id '{response_id}' not found.")
        return state

    def conversation(self, conversation_id: str) -> ConversationState:
        """An undeleted conversation, or a 404."""
        state = self.conversations.get(conversation_id)
        if state is None or state.deleted:
            raise ApiError(404, f"Conversation with id '{conversation_id}' not found.", param="conversation_id")
        return state

    def add_conversation(self, obj: dict) -> ConversationState:
        """Register a new conversation."""
        state = ConversationState(obj)
        self.conversations[obj["id"]] = state
        return state

    def add_items(self, conversation: ConversationState | None, items: list[dict]) -> None:
        """Index `items` by id and append them to `conversation` (if any)."""
        for item in items:
            self.items[item["id"]] = item
        if conversation is not None:
            conversation.items.extend(items)

    def conversation_item(self, conversation: ConversationState, item_id: str) -> dict:
        """An item of the conversation, or a 404."""
        for item in conversation.items:
            if item["id"] == item_id:
                return item
        raise ApiError(404, f"Item with id '{item_id}' not found.", param="item_id")
