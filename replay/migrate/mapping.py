"""The mapping tables of the migration: Assistants statuses, stream events and objects in Responses terms.

Pure data and pure functions; `translate` uses them to build requests and `compare` to compare
answers. Each table says what has no counterpart, so the report can say so instead of failing.
"""

from __future__ import annotations

from typing import Any

# A run's status -> the status the response standing for it has at the same point.
# requires_action: the response ends its turn with `function_call` items (the calls are its
# output), so it is `completed`; cancelling: a background response is cancelled at once.
# expired has no counterpart: responses cannot expire.
STATUS = {
    "queued": "queued",
    "in_progress": "in_progress",
    "requires_action": "completed",
    "cancelling": "cancelled",
    "cancelled": "cancelled",
    "completed": "completed",
    "failed": "failed",
    "incomplete": "incomplete",
}
NO_STATUS = {"expired": "responses cannot expire: a response waiting for function outputs simply stays completed"}
# Statuses timing alone can change (differences in them are warnings, as in the runs replay).
TRANSIENT = {"queued", "in_progress", "cancelling"}
# A response in one of these will not change without the client: polling stops.
SETTLED = {"completed", "failed", "incomplete", "cancelled"}

# Stream events, both APIs, in one vocabulary: what a stream showed, not how it was worded.
# A run stream's start is `thread.run.created` (or `thread.run.queued` where a stream continues
# a run: submit_tool_outputs), a response's `response.created` (and `response.queued` when it
# runs in the background). Structural events (steps, message and item boundaries, content parts,
# `thread.created`, `done`) have no counterpart on the other side and are left out.
RUN_EVENTS = {
    "thread.run.created": "start",
    "thread.run.queued": "start",
    "thread.run.in_progress": "in_progress",
    "thread.message.delta": "text delta",
    "thread.run.requires_action": "completed",
    "thread.run.completed": "completed",
    "thread.run.incomplete": "incomplete",
    "thread.run.failed": "failed",
    "thread.run.cancelled": "cancelled",
    "thread.run.expired": "expired",
    "error": "error",
}
RESPONSE_EVENTS = {
    "response.created": "start",
    "response.queued": "start",
    "response.in_progress": "in_progress",
    "response.output_text.delta": "text delta",
    "response.function_call_arguments.delta": "tool arguments delta",
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
    "response.cancelled": "cancelled",
    "error": "error",
}

# Recorded operations with no Responses counterpart: why each is not compared.
NO_COUNTERPART = {
    "listRuns": "the Responses API cannot list a conversation's responses",
    "listRunSteps": "run steps have no Responses counterpart (a response's output items are compared instead)",
    "getRunStep": "run steps have no Responses counterpart (a response's output items are compared instead)",
    "modifyRun": "a response's metadata cannot be changed after it is created",
}
# Incomplete reasons: the run's -> the response's.
INCOMPLETE_REASON = {"max_completion_tokens": "max_output_tokens", "content_filter": "content_filter"}


def run_event(name: str, data: Any) -> str | None:
    """A run stream event in the common vocabulary (None: no counterpart)."""
    if name == "thread.run.step.delta":
        return "tool arguments delta" if _has_tool_call_delta(data) else None
    return RUN_EVENTS.get(name)


def _has_tool_call_delta(data: Any) -> bool:
    details = (data.get("delta") or {}).get("step_details") if isinstance(data, dict) else None
    return isinstance(details, dict) and bool(details.get("tool_calls"))


def response_event(name: str) -> str | None:
    """A response stream event in the common vocabulary (None: no counterpart)."""
    return RESPONSE_EVENTS.get(name)


# --- objects ------------------------------------------------------------------------------


def instructions(run: dict, request: dict) -> str | None:
    """The run's instructions followed by `additional_instructions`.

    The run object's `instructions` are the effective ones (the request's, else the assistant's);
    servers that fold `additional_instructions` into them already end with them, so they are
    appended only when missing.
    """
    base = run.get("instructions")
    if not isinstance(base, str):
        base = request.get("instructions") if isinstance(request.get("instructions"), str) else None
    extra = request.get("additional_instructions")
    if isinstance(extra, str) and extra and not (base or "").endswith(extra):
        base = f"{base}\n{extra}".strip() if base else extra
    return base


def tool(tool: Any, resources: dict) -> tuple[dict | None, str | None]:
    """An Assistants tool in the Responses shape, or None and why it has no counterpart."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind == "function":
        spec = tool.get("function") if isinstance(tool.get("function"), dict) else {}
        if not isinstance(spec.get("name"), str):
            return None, "a function tool without a name"
        flat = {"type": "function", "name": spec["name"]}
        if spec.get("description") is not None:
            flat["description"] = spec["description"]
        # Assistants functions are not strict unless they say so; Responses ones are by default.
        flat |= {"parameters": spec.get("parameters"), "strict": bool(spec.get("strict"))}
        return flat, None
    if kind == "code_interpreter":
        files = (resources.get("code_interpreter") or {}).get("file_ids") or []
        return {"type": "code_interpreter", "container": {"type": "auto", "file_ids": files}}, None
    if kind == "file_search":
        stores = (resources.get("file_search") or {}).get("vector_store_ids") or []
        if not stores:
            return None, "file_search without recorded vector_store_ids (they live on the thread or assistant)"
        flat = {"type": "file_search", "vector_store_ids": stores}
        limit = (tool.get("file_search") or {}).get("max_num_results")
        return flat | ({"max_num_results": limit} if limit else {}), None
    return None, f"tool type {kind!r} has no Responses counterpart"


def tool_choice(choice: Any) -> Any:
    """`tool_choice` in the Responses shape (a named function is flat there too)."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "name": (choice.get("function") or {}).get("name")}
    return choice


def text_format(response_format: Any) -> dict | None:
    """An Assistants `response_format` as the Responses `text` parameter (None: the default, text)."""
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return None
    if response_format["type"] == "json_schema":
        schema = response_format.get("json_schema") or {}
        return {"format": {"type": "json_schema", **schema}}
    return {"format": {"type": response_format["type"]}}


def message_item(message: Any) -> tuple[dict | None, list[str]]:
    """An Assistants message (createThread/createMessage/additional_messages) as an input item.

    Text-only content becomes a string (parts joined, as both APIs read it); images become
    `input_image` parts. Attachments and metadata have no item counterpart and are reported.
    """
    if not isinstance(message, dict):
        return None, ["a message that is not an object"]
    role = message.get("role") if message.get("role") in ("user", "assistant") else "user"
    content, notes = _content(message.get("content"), role)
    if message.get("attachments"):
        notes.append("message attachments (files for tools) have no item counterpart: not sent")
    if message.get("metadata"):
        notes.append("message metadata has no item counterpart: not sent")
    return {"type": "message", "role": role, "content": content}, notes


def _content(content: Any, role: str) -> tuple[Any, list[str]]:
    if isinstance(content, str):
        return content, []
    parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
    if all(p.get("type") == "text" for p in parts):
        return "".join(p["text"] for p in parts if isinstance(p.get("text"), str)), []
    out, notes = [], []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            out.append({"type": "output_text" if role == "assistant" else "input_text", "text": part.get("text", "")})
        elif kind in ("image_file", "image_url"):
            image = part.get(kind) or {}
            source = {"file_id": image.get("file_id")} if kind == "image_file" else {"image_url": image.get("url")}
            out.append({"type": "input_image", "detail": image.get("detail") or "auto", **source})
        else:
            notes.append(f"message content part {kind!r} has no item counterpart: not sent")
    return out, notes


def usage(response_usage: Any) -> dict | None:
    """Responses usage in the runs' words (input -> prompt, output -> completion), for the matchers."""
    if not isinstance(response_usage, dict):
        return None
    return {
        "prompt_tokens": response_usage.get("input_tokens"),
        "completion_tokens": response_usage.get("output_tokens"),
        "total_tokens": response_usage.get("total_tokens"),
    }
