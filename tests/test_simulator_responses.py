"""The Responses API through the official openai SDK; every body and streamed event schema-checked."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import openai
import pytest

from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.validating_client import validating_client

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TEXT_STREAM = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_EVENTS = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
]


@pytest.fixture(scope="module")
def sim():
    with start_simulator(SimConfig(seed=7, run_ms=40, event_gap_ms=1, poll_after_ms=5)) as handle:
        yield handle


@pytest.fixture
def checked():
    return Counter()


@pytest.fixture
def client(sim, checked):
    return validating_client(sim.base_url, checked)


def _collapse(types: list[str]) -> list[str]:
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1] or not t.endswith(".delta")]


def _outputs(response, text: str = "21C and sunny") -> list[dict]:
    return [{"type": "function_call_output", "call_id": o.call_id, "output": text} for o in response.output]


def test_plain_create_completes_with_a_message_and_usage(client, checked):
    response = client.responses.create(
        model="gpt-4o-mini", input="Tell me about Lisbon [complete]", instructions="Be brief.", metadata={"team": "a"}
    )
    assert response.status == "completed" and response.background is False
    assert (response.model, response.instructions, response.metadata) == ("gpt-4o-mini", "Be brief.", {"team": "a"})
    (message,) = response.output
    assert message.type == "message" and message.status == "completed" and "Lisbon" in response.output_text
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens > 0
    assert (usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens) == (0, 0)
    assert client.responses.retrieve(response.id).output_text == response.output_text
    reasoning = client.responses.create(model="o3-mini", input="Prove it [complete]").usage
    assert reasoning.output_tokens_details.reasoning_tokens == reasoning.output_tokens // 2 > 0
    assert checked["Response"] == 3


def test_function_calls_continued_by_function_call_output_via_previous_response_id(client, checked):
    first = client.responses.create(
        model="gpt-4o", input="What is the weather in Paris?", tools=[WEATHER], metadata={"sim_outcome": "completed"}
    )
    assert first.status == "completed" and first.output
    for call in first.output:
        assert (call.type, call.name, call.status) == ("function_call", "get_weather", "completed")
        assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id.startswith("call_")
    assert first.tools[0].name == "get_weather" and first.tools[0].strict is True
    with pytest.raises(openai.BadRequestError, match="No tool output found for function call"):
        client.responses.create(model="gpt-4o", previous_response_id=first.id, input="And now?", tools=[WEATHER])
    with pytest.raises(openai.BadRequestError, match="No tool call found for function call output"):
        client.responses.create(
            model="gpt-4o", input=[{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]
        )
    second = client.responses.create(
        model="gpt-4o", previous_response_id=first.id, input=_outputs(first), tools=[WEATHER]
    )
    assert second.status == "completed" and second.previous_response_id == first.id
    assert "21C and sunny" in second.output_text
    assert second.usage.input_tokens_details.cached_tokens == first.usage.input_tokens
    items = client.responses.input_items.list(second.id, order="asc").data
    assert [(i.type, i.call_id) for i in items] == [("function_call_output", c.call_id) for c in first.output]
    assert checked["Response"] == 2 and checked["ErrorResponse"] == 2 and checked["ResponseItemList"] == 1


def test_conversation_holds_inputs_and_outputs_and_continues_tool_calls(client, checked):
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "Hi there"}])
    first = client.responses.create(
        model="gpt-4o",
        conversation=conversation.id,
        input="Weather in Oslo? [complete]",
        tools=[WEATHER],
        parallel_tool_calls=False,
    )
    assert first.conversation.id == conversation.id
    (call,) = first.output
    second = client.responses.create(
        model="gpt-4o", conversation={"id": conversation.id}, input=_outputs(first, "-3C"), tools=[WEATHER]
    )
    assert second.status == "completed" and "-3C" in second.output_text
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [(i.type, getattr(i, "role", None)) for i in items] == [
        ("message", "user"),
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
    ]
    assert items[2].call_id == items[3].call_id == call.call_id
    assert items[1].content[0].text == "Weather in Oslo? [complete]"
    assert checked["ConversationResource"] == 1 and checked["ConversationItemList"] == 1


def test_background_response_polled_with_retrieve(sim, client):
    response = client.responses.create(model="gpt-4o-mini", input="Summarize Rome [complete]", background=True)
    assert response.status == "queued" and response.background is True and response.usage is None
    seen = [response.status]
    while response.status in ("queued", "in_progress"):
        raw = client.responses.with_raw_response.retrieve(response.id)
        assert raw.headers["openai-poll-after-ms"] == "5"
        response = raw.parse()
        if response.status != seen[-1]:
            seen.append(response.status)
    assert seen == ["queued", "in_progress", "completed"]
    assert response.usage.total_tokens > 0 and response.completed_at is not None
    truth = next(r for r in sim.ground_truth()["responses"] if r["id"] == response.id)
    assert truth["served_statuses"] == seen and truth["statuses"] == seen


def test_stream_helper_text_and_function_calls(client, checked):
    with client.responses.stream(model="gpt-4o", input="Tell me about Porto [complete]") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _collapse([e.type for e in events]) == TEXT_STREAM
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.status == "completed" and "Porto" in final.output_text
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == final.output_text
    with client.responses.stream(
        model="gpt-4o", input="Weather in Bergen and Oslo? [complete]", tools=[WEATHER], parallel_tool_calls=True
    ) as stream:
        types = [e.type for e in stream]
        final = stream.get_final_response()
    calls = len(final.output)
    assert _collapse(types) == ["response.created", "response.in_progress", *CALL_EVENTS * calls, "response.completed"]
    assert all(o.type == "function_call" and json.loads(o.arguments)["city"] for o in final.output)
    assert checked["ResponseStreamEvent"] == len(events) + len(types)


def test_raw_stream_ends_with_the_final_event_and_no_done(sim):
    body = {"model": "gpt-4o", "input": "Hello [fail]", "stream": True}
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": "Bearer k"}, timeout=10) as http:
        text = http.post("/responses", json=body).text
    frames = [dict(line.split(": ", 1) for line in f.split("\n")) for f in text.strip().split("\n\n")]
    assert [f["event"] for f in frames] == ["response.created", "response.in_progress", "response.failed"]
    assert all(json.loads(f["data"])["type"] == f["event"] for f in frames)
    failed = json.loads(frames[-1]["data"])["response"]
    assert failed["error"]["code"] in ("server_error", "rate_limit_exceeded") and failed["output"] == []


def test_background_stream_resumes_after_a_sequence_number(client, checked):
    events = list(client.responses.create(model="gpt-4o", input="Hi [complete]", background=True, stream=True))
    assert [e.type for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued"
    again = list(client.responses.retrieve(events[0].response.id, stream=True, starting_after=2))
    assert [e.sequence_number for e in again] == [e.sequence_number for e in events[3:]]
    with client.responses.stream(response_id=events[0].response.id, starting_after=2) as stream:
        assert [e.sequence_number for e in stream] == list(range(3, len(events)))
    # the helper asks for the whole stream again and drops the first events itself
    assert checked["ResponseStreamEvent"] == 2 * len(events) + len(again)


def test_cancel_only_background_responses_that_still_run(client, checked):
    response = client.responses.create(model="gpt-4o", input="Write an essay [slow]", background=True)
    cancelled = client.responses.cancel(response.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(response.id).status == "cancelled"
    assert client.responses.cancel(response.id).status == "cancelled"  # idempotent
    done = client.responses.create(model="gpt-4o", input="Hi [complete]")
    with pytest.raises(openai.BadRequestError, match="background=true"):
        client.responses.cancel(done.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_missing")
    assert checked["Response"] == 5 and checked["ErrorResponse"] == 2


def test_delete_makes_the_response_unknown(client, checked):
    response = client.responses.create(model="gpt-4o", input="Hi [complete]")
    assert client.responses.delete(response.id) is None
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError, match="Previous response with id"):
        client.responses.create(model="gpt-4o", previous_response_id=response.id, input="More")
    unstored = client.responses.create(model="gpt-4o", input="Hi [complete]", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    assert checked["deleteResponse"] == 1 and checked["ErrorResponse"] == 3


def test_input_items_pages_newest_first(client, checked):
    texts = [f"Message {i}" for i in range(5)]
    response = client.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": t} for t in texts[:-1]]
        + [{"role": "user", "content": [{"type": "input_text", "text": texts[-1]}]}],
    )
    page = client.responses.input_items.list(response.id, limit=2)
    assert [i.content[0].text for i in page.data] == texts[::-1][:2] and page.has_more
    assert [i.content[0].text for i in client.responses.input_items.list(response.id, limit=2)] == texts[::-1]
    ordered = client.responses.input_items.list(response.id, order="asc", after=page.data[-1].id)
    assert [i.content[0].text for i in ordered.data] == texts[4:]  # ascending after the 4th message
    ascending = client.responses.input_items.list(response.id, order="asc", limit=3)
    assert [i.content[0].text for i in ascending.data] == texts[:3]
    assert checked["ResponseItemList"] >= 4


def test_conversations_and_their_items(client, checked):
    conversation = client.conversations.create(metadata={"topic": "trips"})
    assert conversation.metadata == {"topic": "trips"} and isinstance(conversation.created_at, int)
    assert client.conversations.retrieve(conversation.id).id == conversation.id
    assert client.conversations.update(conversation.id, metadata={"topic": "food"}).metadata == {"topic": "food"}
    added = client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "user", "content": "One"},
            {"type": "message", "role": "assistant", "content": "Two"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Three"}]},
        ],
    )
    assert [i.role for i in added.data] == ["user", "assistant", "user"]
    page = client.conversations.items.list(conversation.id, limit=2)
    assert [i.id for i in page.data] == [added.data[2].id, added.data[1].id] and page.has_more
    assert [i.id for i in client.conversations.items.list(conversation.id, limit=2)] == [i.id for i in added.data][::-1]
    item = client.conversations.items.retrieve(added.data[1].id, conversation_id=conversation.id)
    assert item.content[0].type == "output_text" and item.content[0].text == "Two"
    after_delete = client.conversations.items.delete(added.data[0].id, conversation_id=conversation.id)
    assert after_delete.id == conversation.id
    assert len(client.conversations.items.list(conversation.id).data) == 2
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(added.data[0].id, conversation_id=conversation.id)
    assert client.conversations.delete(conversation.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input="Hi", conversation=conversation.id)
    assert checked["ConversationResource"] == 4 and checked["DeletedConversationResource"] == 1
    assert checked["ConversationItem"] == 1 and checked["ConversationItemList"] == 5


@pytest.mark.parametrize(
    ("body", "status", "param", "message"),
    [
        ({"input": "Hi"}, 400, "model", "Missing required parameter: 'model'"),
        (
            {"model": "gpt-4o", "input": "Hi", "tools": [{"type": "function", "function": {"name": "get_weather"}}]},
            400,
            "tools[0].name",
            "Missing required parameter: 'tools[0].name'",
        ),
        (
            {"model": "gpt-4o", "input": "Hi", "previous_response_id": "resp_a", "conversation": "conv_b"},
            400,
            "previous_response_id",
            "Mutually exclusive parameters",
        ),
        ({"model": "gpt-4o", "previous_response_id": "resp_none"}, 400, "previous_response_id", "not found"),
        ({"model": "gpt-4o", "conversation": "conv_none"}, 404, "conversation", "not found"),
        ({"model": "gpt-4o", "input": 5}, 400, "input", "Invalid type for 'input'"),
        ({"model": "gpt-4o", "max_output_tokens": 3}, 400, "max_output_tokens", "below minimum"),
        ({"model": "gpt-4o", "background": True, "store": False}, 400, "background", "requires store=true"),
    ],
)
def test_bad_requests_get_openai_errors(sim, checked, body, status, param, message):
    client = validating_client(sim.base_url, checked)
    with pytest.raises(openai.APIStatusError) as info:
        client.post("/responses", body=body, cast_to=object)
    assert info.value.status_code == status and info.value.body["param"] == param
    assert message in info.value.body["message"]
    assert checked["ErrorResponse"] == 1


@pytest.mark.parametrize("prefix", ["", "/openai", "/gateway/v1"])
def test_routes_work_under_any_prefix(sim, prefix):
    checked = Counter()
    client = validating_client(sim.url + prefix, checked)
    response = client.responses.create(model="gpt-4o", input="Hi [complete]")
    assert client.responses.retrieve(response.id).status == "completed"
    assert client.conversations.create().object == "conversation"
    assert checked["Response"] == 2
    assert httpx.post(sim.url + prefix + "/responses", json={"model": "m"}).status_code == 401


def test_ground_truth_reports_what_the_sdk_saw(sim, client):
    conversation = client.conversations.create()
    first = client.responses.create(
        model="gpt-4.1", input="Weather in Lima? [complete]", tools=[WEATHER], conversation=conversation.id
    )
    second = client.responses.create(
        model="gpt-4.1", input=_outputs(first), tools=[WEATHER], conversation=conversation.id
    )
    truth = {r["id"]: r for r in sim.ground_truth()["responses"]}
    for response in (first, second):
        record = truth[response.id]
        assert (record["model"], record["status"], record["conversation_id"]) == (
            "gpt-4.1",
            response.status,
            conversation.id,
        )
        assert record["usage"]["input_tokens"] == response.usage.input_tokens
        assert record["usage"]["total_tokens"] == response.usage.total_tokens
        assert record["served_statuses"] == ["completed"]
    assert truth[first.id]["function_calls"] == [
        {"call_id": o.call_id, "name": o.name, "arguments": o.arguments} for o in first.output
    ]
    assert (truth[first.id]["turn"], truth[second.id]["turn"], truth[second.id]["function_calls"]) == (0, 1, [])
    conversations = {c["id"]: c for c in sim.ground_truth()["conversations"]}
    assert conversations[conversation.id]["responses"] == [first.id, second.id]
