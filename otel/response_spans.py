"""The Responses API's spans: one trace per conversation, or per chain of `previous_response_id`.

    conversation | response_chain       INTERNAL  OpenInference CHAIN   root of the trace
    ├─ chat {model}                     CLIENT    LLM    one per response: create request -> terminal
    │  │                                                 status, its usage, an event per status change
    │  └─ {METHOD} {url.template}       CLIENT           its exchanges (create, polls, cancel, input items)
    ├─ execute_tool {function}          INTERNAL  TOOL   one per function call: the item -> the request
    │                                                    carrying its function_call_output
    └─ {METHOD} {url.template}          CLIENT           conversation calls on no response
The trace (`response_load`) is the response's conversation, else its chain (a standalone response
is a chain of one). A Responses call is a model call, so its span is the conventions' inference
span for OpenAI (`chat {gen_ai.request.model}`, `openai.api.type = responses`) and Phoenix's LLM
kind, which is where Phoenix counts tokens. A function call runs on the client between two
responses, so its span is a sibling of both under the root: the trace reads model, tools, model.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanKind, Status, StatusCode

from runtap.otel import ids
from runtap.otel.content import message_text, tool_call_content
from runtap.otel.http_spans import exchange_span_fields
from runtap.otel.timing import lifetime_window

PROVIDER = {"gen_ai.provider.name": "openai", "llm.provider": "openai", "llm.system": "openai"}
ROOT_NAMES = {"conversation": "conversation", "chain": "response_chain"}


def is_response_key(key: str) -> bool:
    """True for the session key of a conversation or a response chain."""
    return key.partition(":")[0] in ROOT_NAMES


def root_context_ids(key: str) -> tuple[int, int]:
    """(trace id, root span id) of a conversation's or chain's trace."""
    kind, _, value = key.partition(":")
    return ids.trace_id(key), ids.span_id(kind, value)


def response_outcome(response: dict) -> tuple[str | None, Status]:
    """`error.type` and span status: errors for failed and incomplete responses."""
    status = response.get("status")
    if status == "failed":
        code, message = response.get("error_code"), response.get("error_message")
        return code or "failed", Status(StatusCode.ERROR, ": ".join(x for x in (code, message) if x) or "failed")
    if status == "incomplete":
        reason = response.get("incomplete_reason")
        return "incomplete", Status(StatusCode.ERROR, f"incomplete: {reason}" if reason else "incomplete")
    if status == "completed":
        return None, Status(StatusCode.OK)
    return None, Status(StatusCode.UNSET)


def status_events(response: dict, transitions: list[dict]) -> list[Event]:
    """One `runtap.response.status` event where each status stay begins: the first status seen,
    then each observed change (`response_transitions`)."""
    stays = []
    if response.get("first_status"):
        stays.append((response["first_status"], response["first_observed_at"], None))
    for t in sorted(transitions, key=lambda t: t["seq"]):
        stays.append((t["to_status"], t["observed_at"], t["from_status"]))
    return [
        Event(
            "runtap.response.status",
            {"runtap.response.status": status, **({"runtap.response.status.previous": prev} if prev else {})},
            timestamp=at,
        )
        for status, at, prev in stays
    ]


def usage_attributes(response: dict) -> dict[str, Any]:
    """Token usage in both vocabularies (None when the response reported none)."""
    prompt, completion = response.get("input_tokens"), response.get("output_tokens")
    total = None if prompt is None and completion is None else (prompt or 0) + (completion or 0)
    return {
        "gen_ai.usage.input_tokens": prompt,
        "gen_ai.usage.output_tokens": completion,
        "gen_ai.usage.cache_read.input_tokens": response.get("cached_tokens"),
        "gen_ai.usage.reasoning.output_tokens": response.get("reasoning_tokens"),
        "llm.token_count.prompt": prompt,
        "llm.token_count.completion": completion,
        "llm.token_count.total": total,
        "llm.token_count.prompt_details.cache_read": response.get("cached_tokens"),
        "llm.token_count.completion_details.reasoning": response.get("reasoning_tokens"),
    }


def response_spans(model, session) -> list[ReadableSpan]:
    """Every span of one conversation's or chain's trace (`model`: the `SpanModel`), root first."""
    trace, root_id = root_context_ids(session.key)
    root = model.context(trace, root_id)
    conversation = session.key.partition(":")[2] if session.key.startswith("conversation:") else None
    out: list[ReadableSpan] = []
    chats = {}
    for response in sorted(session.responses, key=lambda r: (lifetime_window(r)[0], r["response_id"])):
        context = model.context(trace, ids.span_id("response", response["response_id"]))
        chats[response["response_id"]] = context
        transitions = [t for t in session.response_transitions if t["response_id"] == response["response_id"]]
        out.append(chat_span(model, response, transitions, context, root, session.key))
    for call in session.calls:
        out.append(tool_span(model, call, root, conversation, session.key))
    exchanges = sorted(session.exchanges, key=lambda e: (e["request_started_at"], e["exchange_id"]))
    for exchange in exchanges:
        parent = chats.get(exchange.get("response_id"), root)
        context = model.context(trace, ids.span_id("exchange", exchange["exchange_id"]))
        out.append(model.span(context=context, parent=parent, **exchange_span_fields(exchange)))
    out.sort(key=lambda s: (s.start_time, s.name))
    if out:
        start, end = min(s.start_time for s in out), max(s.end_time for s in out)
        out.insert(0, root_span(model, session.key, start, end, len(session.responses)))
    return out


def root_span(model, key: str, start: int, end: int, responses: int) -> ReadableSpan:
    """The root of a conversation's or chain's trace over `start`..`end` (its children's extent)."""
    kind, _, value = key.partition(":")
    trace, span = root_context_ids(key)
    attributes = {"gen_ai.provider.name": "openai", "openai.api.type": "responses", "session.id": value}
    if kind == "conversation":
        attributes["gen_ai.conversation.id"] = value
    else:
        attributes["runtap.chain.first_response_id"] = value
    return model.span(
        name=ROOT_NAMES[kind],
        context=model.context(trace, span),
        parent=None,
        kind=SpanKind.INTERNAL,
        start=start,
        end=end,
        attributes={**attributes, "openinference.span.kind": "CHAIN", "runtap.responses": responses},
    )


def chat_span(model, response: dict, transitions: list[dict], context, root, key: str) -> ReadableSpan:
    """One response's inference span."""
    start, end = lifetime_window(response)
    requested = response.get("request_model") or response.get("model")
    error_type, status = response_outcome(response)
    attributes = {
        "gen_ai.operation.name": "chat",
        **PROVIDER,
        "openai.api.type": "responses",
        "gen_ai.request.model": requested,
        "gen_ai.response.model": response.get("model"),
        "gen_ai.response.id": response["response_id"],
        "gen_ai.conversation.id": response.get("conversation_id"),
        "gen_ai.request.stream": True if response.get("streamed") else None,
        **usage_attributes(response),
        "error.type": error_type,
        "openinference.span.kind": "LLM",
        "llm.model_name": response.get("model"),
        "session.id": key.partition(":")[2],
        "runtap.response.id": response["response_id"],
        "runtap.response.status": response.get("status"),
        "runtap.response.background": response.get("background"),
        "runtap.response.previous_response_id": response.get("previous_response_id"),
        "runtap.response.error.code": response.get("error_code"),
        "runtap.response.incomplete_reason": response.get("incomplete_reason"),
        "runtap.response.ended": response.get("ended_at") is not None,
    }
    if model.include_content:
        attributes |= content_attributes(response)
    return model.span(
        name=f"chat {requested}" if requested else "chat",
        context=context,
        parent=root,
        kind=SpanKind.CLIENT,
        start=start,
        end=end,
        attributes=attributes,
        events=status_events(response, transitions),
        status=status,
    )


def tool_window(call: dict) -> tuple[int, int]:
    """From the function_call item's first sighting to the first request carrying its output;
    a call never answered ends with the response that produced it."""
    start = call["first_observed_at"]
    end = call.get("answered_at") or call.get("response_ended_at") or start
    return start, max(start, end)


def tool_span(model, call: dict, root, conversation: str | None, key: str) -> ReadableSpan:
    """One function call's span, under the trace's root."""
    start, end = tool_window(call)
    name = call.get("name")
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call["call_id"],
        "gen_ai.tool.type": "function",
        "gen_ai.conversation.id": conversation,
        "session.id": key.partition(":")[2],
        "openinference.span.kind": "TOOL",
        "tool.name": name,
        "tool_call.id": call["call_id"],
        "tool_call.function.name": name,
        "runtap.response.id": call.get("response_id"),
        "runtap.tool.output_response_id": call.get("output_response_id"),
        "runtap.tool.answered": call.get("answered_at") is not None,
    }
    if model.include_content:
        attributes |= tool_call_content(call)
    return model.span(
        name=f"execute_tool {name}" if name else "execute_tool",
        context=model.context(root.trace_id, ids.span_id("function-call", call["call_id"])),
        parent=root,
        kind=SpanKind.INTERNAL,
        start=start,
        end=end,
        attributes=attributes,
    )


# --- content (--include-content) ------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _input_messages(body: dict) -> list[dict]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "parts": [{"type": "text", "content": items}]}]
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            part = {"type": "tool_call_response", "id": item.get("call_id"), "result": item.get("output")}
            out.append({"role": "tool", "parts": [part]})
        elif item.get("type") in (None, "message") and (text := message_text(item.get("content"))):
            out.append({"role": str(item.get("role") or "user"), "parts": [{"type": "text", "content": text}]})
    return out


def _output_messages(raw: dict) -> list[dict]:
    parts = []
    for item in raw.get("output") if isinstance(raw.get("output"), list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message" and (text := message_text(item.get("content"))):
            parts.append({"type": "text", "content": text})
        elif item.get("type") == "function_call":
            arguments = _json(item.get("arguments"))
            call = {"type": "tool_call", "id": item.get("call_id"), "name": item.get("name"), "arguments": arguments}
            parts.append(call)
    return [{"role": "assistant", "parts": parts}] if parts else []


def _text(messages: list[dict]) -> str:
    return "\n\n".join(p["content"] for m in messages for p in m["parts"] if p["type"] == "text")


def content_attributes(response: dict) -> dict[str, Any]:
    """What the create request sent (input, instructions) and what the response answered."""
    out: dict[str, Any] = {}
    body = _json(response.get("request_body"))
    body = body if isinstance(body, dict) else {}
    if inputs := _input_messages(body):
        out["gen_ai.input.messages"] = json.dumps(inputs, ensure_ascii=False)
        out["input.value"] = _text(inputs) or None
    if isinstance(body.get("instructions"), str):
        out["gen_ai.system_instructions"] = json.dumps(
            [{"type": "text", "content": body["instructions"]}], ensure_ascii=False
        )
    raw = _json(response.get("raw"))
    if isinstance(raw, dict) and (outputs := _output_messages(raw)):
        out["gen_ai.output.messages"] = json.dumps(outputs, ensure_ascii=False)
        out["output.value"] = _text(outputs) or None
    return out
