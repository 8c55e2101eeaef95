"""Builders for the API's JSON objects, shaped like the hosted service's (see the SSE example).

The engine keeps these dicts as its state and mutates them; routes serialize them as they are.
"""

from __future__ import annotations

import time

from runtap.simulator.ids import new_id

RUN_EXPIRY_S = 600  # the hosted service gave a run ten minutes before it expired


def now() -> int:
    """Unix time in seconds, as every `*_at` field carries it."""
    return int(time.time())


def assistant_object(assistant_id: str, body: dict, default_model: str) -> dict:
    """An assistant from a createAssistant body (or a preload entry)."""
    return {
        "id": assistant_id,
        "object": "assistant",
        "created_at": body.get("created_at") or now(),
        "name": body.get("name"),
        "description": body.get("description"),
        "model": body.get("model") or default_model,
        "instructions": body.get("instructions"),
        "tools": list(body.get("tools") or []),
        "tool_resources": body.get("tool_resources") or {},
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "response_format": body.get("response_format", "auto"),
    }


def thread_object(body: dict) -> dict:
    """A thread from a createThread body (its messages are created separately)."""
    return {
        "id": new_id("thread"),
        "object": "thread",
        "created_at": now(),
        "metadata": body.get("metadata") or {},
        "tool_resources": body.get("tool_resources") or {},
    }


def message_object(thread_id: str, role: str, text: str, **extra: object) -> dict:
    """A message; user messages are complete at once, assistant ones start `in_progress`."""
    done = role == "user"
    message = {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": now(),
        "assistant_id": None,
        "thread_id": thread_id,
        "run_id": None,
        "status": "completed" if done else "in_progress",
        "incomplete_details": None,
        "incomplete_at": None,
        "completed_at": now() if done else None,
        "role": role,
        "content": [text_part(text)] if done else [],
        "attachments": [],
        "metadata": {},
    }
    message.update(extra)
    return message


def run_object(thread_id: str, assistant: dict, body: dict) -> dict:
    """A new `queued` run from a createRun/createThreadAndRun body and its assistant."""
    instructions = body.get("instructions")
    if instructions is None:
        instructions = assistant.get("instructions") or ""
    if body.get("additional_instructions"):
        instructions = f"{instructions}\n{body['additional_instructions']}".strip()
    created = now()
    tools = body.get("tools")
    return {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": created,
        "assistant_id": assistant["id"],
        "thread_id": thread_id,
        "status": "queued",
        "started_at": None,
        "expires_at": created + RUN_EXPIRY_S,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "model": body.get("model") or assistant["model"],
        "instructions": instructions,
        "tools": list(tools if tools is not None else assistant.get("tools") or []),
        "tool_resources": body.get("tool_resources") or {},
        "metadata": body.get("metadata") or {},
        "temperature": _or(body.get("temperature"), assistant.get("temperature"), 1.0),
        "top_p": _or(body.get("top_p"), assistant.get("top_p"), 1.0),
        "reasoning_effort": body.get("reasoning_effort"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "truncation_strategy": body.get("truncation_strategy") or {"type": "auto", "last_messages": None},
        "incomplete_details": None,
        "usage": None,
        "response_format": _or(body.get("response_format"), assistant.get("response_format"), "auto"),
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": _or(body.get("parallel_tool_calls"), None, True),
    }


def step_object(run: dict, step_type: str, details: dict) -> dict:
    """A new `in_progress` run step; carries both `expired_at` (spec) and `expires_at` (hosted)."""
    return {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": step_type,
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "expires_at": run["expires_at"],
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "metadata": {},
        "usage": None,
    }


def tool_call_object(call_id: str, name: str, arguments: str, output: str | None) -> dict:
    """A function tool call as a step's `step_details.tool_calls` item."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments, "output": output},
    }


def step_delta(step_id: str, tool_calls: list[dict]) -> dict:
    """A `thread.run.step.delta` payload carrying tool-call fragments."""
    return {
        "id": step_id,
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": tool_calls}},
    }


def message_delta(message_id: str, chunk: str, first: bool) -> dict:
    """A `thread.message.delta` payload; the first one carries `annotations` like the service."""
    text: dict = {"value": chunk}
    if first:
        text["annotations"] = []
    part = {"index": 0, "type": "text", "text": text}
    return {"id": message_id, "object": "thread.message.delta", "delta": {"content": [part]}}


def list_object(items: list[dict], has_more: bool) -> dict:
    """The spec's list shape; first/last ids are null for an empty page, as the service did."""
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    """An OpenAI-format error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def text_part(text: str) -> dict:
    """A message's text content part."""
    return {"type": "text", "text": {"value": text, "annotations": []}}


def _or(*values: object) -> object:
    return next((v for v in values if v is not None), None)


class ApiError(Exception):
    """An error the API answers with: HTTP status plus the OpenAI error body's fields."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, type_, param, code)
        self.headers = headers or {}
