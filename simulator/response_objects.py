"""Builders for the Responses and Conversations APIs' JSON objects, in the spec's shapes.

Shapes follow openai/openai-openapi (`Response`, `OutputItem`, `ItemResource`,
`ConversationResource`, ...). Fields the spec does not let be null are omitted until known
(`usage`) or always filled (`logprobs: []`, `strict` on function tools).
"""

from __future__ import annotations

from collections.abc import Callable

from runtap.simulator.ids import new_id
from runtap.simulator.objects import ApiError, now

# Models whose output tokens include reasoning tokens (reported in output_tokens_details).
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
TEXT_PARTS = ("input_text", "output_text", "text")
ROLES = ("user", "assistant", "system", "developer")


def response_object(body: dict, conversation_id: str | None, background: bool) -> dict:
    """A new response from a (validated) createResponse body; `status` is set by the engine."""
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": now(),
        "status": "queued" if background else "in_progress",
        "background": background,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": _or(body.get("parallel_tool_calls"), True),
        "previous_response_id": body.get("previous_response_id"),
        "conversation": {"id": conversation_id} if conversation_id else None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": body.get("service_tier") or "default",
        "store": _or(body.get("store"), True),
        "temperature": _or(body.get("temperature"), 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": _or(body.get("tool_choice"), "auto"),
        "tools": [echo_tool(t) for t in body.get("tools") or []],
        "top_logprobs": _or(body.get("top_logprobs"), 0),
        "top_p": _or(body.get("top_p"), 1.0),
        "truncation": body.get("truncation") or "disabled",
        "metadata": body.get("metadata") or {},
        "safety_identifier": body.get("safety_identifier"),
        "prompt_cache_key": body.get("prompt_cache_key"),
    }


def echo_tool(tool: dict) -> dict:
    """A tool as the response echoes it: function tools get the spec's required `strict` and `parameters`."""
    if tool.get("type") != "function":
        return dict(tool)
    return {"description": None, "parameters": None, "strict": True, **tool}


def usage_object(usage: dict, model: str, cached_tokens: int) -> dict:
    """Responses usage from a runs-style usage dict (prompt/completion/total), with the details."""
    output = usage["completion_tokens"]
    reasoning = output // 2 if model.startswith(REASONING_PREFIXES) else 0
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": min(cached_tokens, usage["prompt_tokens"]), "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage["total_tokens"],
    }


def output_text(text: str) -> dict:
    """An `output_text` content part (annotations and logprobs are required, so always sent)."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(text: str | None, status: str) -> dict:
    """An assistant output message; `text=None` starts it empty (as `output_item.added` shows it)."""
    content = [] if text is None else [output_text(text)]
    return {"id": new_id("msg"), "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(call_id: str, name: str, arguments: str, status: str) -> dict:
    """A `function_call` output item."""
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def conversation_object(metadata: dict | None) -> dict:
    """A new conversation."""
    return {"id": new_id("conv"), "object": "conversation", "created_at": now(), "metadata": metadata or {}}


def to_items(value: object, param: str, lookup: Callable[[str], dict | None]) -> list[dict]:
    """Request input (a string or a list of input items) as stored item resources with ids.

    `lookup` resolves `item_reference` ids to items already stored.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [_message("user", value, param)]
    if not isinstance(value, list):
        raise ApiError(400, f"Invalid type for '{param}': expected a string or an array of input items.", param=param)
    return [_item(raw, f"{param}[{i}]", lookup) for i, raw in enumerate(value)]


def item_text(item: dict) -> str:
    """The text of a message item's text parts."""
    return "".join(
        p.get("text", "") for p in item.get("content") or [] if isinstance(p, dict) and p.get("type") in TEXT_PARTS
    )


def _item(raw: object, param: str, lookup: Callable[[str], dict | None]) -> dict:
    if not isinstance(raw, dict):
        raise ApiError(400, f"Invalid type for '{param}': expected an object.", param=param)
    kind = raw.get("type", "message" if "role" in raw else None)
    if kind == "message":
        return _message(raw.get("role"), raw.get("content"), param)
    if kind == "function_call_output":
        _require(raw, ("call_id", "output"), param)
        return _resource(raw, "fco")
    if kind == "function_call":
        _require(raw, ("call_id", "name", "arguments"), param)
        return _resource(raw, "fc")
    if kind == "item_reference":
        found = lookup(raw["id"]) if isinstance(raw.get("id"), str) else None
        if found is None:
            raise ApiError(404, f"Item with id '{raw.get('id')}' not found.", param=f"{param}.id")
        return found
    if isinstance(kind, str):  # other item kinds (reasoning, web_search_call, ...): kept as given
        return _resource(raw, "item")
    raise ApiError(400, f"Missing required parameter: '{param}.type'.", param=f"{param}.type")


def _resource(raw: dict, prefix: str) -> dict:
    """An item as a stored resource: null fields dropped, an id and a status always present."""
    item = {k: v for k, v in raw.items() if v is not None}
    return {**item, "id": item.get("id") or new_id(prefix), "status": item.get("status") or "completed"}


def _message(role: object, content: object, param: str) -> dict:
    if role not in ROLES:
        raise ApiError(
            400, f"Invalid value for '{param}.role': expected one of {', '.join(ROLES)}.", param=f"{param}.role"
        )
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    elif isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = content
    else:
        raise ApiError(400, f"Invalid type for '{param}.content': expected a string or an array.", param=param)
    converted = [_text_part(role, p) if p.get("type") in TEXT_PARTS else p for p in parts]
    return {"id": new_id("msg"), "type": "message", "status": "completed", "role": role, "content": converted}


def _text_part(role: str, part: dict) -> dict:
    text = part.get("text") if isinstance(part.get("text"), str) else ""
    return output_text(text) if role == "assistant" else {"type": "input_text", "text": text}


def _require(raw: dict, names: tuple[str, ...], param: str) -> None:
    for name in names:
        if raw.get(name) is None:
            raise ApiError(
                400,
                f"Missing required parameter: '{param}.{name}'.",
                param=f"{param}.{name}",
                code="missing_required_parameter",
            )


def _or(value: object, default: object) -> object:
    return default if value is None else value
