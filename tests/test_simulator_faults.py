"""Fault injection: spec parsing, and each fault kind hitting only the requests it targets."""

from __future__ import annotations

import time

import openai
import pytest

from runtap.errors import RuntapError
from runtap.simulator.config import SimConfig
from runtap.simulator.faults import parse_fault
from runtap.simulator.server import start_simulator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def _client(sim) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)


def _sim(*faults: str, **kwargs):
    return start_simulator(SimConfig(run_ms=20, event_gap_ms=1, poll_after_ms=5, faults=list(faults), **kwargs))


def _thread(client, text: str) -> str:
    return client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def test_parse_fault_reads_kind_and_filters():
    fault = parse_fault("status=429,op=createRun|getRun,match=Paris,count=2,skip=1,retry_after=3")
    assert (fault.kind, fault.value, fault.ops, fault.match) == ("status", 429, ("createRun", "getRun"), "Paris")
    assert (fault.count, fault.skip, fault.retry_after) == (2, 1, 3)
    assert parse_fault("rename=get_weather:get_current_weather").value == ("get_weather", "get_current_weather")
    assert parse_fault("tokens=2.5").value == 2.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("status=404", "status must be one of"),
        ("boom=1", "unknown fault kind"),
        ("delay=-5", "delay expects an integer"),
        ("cut=3,op=makeCoffee", "unknown operation"),
        ("outcome=exploded", "outcome must be one of"),
        ("rename=old", "rename expects OLD:NEW"),
        ("tokens=lots", "tokens expects a non-negative number"),
        ("status=500,when=now", "unknown filter"),
        ("status", "expected KEY=VALUE"),
    ],
)
def test_bad_fault_specs_raise_one_line_errors(spec, message):
    with pytest.raises(RuntapError, match=message) as info:
        SimConfig(faults=[spec])
    assert "\n" not in str(info.value)


def test_status_faults_become_typed_sdk_errors_and_respect_count():
    with _sim(
        "status=429,op=createRun,count=1,retry_after=2", "status=500,op=getRun,count=1", "status=503,op=listRuns"
    ) as sim:
        client = _client(sim)
        thread_id = _thread(client, "Hi [complete]")
        with pytest.raises(openai.RateLimitError) as info:
            client.beta.threads.runs.create(thread_id=thread_id, assistant_id="a")
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.body["code"] == "rate_limit_exceeded"
        run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id="a")  # count=1: passes now
        with pytest.raises(openai.InternalServerError) as info:
            client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
        assert info.value.status_code == 500
        with pytest.raises(openai.InternalServerError) as info:
            client.beta.threads.runs.list(thread_id=thread_id)
        assert info.value.status_code == 503
        assert client.beta.threads.runs.poll(run.id, thread_id=thread_id).status == "completed"
        truth = sim.ground_truth()
    assert [(f["op"], f["value"]) for f in truth["http_faults"]] == [
        ("createRun", 429),
        ("getRun", 500),
        ("listRuns", 503),
    ]
    assert len(truth["runs"]) == 1  # the rate-limited request created nothing


def test_match_and_skip_target_only_matching_requests():
    with _sim("status=500,op=createRun,match=Paris,skip=1") as sim:
        client = _client(sim)
        ok = client.beta.threads.runs.create(
            thread_id=_thread(client, "Rome"), assistant_id="a", metadata={"city": "Rome"}
        )
        assert ok.status == "queued"
        client.beta.threads.runs.create(
            thread_id=_thread(client, "Paris"), assistant_id="a", metadata={"city": "Paris"}
        )
        with pytest.raises(openai.InternalServerError):
            client.beta.threads.runs.create(
                thread_id=_thread(client, "x"), assistant_id="a", metadata={"city": "Paris"}
            )


def test_delay_holds_the_response_headers():
    with _sim("delay=300,op=getThread") as sim:
        client = _client(sim)
        thread_id = client.beta.threads.create().id
        started = time.monotonic()
        client.beta.threads.retrieve(thread_id)
        assert time.monotonic() - started >= 0.3
        client.beta.threads.messages.list(thread_id=thread_id)
        delayed = [(f["op"], f["kind"]) for f in sim.ground_truth()["http_faults"]]
        assert delayed == [("getThread", "delay")]  # only the operation the fault names


def test_cut_closes_a_stream_mid_way():
    with _sim("cut=3,op=createRun") as sim:
        client = _client(sim)
        thread_id = _thread(client, "Hi [complete]")
        events = []
        # the SDK's transport error
        with (
            pytest.raises(Exception, match="peer closed connection"),
            client.beta.threads.runs.stream(thread_id=thread_id, assistant_id="a") as stream,
        ):
            for event in stream:
                events.append(event.event)
        assert events == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
        # a non-streamed request is not a stream to cut
        assert (
            client.beta.threads.runs.create_and_poll(
                thread_id=_thread(client, "Hi [complete]"), assistant_id="a"
            ).status
            == "completed"
        )


def test_forced_outcome_hits_runs_whose_messages_match():
    with _sim("outcome=failed,match=Paris") as sim:
        client = _client(sim)
        paris = client.beta.threads.runs.create_and_poll(
            thread_id=_thread(client, "Trip to Paris [complete]"), assistant_id="a"
        )
        rome = client.beta.threads.runs.create_and_poll(
            thread_id=_thread(client, "Trip to Rome [complete]"), assistant_id="a"
        )
    assert paris.status == "failed" and rome.status == "completed"


def test_rename_changes_generated_tool_calls():
    with _sim("rename=get_weather:get_current_weather") as sim:
        client = _client(sim)
        run = client.beta.threads.runs.create_and_poll(
            thread_id=_thread(client, "Weather in Paris?"),
            assistant_id="a",
            tools=[TOOL],
            metadata={"sim_outcome": "completed"},
        )
        names = {c.function.name for c in run.required_action.submit_tool_outputs.tool_calls}
        truth = sim.ground_truth()
    assert names == {"get_current_weather"}
    assert {c["function_name"] for c in truth["runs"][0]["tool_calls"]} == {"get_current_weather"}


def test_tokens_factor_multiplies_usage():
    usages = []
    for faults in ([], ["tokens=3"]):
        with _sim(*faults) as sim:
            client = _client(sim)
            run = client.beta.threads.runs.create_and_poll(
                thread_id=_thread(client, "Hello [complete]"), assistant_id="a"
            )
            usages.append(run.usage)
    assert usages[1].prompt_tokens == 3 * usages[0].prompt_tokens
    assert usages[1].completion_tokens == 3 * usages[0].completion_tokens
