"""A response behaves as the equivalent run: same functions, arguments, usage, outcome and text.

The equivalent of a run on a thread whose user messages are M, with instructions I, function
tools T and model X, is a response with instructions I, the same tools in the flat shape, model
X and M as input (or as a conversation's items). The run's tool step is the first response (the
function calls), the run's final turn after `submit_tool_outputs` is the follow-up response
carrying the `function_call_output` items. Both APIs are driven with the official SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import openai
import pytest

from runtap.simulator.config import SimConfig
from runtap.simulator.demo_assistants import ASSISTANTS
from runtap.simulator.server import start_simulator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNCTIONS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["C", "F"]}},
        },
    },
    {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
]
NESTED = [{"type": "function", "function": f} for f in FUNCTIONS]
FLAT = [{"type": "function", **f} for f in FUNCTIONS]


@dataclass
class Case:
    """One conversation: the user messages, instructions, model, tools and metadata."""

    texts: list[str]
    model: str = "gpt-4o"
    instructions: str = "You are helpful."
    tools: bool = True
    metadata: dict = field(default_factory=dict)
    parallel: bool = True


CASES = [
    Case(["What is the weather in Paris?"]),
    Case(["Hello", "Compare Oslo and Bergen for 3 days"], model="gpt-4o-mini", instructions="Be brief."),
    Case(["Write a haiku about Lisbon"], tools=False),
    Case(["Time in Tokyo please"], parallel=False, metadata={"sim_outcome": "incomplete"}),
    Case(["Plan a trip to Rome [fail]"]),
    Case(["Summarize the news [incomplete]"], tools=False, model="o3-mini"),
    Case(["Is it raining in Dublin?", "And in Cork?"], instructions=""),
]


def _config(seed: int, *faults: str, **kwargs: object) -> SimConfig:
    weights = {"completed": 2, "failed": 1, "incomplete": 1}
    return SimConfig(
        seed=seed, run_ms=10, event_gap_ms=0, poll_after_ms=2, outcome_weights=weights, faults=list(faults), **kwargs
    )


def _usage(usage) -> tuple[int, int, int] | None:
    """Runs usage (prompt, completion, total) or Responses usage (input, output, total)."""
    if usage is None:
        return None
    if hasattr(usage, "prompt_tokens"):
        return (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    return (usage.input_tokens, usage.output_tokens, usage.total_tokens)


def _via_run(client: openai.OpenAI, case: Case) -> dict:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": t} for t in case.texts])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id="asst_equivalent",
        model=case.model,
        instructions=case.instructions,
        tools=NESTED if case.tools else [],
        metadata=case.metadata,
        parallel_tool_calls=case.parallel,
        poll_interval_ms=2,
    )
    calls = []
    if run.status == "requires_action":
        calls = run.required_action.submit_tool_outputs.tool_calls
        outputs = [{"tool_call_id": c.id, "output": f"result {n}"} for n, c in enumerate(calls)]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=outputs, poll_interval_ms=2
        )
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    messages = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    return {
        "status": run.status,
        "error": run.last_error.code if run.last_error else None,
        "calls": [(c.function.name, c.function.arguments) for c in calls],
        "turns": [_usage(s.usage) for s in steps],
        "usage": _usage(run.usage),
        "text": messages[0].content[0].text.value if messages and messages[0].content else None,
    }


def _via_responses(client: openai.OpenAI, case: Case, use_conversation: bool) -> dict:
    common = {
        "model": case.model,
        "instructions": case.instructions,
        "tools": FLAT if case.tools else [],
        "metadata": case.metadata,
        "parallel_tool_calls": case.parallel,
    }
    messages = [{"type": "message", "role": "user", "content": t} for t in case.texts]
    if use_conversation:  # the earlier messages as the conversation's items, the last as input
        conversation = client.conversations.create(items=messages[:-1]).id
        first = client.responses.create(**common, conversation=conversation, input=messages[-1:])
    else:
        first = client.responses.create(**common, input=messages)
    responses = [first]
    calls = [o for o in first.output if o.type == "function_call"]
    if calls:
        outputs = [
            {"type": "function_call_output", "call_id": c.call_id, "output": f"result {n}"} for n, c in enumerate(calls)
        ]
        link = {"conversation": conversation} if use_conversation else {"previous_response_id": first.id}
        responses.append(client.responses.create(**common, **link, input=outputs))
    last = responses[-1]
    totals = [sum(t) for t in zip(*(_usage(r.usage) for r in responses))]
    return {
        "status": last.status,
        "error": last.error.code if last.error else None,
        "calls": [(c.name, c.arguments) for c in calls],
        "turns": [_usage(r.usage) for r in responses],
        "usage": tuple(totals),
        "text": last.output_text or None,
    }


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_responses_choose_what_the_equivalent_runs_choose(seed):
    with start_simulator(_config(seed)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
        pairs = [
            (_via_run(client, case), _via_responses(client, case, use_conversation=i % 2 == 1))
            for i, case in enumerate(CASES)
        ]
    for case, (run, response) in zip(CASES, pairs, strict=True):
        assert response["calls"] == run["calls"], case
        # the run's steps are the responses: the tool step, then the message step (none if failed)
        assert response["turns"][: len(run["turns"])] == run["turns"], case
        assert response["usage"] == run["usage"], case
        assert (response["status"], response["error"], response["text"]) == (run["status"], run["error"], run["text"])
    outcomes = {run["status"] for run, _ in pairs}
    assert {"completed", "failed", "incomplete"} <= outcomes
    assert sum(bool(run["calls"]) for run, _ in pairs) >= 2


def test_behaviour_faults_act_on_both_apis_alike():
    faults = ("rename=get_weather:get_current_weather", "tokens=2.5,match=Oslo", "outcome=failed,match=Dublin")
    cases = [Case(["Weather in Oslo? [complete]"]), Case(["Weather in Dublin?"], tools=False)]
    with start_simulator(_config(5, *faults)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
        pairs = [(_via_run(client, c), _via_responses(client, c, use_conversation=False)) for c in cases]
    with start_simulator(_config(5)) as plain:
        client = openai.OpenAI(base_url=plain.base_url, api_key="k", max_retries=0)
        baseline = _via_responses(client, cases[0], use_conversation=False)
    (oslo_run, oslo), (dublin_run, dublin) = pairs
    assert oslo == oslo_run
    assert dublin | {"turns": []} == dublin_run  # a failed run has no step; the failed response has zero usage
    names = {name for name, _ in oslo["calls"]}
    assert "get_current_weather" in names and "get_weather" not in names
    prompt, completion, _ = baseline["turns"][0]
    assert oslo["turns"][0][:2] == (round(prompt * 2.5), round(completion * 2.5))
    assert dublin["status"] == "failed"


def test_same_seed_same_responses_with_fresh_ids():
    seen = []
    for _ in range(2):
        with start_simulator(_config(17)) as sim:
            client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
            seen.append([_via_responses(client, case, use_conversation=False) for case in CASES])
            seen.append({r["id"] for r in sim.ground_truth()["responses"]})
    first, first_ids, second, second_ids = seen
    assert first == second
    assert first_ids.isdisjoint(second_ids) and len(first_ids) > len(CASES)


def test_a_run_of_a_stored_assistant_and_the_response_built_from_it():
    """Migration's mapping: the assistant's model, instructions and tools move into the request."""
    assistant = next(a for a in ASSISTANTS if a["tools"])
    flat = [{"type": "function", **t["function"]} for t in assistant["tools"]]
    text = "What is the weather in Seattle? [complete]"
    with start_simulator(_config(0, assistants=ASSISTANTS)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
        thread_id = client.beta.threads.create(messages=[{"role": "user", "content": text}]).id
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant["id"], poll_interval_ms=2
        )
        response = client.responses.create(
            model=assistant["model"], instructions=assistant["instructions"], tools=flat, input=text
        )
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [(o.name, o.arguments) for o in response.output]
    assert run.model == response.model and response.status == "completed"
