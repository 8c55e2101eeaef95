"""Same seed, same behaviour across instances (ids differ); ground truth matches what the SDK saw."""

from __future__ import annotations

import json

import openai
import pytest

from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
    },
]
PROMPTS = [
    "Weather in Paris?",
    "Time in Tokyo",
    "Tell me about Lisbon",
    "Compare Oslo and Bergen",
    "Write a haiku",
    "Is it raining in Dublin?",
]


def _workload(sim) -> list[dict]:
    """Drive every prompt to an end state; return what the SDK saw, per run."""
    client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
    seen = []
    for i, prompt in enumerate(PROMPTS):
        thread_id = client.beta.threads.create(messages=[{"role": "user", "content": prompt}]).id
        tools = TOOLS if i % 2 == 0 else []
        run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id="asst_same", tools=tools)
        calls = []
        if run.status == "requires_action":
            calls = run.required_action.submit_tool_outputs.tool_calls
            outputs = [{"tool_call_id": c.id, "output": f"result {n}"} for n, c in enumerate(calls)]
            run = client.beta.threads.runs.submit_tool_outputs_and_poll(
                run_id=run.id, thread_id=thread_id, tool_outputs=outputs
            )
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
        seen.append({"run": run, "calls": calls, "steps": steps})
    return seen


def _behaviour(seen: list[dict]) -> list[tuple]:
    return [
        (
            s["run"].status,
            s["run"].usage.model_dump() if s["run"].usage else None,
            [(c.function.name, c.function.arguments) for c in s["calls"]],
            [(st.type, st.status, st.usage.total_tokens if st.usage else None) for st in s["steps"]],
        )
        for s in seen
    ]


def _config(seed: int) -> SimConfig:
    weights = {"completed": 2, "failed": 1, "incomplete": 1}
    return SimConfig(seed=seed, run_ms=15, event_gap_ms=0, poll_after_ms=5, outcome_weights=weights)


def test_same_seed_same_behaviour_with_fresh_ids():
    with start_simulator(_config(11)) as first:
        a = _workload(first)
    with start_simulator(_config(11)) as second:
        b = _workload(second)
    assert _behaviour(a) == _behaviour(b)
    assert any(s["calls"] for s in a)  # the workload exercised tool calls
    assert {s["run"].id for s in a}.isdisjoint(s["run"].id for s in b)
    with start_simulator(_config(12)) as other:
        c = _workload(other)
    assert _behaviour(c) != _behaviour(a)


def test_ground_truth_matches_what_the_sdk_saw(tmp_path):
    path = tmp_path / "truth.json"
    config = _config(21)
    config.ground_truth_path = str(path)
    with start_simulator(config) as sim:
        seen = _workload(sim)
        truth = sim.ground_truth()
    assert json.loads(path.read_text()) == truth  # also written on shutdown
    assert [r["id"] for r in truth["runs"]] == [s["run"].id for s in seen]
    for record, s in zip(truth["runs"], seen, strict=True):
        run = s["run"]
        assert (record["thread_id"], record["assistant_id"], record["model"]) == (
            run.thread_id,
            run.assistant_id,
            run.model,
        )
        assert record["status"] == run.status == record["statuses"][-1] == record["served_statuses"][-1]
        assert record["served_statuses"][0] == "queued"
        assert record["usage"] == run.usage.model_dump()
        assert record["last_error_code"] == (run.last_error.code if run.last_error else None)
        assert record["incomplete_reason"] == (run.incomplete_details.reason if run.incomplete_details else None)
        assert [(st["id"], st["type"], st["status"]) for st in record["steps"]] == [
            (st.id, st.type, st.status) for st in s["steps"]
        ]
        assert [(c["id"], c["function_name"], c["arguments"]) for c in record["tool_calls"]] == [
            (c.id, c.function.name, c.function.arguments) for c in s["calls"]
        ]
        if s["calls"]:
            assert "requires_action" in record["served_statuses"]
