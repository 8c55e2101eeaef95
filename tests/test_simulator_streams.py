"""Streaming (`stream: true`): SSE order and pacing on the wire, and the SDK's stream helpers."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from openai import AssistantEventHandler

from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.spec_schemas import validate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
HEADERS = {"Authorization": "Bearer sk-test"}
# The reference stream's shape (deltas collapsed): see tests/fixtures/sse-stream-example.txt.
TOOL_TURN = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.run.step.delta",
    "thread.run.requires_action",
    "done",
]
FINAL_TURN = [
    "thread.run.step.completed",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
    "done",
]


@pytest.fixture(scope="module")
def sim():
    with start_simulator(SimConfig(seed=3, run_ms=60, event_gap_ms=2, poll_after_ms=10)) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(sim):
    return openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)


def _sse(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) pairs of a whole SSE body."""
    events = []
    for frame in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((lines["event"], lines["data"]))
    return events


def _collapse(names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1] or not n.endswith(".delta")]


def test_wire_order_matches_reference_for_tool_turn_and_submit(client, sim):
    thread_id = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in San Francisco?"}]).id
    body = {
        "assistant_id": "asst_x",
        "tools": [TOOL],
        "parallel_tool_calls": False,
        "stream": True,
        "metadata": {"sim_outcome": "completed"},
    }
    with httpx.Client(base_url=sim.base_url, headers=HEADERS, timeout=10) as http:
        first = http.post(f"/threads/{thread_id}/runs", json=body)
        assert first.headers["content-type"].startswith("text/event-stream")
        events = _sse(first)
        assert _collapse([e for e, _ in events]) == TOOL_TURN
        assert events[-1] == ("done", "[DONE]")
        deltas = [json.loads(d)["delta"]["step_details"]["tool_calls"][0] for e, d in events if e.endswith("delta")]
        assert len(deltas) >= 3  # the call's head, then its arguments in several pieces
        assert deltas[0]["function"] == {"name": "get_current_weather", "arguments": "", "output": None}
        arguments = "".join(d["function"]["arguments"] for d in deltas)
        assert json.loads(arguments) == {"location": "San Francisco"}
        run = json.loads(events[-2][1])
        validate("RunObject", run)
        for event, data in events:
            if event.startswith("thread.run.step.") and not event.endswith("delta"):
                validate("RunStepObject", json.loads(data))
        call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
        outputs = {"tool_outputs": [{"tool_call_id": call_id, "output": "18C fog"}], "stream": True}
        second = http.post(f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs", json=outputs)
    events = _sse(second)
    assert _collapse([e for e, _ in events]) == FINAL_TURN
    tool_step = json.loads(events[0][1])
    assert tool_step["status"] == "completed" and tool_step["usage"]["total_tokens"] > 0
    final = json.loads(events[-2][1])
    validate("RunObject", final)
    steps = [json.loads(d) for e, d in events if e == "thread.run.step.completed"]
    assert final["usage"]["total_tokens"] == sum(s["usage"]["total_tokens"] for s in steps)
    assert json.loads(events[0][1])["expires_at"] is not None and "expired_at" in tool_step


def test_events_are_paced_and_the_first_arrives_at_once():
    config = SimConfig(run_ms=200, event_gap_ms=20)
    with start_simulator(config) as sim, httpx.Client(base_url=sim.base_url, headers=HEADERS, timeout=10) as http:
        thread_id = http.post("/threads", json={"messages": [{"role": "user", "content": "Hi [complete]"}]}).json()[
            "id"
        ]
        started = time.monotonic()
        arrivals = []
        with http.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": "a", "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    arrivals.append(time.monotonic() - started)
    assert arrivals[-1] - arrivals[0] > 0.2 + 10 * 0.015  # the turn plus a dozen paced events
    assert len(arrivals) >= 14


def test_the_first_event_arrives_while_the_run_is_still_going():
    """A 10-second turn, cancelled once the client has its first event: nothing waits for the end."""
    with (
        start_simulator(SimConfig(run_ms=10_000)) as sim,
        httpx.Client(base_url=sim.base_url, headers=HEADERS, timeout=30) as http,
    ):
        thread_id = http.post("/threads", json={"messages": [{"role": "user", "content": "Hi"}]}).json()["id"]
        events, cancelled = [], False
        with http.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": "a", "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and not cancelled:
                    run = json.loads(line.removeprefix("data: "))
                    cancelled = http.post(f"/threads/{thread_id}/runs/{run['id']}/cancel").status_code == 200
                if line.startswith("event:"):
                    events.append(line.removeprefix("event: "))
    assert events[0] == "thread.run.created" and events[-2:] == ["thread.run.cancelled", "done"], events


class Recorder(AssistantEventHandler):
    """Collects what the SDK's stream helpers report."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.tool_calls: list = []
        self.texts: list[str] = []
        self.steps: list = []

    def on_event(self, event) -> None:
        self.events.append(event.event)

    def on_tool_call_done(self, tool_call) -> None:
        self.tool_calls.append(tool_call)

    def on_text_done(self, text) -> None:
        self.texts.append(text.value)

    def on_run_step_done(self, run_step) -> None:
        self.steps.append(run_step)


def test_runs_stream_and_submit_tool_outputs_stream_with_event_handler(client):
    thread_id = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Madrid?"}]).id
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread_id,
        assistant_id="asst_x",
        tools=[TOOL],
        metadata={"sim_outcome": "completed"},
        event_handler=handler,
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    assert [c.function.arguments for c in handler.tool_calls] == [
        c.function.arguments for c in run.required_action.submit_tool_outputs.tool_calls
    ]
    assert all(json.loads(c.function.arguments) == {"location": "Madrid"} for c in handler.tool_calls)
    outputs = [{"tool_call_id": c.id, "output": "sunny"} for c in run.required_action.submit_tool_outputs.tool_calls]
    final_handler = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread_id, tool_outputs=outputs, event_handler=final_handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
        messages = stream.get_final_messages()
        steps = stream.get_final_run_steps()
    assert final.status == "completed" and final.usage.total_tokens > 0
    assert final_handler.events[:2] == ["thread.run.step.completed", "thread.run.queued"]
    assert [s.type for s in final_handler.steps] == ["tool_calls", "message_creation"]
    assert len(messages) == 1 and messages[0].content[0].text.value == final_handler.texts[0]
    assert "sunny" in final_handler.texts[0]
    assert [s.status for s in final_handler.steps] == ["completed", "completed"]
    assert [s.id for s in steps] == [final_handler.steps[1].id]  # the SDK snapshots created steps only
    listed = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    assert [s.id for s in listed] == [s.id for s in final_handler.steps]


def test_create_and_run_stream_starts_with_thread_created(client):
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id="asst_x",
        thread={"messages": [{"role": "user", "content": "Plan a trip [incomplete]"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert handler.events[:2] == ["thread.created", "thread.run.created"]
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"
    assert "thread.message.incomplete" in handler.events and handler.events[-1] == "thread.run.incomplete"


def test_stream_of_a_failed_run_ends_with_run_failed(client):
    thread_id = client.beta.threads.create(messages=[{"role": "user", "content": "Go [fail]"}]).id
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id="asst_x") as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
    assert events == ["thread.run.created", "thread.run.queued", "thread.run.in_progress", "thread.run.failed"]
    assert run.last_error.code in ("server_error", "rate_limit_exceeded")


def test_cancel_during_a_stream_ends_it_cancelled(client):
    thread_id = client.beta.threads.create(messages=[{"role": "user", "content": "Long one [slow]"}]).id
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id="asst_x") as stream:
        events = []
        for event in stream:
            events.append(event.event)
            if event.event == "thread.run.queued":
                client.beta.threads.runs.cancel(event.data.id, thread_id=thread_id)
    assert events[-2:] == ["thread.run.cancelling", "thread.run.cancelled"]
