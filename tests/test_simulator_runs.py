"""The run life cycle through the official openai SDK's polling helpers, against a live simulator."""

from __future__ import annotations

import openai
import pytest

from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.spec_schemas import validate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


@pytest.fixture(scope="module")
def sim():
    config = SimConfig(seed=1, run_ms=60, event_gap_ms=1, poll_after_ms=10, slow_factor=4)
    with start_simulator(config) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(sim):
    return openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)


def _thread(client, text: str) -> str:
    return client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def _raw_run(client, thread_id: str, run_id: str) -> dict:
    return client.beta.threads.runs.with_raw_response.retrieve(run_id, thread_id=thread_id).http_response.json()


def test_create_and_poll_completes_with_message_step_and_usage(client):
    thread_id = _thread(client, "Tell me about Lisbon [complete]")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id="asst_plain", model="gpt-4o-mini")
    assert run.status == "completed"
    assert run.model == "gpt-4o-mini" and run.assistant_id == "asst_plain"
    assert run.started_at is not None and run.completed_at is not None
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].status == "completed" and steps[0].usage is not None
    assert run.usage.total_tokens == steps[0].usage.total_tokens > 0
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    messages = client.beta.threads.messages.list(thread_id=thread_id, run_id=run.id).data
    assert messages[0].role == "assistant" and "Lisbon" in messages[0].content[0].text.value
    assert messages[0].id == steps[0].step_details.message_creation.message_id
    validate("RunObject", _raw_run(client, thread_id, run.id))


def _truth(sim, run_id: str) -> dict:
    return next(r for r in sim.ground_truth()["runs"] if r["id"] == run_id)


def test_create_returns_queued_run_that_moves_over_time(sim, client):
    thread_id = _thread(client, "Hello [complete]")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_plain")
    assert run.status == "queued" and run.usage is None and run.started_at is None
    seen = [run.status]
    while run.status not in ("completed", "failed", "incomplete"):
        validate("RunObject", _raw_run(client, thread_id, run.id))
        run = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
        seen.append(run.status)
    assert run.status == "completed"
    held = _truth(sim, run.id)["statuses"]
    assert held == ["queued", "in_progress", "completed"]
    assert [s for s in held if s in seen] == sorted(set(seen), key=held.index)  # polls saw them in order


def test_tool_calls_then_submit_tool_outputs_and_poll(client):
    thread_id = _thread(client, "What is the weather in Paris?")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id="asst_weather", tools=[WEATHER_TOOL], metadata={"sim_outcome": "completed"}
    )
    assert run.status == "requires_action"
    validate("RunObject", _raw_run(client, thread_id, run.id))
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert 1 <= len(calls) <= 2
    assert all(c.function.name == "get_weather" and c.function.arguments == '{"location": "Paris"}' for c in calls)
    (tool_step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data
    assert tool_step.type == "tool_calls" and tool_step.status == "in_progress" and tool_step.usage is None
    outputs = [{"tool_call_id": c.id, "output": '{"temp_c": 21}'} for c in calls]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread_id, tool_outputs=outputs
    )
    assert run.status == "completed" and run.required_action is None
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    assert [(s.type, s.status) for s in steps] == [("tool_calls", "completed"), ("message_creation", "completed")]
    assert steps[0].step_details.tool_calls[0].function.output == '{"temp_c": 21}'
    assert run.usage.total_tokens == sum(s.usage.total_tokens for s in steps)


def test_cancel_then_poll_ends_cancelled(client):
    thread_id = _thread(client, "Write a long essay [slow]")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_plain")
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    assert cancelled.status == "cancelling"
    run = client.beta.threads.runs.poll(run.id, thread_id=thread_id)
    assert run.status == "cancelled" and run.cancelled_at is not None
    validate("RunObject", _raw_run(client, thread_id, run.id))
    with pytest.raises(openai.BadRequestError, match="Cannot cancel run with status 'cancelled'"):
        client.beta.threads.runs.cancel(run.id, thread_id=thread_id)


def test_create_and_run_poll_creates_thread_with_messages(client):
    run = client.beta.threads.create_and_run_poll(
        assistant_id="asst_plain",
        thread={"messages": [{"role": "user", "content": "Summarize Rome [complete]"}]},
    )
    assert run.status == "completed"
    messages = client.beta.threads.messages.list(thread_id=run.thread_id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("hint", "metadata", "status", "check"),
    [
        (
            "Please answer [fail]",
            None,
            "failed",
            lambda r: r.last_error.code in ("server_error", "rate_limit_exceeded"),
        ),
        ("Answer [incomplete]", None, "incomplete", lambda r: r.incomplete_details.reason == "max_completion_tokens"),
        ("Plain question", {"sim_outcome": "incomplete"}, "incomplete", lambda r: r.incomplete_details is not None),
        ("Answer [expire]", None, "expired", lambda r: r.usage is not None),
        ("Plain question", {"sim_outcome": "failed"}, "failed", lambda r: r.failed_at is not None),
    ],
)
def test_outcome_hints(client, hint, metadata, status, check):
    thread_id = _thread(client, hint)
    kwargs = {"metadata": metadata} if metadata else {}
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id="asst_plain", **kwargs)
    assert run.status == status
    assert check(run)
    validate("RunObject", _raw_run(client, thread_id, run.id))


def test_slow_hint_takes_longer(sim, client):
    def held_ms(run) -> float:  # from queued to the final status, by the simulator's clock
        entered = _truth(sim, run.id)["entered_at"]
        return (entered[-1] - entered[0]) * 1000

    fast = client.beta.threads.runs.create_and_poll(
        thread_id=_thread(client, "Hi [complete]"), assistant_id="asst_plain"
    )
    slow = client.beta.threads.runs.create_and_poll(thread_id=_thread(client, "Hi [slow]"), assistant_id="asst_plain")
    assert fast.status == slow.status == "completed"
    assert held_ms(fast) >= 60 and held_ms(slow) >= 4 * 60  # slow_factor 4 x run_ms 60


def test_requires_action_left_too_long_expires():
    config = SimConfig(seed=1, run_ms=60, event_gap_ms=1, poll_after_ms=10, expire_ms=150)
    with start_simulator(config) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)
        thread_id = _thread(client, "Weather in Oslo?")
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id,
            assistant_id="asst_weather",
            tools=[WEATHER_TOOL],
            metadata={"sim_outcome": "completed"},
        )
        while run.status == "requires_action":  # nobody answers: after expire_ms it expires
            run = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
        assert run.status == "expired" and _truth(sim, run.id)["statuses"][-2:] == ["requires_action", "expired"]
        (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data
        assert step.status == "expired" and step.expired_at is not None
        with pytest.raises(openai.BadRequestError, match="do not accept tool outputs"):
            client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=[])


def test_update_sets_metadata(client):
    thread_id = _thread(client, "Hi [complete]")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id="asst_plain")
    updated = client.beta.threads.runs.update(run.id, thread_id=thread_id, metadata={"reviewed": "yes"})
    assert updated.metadata == {"reviewed": "yes"}
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).metadata == {"reviewed": "yes"}


def test_a_thread_runs_one_run_at_a_time(client):
    thread_id = _thread(client, "Hi [slow]")
    client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_plain")
    with pytest.raises(openai.BadRequestError, match="already has an active run"):
        client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_plain")


def test_model_comes_from_the_assistant_unless_overridden(client):
    assistant = client.beta.assistants.create(model="o3-mini", instructions="Be brief.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=_thread(client, "Hi [complete]"), assistant_id=assistant.id
    )
    assert run.model == "o3-mini" and run.instructions == "Be brief."
    run = client.beta.threads.runs.create_and_poll(
        thread_id=_thread(client, "Hi [complete]"), assistant_id=assistant.id, model="gpt-4-turbo"
    )
    assert run.model == "gpt-4-turbo"
    auto = client.beta.threads.runs.create(thread_id=_thread(client, "Hi"), assistant_id="asst_never_seen")
    assert auto.model == "gpt-4o"


def test_hold_times_keep_each_status_and_cancelling(client, sim):
    runs = client.beta.threads.runs
    thread_id = _thread(client, "Hold on [complete]")
    metadata = {"sim_hold_ms": "queued=80,in_progress=120,cancelling=90"}
    run = runs.create_and_poll(thread_id=thread_id, assistant_id="asst_plain", metadata=metadata, poll_interval_ms=10)
    assert run.status == "completed"
    other = runs.create(thread_id=_thread(client, "Hold and cancel"), assistant_id="asst_plain", metadata=metadata)
    runs.cancel(other.id, thread_id=other.thread_id)
    assert runs.poll(other.id, other.thread_id, poll_interval_ms=10).status == "cancelled"
    truth = {r["id"]: r for r in sim.ground_truth()["runs"]}
    held = truth[run.id]
    assert held["statuses"] == ["queued", "in_progress", "completed"]
    queued_ms, in_progress_ms = (1000 * (b - a) for a, b in zip(held["entered_at"], held["entered_at"][1:]))
    # At least the hold (the loop may wake a little late), never the default pacing's 18/42 ms.
    assert 80 <= queued_ms < 200 and 120 <= in_progress_ms < 300
    cancelled = truth[other.id]
    assert cancelled["statuses"][-2:] == ["cancelling", "cancelled"]
    assert 1000 * (cancelled["entered_at"][-1] - cancelled["entered_at"][-2]) >= 90


@pytest.mark.parametrize("spec", ["queued=abc", "requires_action=100", "queued", "in_progress=-5"])
def test_a_bad_hold_spec_is_a_400(client, spec):
    with pytest.raises(openai.BadRequestError, match="sim_hold_ms"):
        client.beta.threads.runs.create(
            thread_id=_thread(client, "x"), assistant_id="asst_plain", metadata={"sim_hold_ms": spec}
        )
