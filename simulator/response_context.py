"""What the model sees before a new response's input, and whether it is the turn after function calls.

The context is the previous response's chain (its context, input and output) or the
conversation's items. Function calls in it must all be answered, and every output must answer
a call, as the hosted API checks. Function outputs after the last message make the response
the turn after the calls (what `submit_tool_outputs` is to a run).
"""

from __future__ import annotations

import json

from runtap.simulator.objects import ApiError
from runtap.simulator.response_requests import conversation_id
from runtap.simulator.response_state import ConversationState, ResponseState, ResponseStore


def resolve_context(
    store: ResponseStore, body: dict
) -> tuple[ConversationState | None, list[dict], ResponseState | None]:
    """The conversation (if any), the items before the input, and the last response among them."""
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        previous = store.responses.get(previous_id)
        if previous is None or previous.deleted or not previous.obj["store"]:
            raise ApiError(
                400,
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        if not previous.finished:
            raise ApiError(
                400,
                f"Previous response with id '{previous_id}' is still {previous.obj['status']}.",
                param="previous_response_id",
            )
        return None, previous.context + previous.input_items + previous.obj["output"], previous
    conv_id = conversation_id(body.get("conversation"))
    if conv_id is None:
        return None, [], None
    conversation = store.conversations.get(conv_id)
    if conversation is None or conversation.deleted:
        raise ApiError(404, f"Conversation with id '{conv_id}' not found.", param="conversation")
    last = next((r for r in reversed(conversation.responses) if "usage" in r.obj), None)
    return conversation, list(conversation.items), last


def check_calls(items: list[dict]) -> None:
    """Every function call answered by one output, and no output without its call."""
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    answered = set()
    for item in items:
        if item.get("type") == "function_call_output":
            if item["call_id"] not in calls:
                raise ApiError(
                    400, f"No tool call found for function call output with call_id {item['call_id']}.", param="input"
                )
            answered.add(item["call_id"])
    missing = [c for c in calls if c not in answered]
    if missing:
        raise ApiError(400, f"No tool output found for function call {missing[0]}.", param="input")


def trailing_outputs(items: list[dict]) -> dict[str, str]:
    """The function outputs after the last message, as text by call id (empty: a fresh turn)."""
    last = max((i for i, item in enumerate(items) if item.get("type") == "message"), default=-1)
    return {
        item["call_id"]: _output_text(item["output"])
        for item in items[last + 1 :]
        if item.get("type") == "function_call_output"
    }


def _output_text(output: object) -> str:
    """A function output as text (a string, or the text parts of a content list)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(p.get("text", "") for p in output if isinstance(p, dict))
    return json.dumps(output)
