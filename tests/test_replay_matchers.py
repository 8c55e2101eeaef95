"""Matchers say why a replayed observation differs from the recorded one (pure functions)."""

from __future__ import annotations

import copy
import json

import pytest

from runtap.replay.matchers import (
    FAILURE,
    WARNING,
    MatchOptions,
    compare_step,
    drop_ignored,
    match_latency,
    match_status_sequence,
    match_usage,
    milestones,
)
from runtap.replay.observe import Outcome, observe

RUN = {
    "id": "run_1",
    "object": "thread.run",
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "completed",
    "model": "gpt-4o",
    "instructions": "Be brief.",
    "created_at": 100,
    "completed_at": 105,
    "required_action": None,
    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
}
STEP = {
    "id": "step_1",
    "object": "thread.run.step",
    "run_id": "run_1",
    "type": "tool_calls",
    "status": "completed",
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Oslo","days":2}'},
            }
        ],
    },
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    "created_at": 101,
}


def obs(*objects: dict, status: int = 200) -> Outcome:
    return observe(status, json.dumps({"object": "list", "data": list(objects)}), streamed=False)


def renamed(obj: dict, **changes) -> dict:
    new = copy.deepcopy(obj)
    new.update(changes)
    return new


OPTS = MatchOptions()


def test_same_outcome_with_new_ids_and_times_and_reformatted_arguments_matches():
    step = renamed(STEP, id="step_9", run_id="run_9", created_at=999)
    step["step_details"]["tool_calls"][0].update(
        id="call_9", function={"name": "weather", "arguments": '{ "days": 2, "city": "Oslo" }'}
    )
    rep = obs(renamed(RUN, id="run_9", thread_id="thread_9", created_at=900, completed_at=901), step)
    assert compare_step(obs(RUN, STEP), rep, OPTS) == []


@pytest.mark.parametrize(
    ("replayed", "path", "words"),
    [
        (
            obs(renamed(RUN, status="failed"), STEP),
            "$.runs[0].status",
            "run status: recorded 'completed', replayed 'failed'",
        ),
        (obs(renamed(RUN, model="gpt-4o-mini"), STEP), "$.runs[0].model", "model: recorded 'gpt-4o'"),
        (
            obs(renamed(RUN, usage={"prompt_tokens": 300, "completion_tokens": 60, "total_tokens": 360}), STEP),
            "$.runs[0].usage.prompt_tokens",
            "prompt_tokens: recorded 100, replayed 300 (3.00x, tolerance 10%)",
        ),
        (obs(RUN, renamed(STEP, type="message_creation")), "$.steps[0].type", "step type"),
        (obs(RUN), "$.steps", "steps: recorded 1 (tool_calls), replayed 0"),
        (obs(RUN, STEP, status=500), "$.status_code", "HTTP status 200 recorded, 500 replayed"),
    ],
)
def test_each_regression_is_a_failure_that_names_it(replayed, path, words):
    diffs = compare_step(obs(RUN, STEP), replayed, OPTS)
    hits = [d for d in diffs if d.path == path]
    assert hits and hits[0].severity == FAILURE and words in hits[0].message


def test_tool_call_renamed_and_arguments_changed():
    for function, path, words in [
        (
            {"name": "get_weather", "arguments": '{"city":"Oslo","days":2}'},
            "$.steps[0].tool_calls[0].function.name",
            "tool function renamed: recorded weather(), replayed get_weather()",
        ),
        (
            {"name": "weather", "arguments": '{"city":"Rome","days":2}'},
            "$.steps[0].tool_calls[0].function.arguments",
            "weather() arguments",
        ),
    ]:
        step = copy.deepcopy(STEP)
        step["step_details"]["tool_calls"][0]["function"] = function
        (diff,) = compare_step(obs(RUN, STEP), obs(RUN, step), OPTS)
        assert (diff.path, diff.severity) == (path, FAILURE) and words in diff.message


def test_other_fields_are_warnings_and_can_be_ignored():
    rep = obs(renamed(RUN, instructions="Be verbose."), STEP)
    (diff,) = compare_step(obs(RUN, STEP), rep, OPTS)
    assert (diff.path, diff.severity) == ("$.runs[0].instructions", WARNING)
    assert compare_step(obs(RUN, STEP), rep, MatchOptions(ignore=("runs[*].instructions",))) == []
    assert compare_step(obs(RUN, STEP), rep, MatchOptions(ignore=("$.runs",))) == []
    assert compare_step(obs(RUN, STEP), rep, MatchOptions(ignore=("$.run",))) != []  # prefixes stop at a name


def test_transient_status_difference_is_only_a_warning():
    (diff,) = compare_step(obs(renamed(RUN, status="queued")), obs(renamed(RUN, status="in_progress")), OPTS)
    assert diff.severity == WARNING


def test_stream_event_types_compare_deduplicated():
    def stream(*names: str) -> Outcome:
        return Outcome(200, streamed=True, events=list(names))

    rec = stream("thread.run.created", "thread.message.delta", "thread.message.delta", "thread.run.completed", "done")
    assert (
        compare_step(rec, stream("thread.run.created", "thread.message.delta", "thread.run.completed", "done"), OPTS)
        == []
    )
    (diff,) = compare_step(rec, stream("thread.run.created", "thread.message.delta"), OPTS)
    assert diff.severity == FAILURE
    assert diff.message == "stream events differ at #2: recorded thread.run.completed, replayed end of stream"


def test_usage_tolerance_and_presence():
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    assert match_usage("$.u", usage, {**usage, "prompt_tokens": 109, "total_tokens": 129}, 0.10) == []
    assert match_usage("$.u", usage, {**usage, "prompt_tokens": 111}, 0.10)[0].path == "$.u.prompt_tokens"
    assert match_usage("$.u", usage, None, 0.10)[0].severity == FAILURE
    assert match_usage("$.u", None, None, 0.10) == []


def test_latency_only_when_asked():
    assert match_latency(100.0, 1000.0, None) == []
    assert match_latency(100.0, 250.0, 3.0) == []
    (diff,) = match_latency(100.0, 400.0, 3.0)
    assert "4.0x > 3.0x" in diff.message


def test_status_sequence_compares_outcomes_not_polls():
    recorded = ["queued", "in_progress", "in_progress", "requires_action", "queued", "completed"]
    assert milestones(recorded) == ["requires_action", "completed"]
    assert match_status_sequence("run_1", recorded, ["queued", "requires_action", "in_progress", "completed"]) == []
    (diff,) = match_status_sequence("run_1", recorded, ["queued", "failed"])
    assert diff.message == "run run_1 went requires_action -> completed when recorded, failed on replay"


def test_drop_ignored_leaves_others():
    diffs = compare_step(obs(RUN, STEP), obs(renamed(RUN, model="x", instructions="y"), STEP), OPTS)
    assert [d.path for d in drop_ignored(diffs, ("$.runs[0].model",))] == ["$.runs[0].instructions"]
