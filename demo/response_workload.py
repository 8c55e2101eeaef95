"""The demo's Responses and Conversations workload, driven by the official `openai` SDK.

What teams moving off the Assistants API run: a background response polled with
`responses.retrieve` (the SDK has no poll helper), a streamed response (`responses.stream`) whose
function calls are answered with `function_call_output` items, a conversation holding two
responses and items added and listed in between, a cancelled background response, and a failed
and an incomplete one. The weather question uses the weather assistant's instructions and tools
(flattened to the Responses shape), so the simulator answers it as it answers the equivalent run.
Outcomes come from the simulator's `sim_outcome` metadata hint, as in `demo/workload.py`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from openai import OpenAI

from runtap.simulator.demo_assistants import ASSISTANTS

_WEATHER = ASSISTANTS[0]
# The Responses API takes function tools flat: {"type": "function", "name", "description", "parameters"}.
TOOLS = [{"type": "function", **tool["function"]} for tool in _WEATHER["tools"]]
COMPLETE = {"sim_outcome": "completed"}
_POLL_SECONDS = 0.05


@dataclass
class ResponsesResult:
    """What the client saw: final responses by id (status, model, usage) and conversation ids."""

    responses: dict[str, dict] = field(default_factory=dict)
    conversations: list[str] = field(default_factory=list)

    def add(self, response) -> None:
        """Remember a response's final state as the client saw it."""
        usage = response.usage.model_dump() if response.usage else None
        self.responses[response.id] = {"status": response.status, "model": response.model, "usage": usage}


def _poll(client: OpenAI, response):
    """Retrieve a background response until it is no longer queued or in progress."""
    while response.status in ("queued", "in_progress"):
        time.sleep(_POLL_SECONDS)
        response = client.responses.retrieve(response.id)
    return response


def _outputs(response) -> list[dict]:
    """Answer every function call of a response, deterministically from its arguments."""
    outputs = []
    for item in response.output:
        if item.type == "function_call":
            args = json.loads(item.arguments or "{}")
            place = args.get("location") or args.get("city") or "somewhere"
            outputs.append(
                {
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "output": json.dumps({"place": place, "temp_c": 18}),
                }
            )
    return outputs


def _polled_background(client: OpenAI, result: ResponsesResult) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", input="Summarise the history of Lisbon.", background=True, metadata=COMPLETE
    )
    result.add(_poll(client, response))


def _streamed_function_calls(client: OpenAI, result: ResponsesResult, question: str) -> None:
    common = {"model": _WEATHER["model"], "instructions": _WEATHER["instructions"], "tools": TOOLS}
    with client.responses.stream(input=question, metadata=COMPLETE, **common) as stream:
        response = stream.get_final_response()
    result.add(response)
    while outputs := _outputs(response):
        with client.responses.stream(previous_response_id=response.id, input=outputs, **common) as stream:
            response = stream.get_final_response()
        result.add(response)
    list(client.responses.input_items.list(response.id, limit=5))


def _conversation(client: OpenAI, result: ResponsesResult) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "I am planning a trip to Madrid."}],
        metadata={"demo": "yes"},
    )
    result.conversations.append(conversation.id)
    first = client.responses.create(
        model="gpt-4o-mini", conversation=conversation.id, input="Say hello in Spanish.", metadata=COMPLETE
    )
    result.add(first)
    client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "Thanks, that helps."}]
    )
    list(client.conversations.items.list(conversation.id, limit=2))  # pages through, as a UI would
    second = client.responses.create(
        model="gpt-4o-mini", conversation=conversation.id, input="And goodbye?", metadata=COMPLETE
    )
    result.add(second)


def _cancelled(client: OpenAI, result: ResponsesResult) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", input="Write a long essay.", background=True, metadata={"sim_outcome": "slow"}
    )
    client.responses.cancel(response.id)
    result.add(client.responses.retrieve(response.id))


def _outcome(client: OpenAI, result: ResponsesResult, outcome: str, model: str, *, background: bool) -> None:
    response = client.responses.create(
        model=model, input=f"Summarise ({outcome}).", background=background, metadata={"sim_outcome": outcome}
    )
    result.add(_poll(client, response))


def run_responses_workload(
    base_url: str, api_key: str = "sk-runtap-demo-key", *, rounds: int = 1, headers: dict[str, str] | None = None
) -> ResponsesResult:
    """Drive the Responses workload `rounds` times against `base_url` (an OpenAI-compatible /v1),
    sending `headers` with every request."""
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30, default_headers=headers)
    result = ResponsesResult()
    for _ in range(rounds):
        _polled_background(client, result)
        _streamed_function_calls(client, result, "What is the weather and the time in Tokyo?")
        _conversation(client, result)
        _cancelled(client, result)
        _outcome(client, result, "failed", "gpt-4-turbo", background=False)
        _outcome(client, result, "incomplete", "o3-mini", background=True)
    return result
