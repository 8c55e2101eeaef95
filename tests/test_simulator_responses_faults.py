"""Outcome hints and `--fault` kinds on Responses and Conversations operations."""

from __future__ import annotations

import time
from collections import Counter

import openai
import pytest

from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.validating_client import validating_client


def _sim(*faults: str):
    return start_simulator(SimConfig(seed=2, run_ms=30, event_gap_ms=1, poll_after_ms=5, faults=list(faults)))


@pytest.fixture(scope="module")
def client():
    with _sim() as sim:
        yield validating_client(sim.base_url, Counter())


@pytest.mark.parametrize(
    ("text", "metadata", "status", "check"),
    [
        ("Answer me [fail]", None, "failed", lambda r: r.error.code in ("server_error", "rate_limit_exceeded")),
        ("Answer me [incomplete]", None, "incomplete", lambda r: r.incomplete_details.reason == "max_output_tokens"),
        ("Plain question", {"sim_outcome": "incomplete"}, "incomplete", lambda r: r.output[0].status == "incomplete"),
        ("Plain question", {"sim_outcome": "failed"}, "failed", lambda r: r.output == [] and r.usage.total_tokens == 0),
        ("Answer me [expire]", None, "failed", lambda r: "expired" in r.error.message),
        ("Answer me [complete]", {"sim_outcome": "completed"}, "completed", lambda r: r.error is None),
    ],
)
def test_outcome_hints(client, text, metadata, status, check):
    kwargs = {"metadata": metadata} if metadata else {}
    response = client.responses.create(model="gpt-4o", input=text, **kwargs)
    assert response.status == status and check(response)


def test_slow_hint_keeps_a_background_response_running_longer(client):
    started = time.monotonic()
    response = client.responses.create(model="gpt-4o", input="Hi [slow]", background=True)
    while response.status in ("queued", "in_progress"):
        response = client.responses.retrieve(response.id)
    assert response.status == "completed"
    assert time.monotonic() - started >= 0.3  # slow_factor 10 x run_ms 30: held at least that long


def test_status_faults_hit_only_their_operations():
    with _sim("status=429,op=createResponse,count=1,retry_after=3", "status=503,op=listConversationItems") as sim:
        client = validating_client(sim.base_url, Counter())
        with pytest.raises(openai.RateLimitError) as info:
            client.responses.create(model="gpt-4o", input="Hi [complete]")
        assert info.value.response.headers["retry-after"] == "3"
        assert client.responses.create(model="gpt-4o", input="Hi [complete]").status == "completed"
        conversation = client.conversations.create()
        with pytest.raises(openai.InternalServerError):
            client.conversations.items.list(conversation.id)
        truth = sim.ground_truth()
    assert [(f["op"], f["value"]) for f in truth["http_faults"]] == [
        ("createResponse", 429),
        ("listConversationItems", 503),
    ]
    assert len(truth["responses"]) == 1  # the rate-limited request created nothing


def test_delay_holds_conversation_responses():
    with _sim("delay=300,op=getConversation") as sim:
        client = validating_client(sim.base_url, Counter())
        conversation = client.conversations.create()
        started = time.monotonic()
        client.conversations.retrieve(conversation.id)
        assert time.monotonic() - started >= 0.3


def test_cut_closes_a_response_stream_and_a_resumed_one():
    with _sim("cut=3,op=createResponse|getResponse") as sim:
        # a plain client: the validating one reads whole bodies before the SDK sees an event
        client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
        types = []
        with pytest.raises(openai.APIConnectionError):
            for event in client.responses.create(model="gpt-4o", input="Hi [complete]", stream=True):
                types.append(event.type)
        assert types == ["response.created", "response.in_progress", "response.output_item.added"]
        response = client.responses.create(model="gpt-4o", input="Hi [complete]", background=True)
        with pytest.raises(openai.APIConnectionError):
            list(client.responses.retrieve(response.id, stream=True))
        assert client.responses.retrieve(response.id).id == response.id  # not a stream: not cut


def test_outcome_rename_and_tokens_faults_on_create_response():
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    with _sim("outcome=incomplete,op=createResponse,match=Paris", "rename=lookup:search", "tokens=0") as sim:
        client = validating_client(sim.base_url, Counter())
        paris = client.responses.create(model="gpt-4o", input="Trip to Paris [complete]")
        called = client.responses.create(model="gpt-4o", input="Find Rome [complete]", tools=[tool])
    assert paris.status == "incomplete"
    assert {o.name for o in called.output} == {"search"}
    assert paris.usage.total_tokens == called.usage.total_tokens == 0
