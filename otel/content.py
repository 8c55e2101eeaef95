"""Message content for `--include-content`: what each run was asked, and what it answered.

Off by default, as the GenAI conventions ask. When on, the facts come from what the proxy saw:
- input: the user messages posted on the thread since the previous run (createThread `messages`,
  createMessage, createThreadAndRun `thread.messages`, createRun `additional_messages`), and the
  run's `instructions` / `additional_instructions` from its create request;
- output: the `thread.message.completed` events of the run's streamed responses (a polled run's
  answer is only in listMessages, which runtap does not record: no output then).
Shapes follow the conventions' `gen_ai.input.messages` / `gen_ai.output.messages` /
`gen_ai.system_instructions` (JSON text), with OpenInference's plain `input.value` / `output.value`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runtap.addon.sse import parse_sse_text

_CREATES_RUN = ("createRun", "createThreadAndRun")


@dataclass
class RunContent:
    """One run's messages in, instructions and messages out: lists of (role, text)."""

    inputs: list[tuple[str, str]] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def attributes(self) -> dict[str, Any]:
        """The content attributes of an `invoke_agent` span (empty when nothing was seen)."""
        out: dict[str, Any] = {}
        if self.inputs:
            out["gen_ai.input.messages"] = _messages(self.inputs)
            out["input.value"] = "\n\n".join(text for _, text in self.inputs)
            out["input.mime_type"] = "text/plain"
        if self.instructions:
            out["gen_ai.system_instructions"] = json.dumps(
                [{"type": "text", "content": text} for text in self.instructions], ensure_ascii=False
            )
        if self.outputs:
            out["gen_ai.output.messages"] = _messages(self.outputs)
            out["output.value"] = "\n\n".join(text for _, text in self.outputs)
            out["output.mime_type"] = "text/plain"
        return out


def _messages(items: list[tuple[str, str]]) -> str:
    return json.dumps(
        [{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in items], ensure_ascii=False
    )


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def tool_call_content(call: dict) -> dict[str, Any]:
    """A tool call's arguments and result, as GenAI and OpenInference attributes (content: only
    with --include-content)."""
    return {
        "gen_ai.tool.call.arguments": call.get("arguments"),
        "gen_ai.tool.call.result": call.get("output"),
        "input.value": call.get("arguments"),
        "output.value": call.get("output"),
    }


def message_text(content: Any) -> str:
    """The text of a message's `content`: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    texts = []
    for part in content if isinstance(content, list) else []:
        part = _dict(part)
        text = part.get("text")
        text = _dict(text).get("value") if isinstance(text, dict) else text
        if isinstance(text, str):
            texts.append(text)
    return "\n".join(texts)


def _posted(exchange: dict) -> list[tuple[str, str]]:
    """The messages an exchange's request posted on the thread, in order."""
    body = _dict(_json(exchange.get("request_body")))
    operation = exchange.get("operation")
    if operation == "createMessage":
        messages = [body]
    elif operation == "createThread":
        messages = body.get("messages")
    elif operation == "createThreadAndRun":
        messages = _dict(body.get("thread")).get("messages")
    elif operation == "createRun":
        messages = body.get("additional_messages")
    else:
        messages = None
    out = []
    for message in messages if isinstance(messages, list) else []:
        message = _dict(message)
        text = message_text(message.get("content"))
        if text:
            out.append((str(message.get("role") or "user"), text))
    return out


def _answers(exchange: dict, run_id: str) -> list[tuple[str, str]]:
    """The completed messages of `run_id` in a streamed response body."""
    out = []
    for event in parse_sse_text(exchange.get("response_body") or ""):
        if event.event != "thread.message.completed":
            continue
        message = _dict(_json(event.data))
        text = message_text(message.get("content"))
        if message.get("run_id") == run_id and text:
            out.append((str(message.get("role") or "assistant"), text))
    return out


def run_contents(exchanges: list[dict]) -> dict[str, RunContent]:
    """Content per run id from one session's exchanges (in request order)."""
    contents: dict[str, RunContent] = {}
    pending: list[tuple[str, str]] = []
    for exchange in exchanges:
        run_id = exchange.get("run_id")
        pending += _posted(exchange)
        if exchange.get("operation") in _CREATES_RUN and run_id:
            content = contents.setdefault(run_id, RunContent())
            content.inputs += pending
            pending = []
            body = _dict(_json(exchange.get("request_body")))
            content.instructions += [
                body[key] for key in ("instructions", "additional_instructions") if isinstance(body.get(key), str)
            ]
        if exchange.get("response_body") and run_id:
            contents.setdefault(run_id, RunContent()).outputs += _answers(exchange, run_id)
    return contents
