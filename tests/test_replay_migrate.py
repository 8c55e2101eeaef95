"""The migration's pure parts: the mapping tables, the translation of a session, the comparisons,
the cost table and the grouping of native Responses traffic (hand-made recordings, no server)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from runtap.analysis.costs import price_table
from runtap.recordings.exchanges import RecordedExchange
from runtap.recordings.sessions import RecordedThread
from runtap.replay.matchers import FAILURE, WARNING, MatchOptions
from runtap.replay.migrate import mapping
from runtap.replay.migrate.compare import match_message, match_run, match_stream, summed_usage
from runtap.replay.migrate.costs import migration_costs
from runtap.replay.migrate.native import native_sessions
from runtap.replay.migrate.observe import observe_response
from runtap.replay.migrate.translate import UNKNOWN_START, response_template, translate
from runtap.replay.observe import observe
from runtap.replay.sessions import build_sessions
from tests.recorded import at, recorded

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
RUN = {
    "id": "run_1",
    "object": "thread.run",
    "thread_id": "thread_1",
    "status": "queued",
    "model": "gpt-4o",
    "instructions": "Be brief.",
    "tools": [{"type": "function", "function": WEATHER}],
    "metadata": {"team": "a"},
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "temperature": 1.0,
    "top_p": 1.0,
    "max_completion_tokens": None,
    "max_prompt_tokens": None,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "response_format": "auto",
}


def sse(*events: tuple[str, dict]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


# --- mapping ------------------------------------------------------------------------------


def test_function_tools_become_flat_and_keep_the_assistants_non_strict_default():
    flat, why = mapping.tool({"type": "function", "function": WEATHER | {"description": "Weather"}}, {})
    assert why is None
    assert flat == {"type": "function", "name": "get_weather", "description": "Weather"} | {
        "parameters": WEATHER["parameters"],
        "strict": False,
    }
    assert mapping.tool({"type": "function", "function": WEATHER | {"strict": True}}, {})[0]["strict"] is True


def test_other_tools_map_where_a_counterpart_exists_and_say_why_not_otherwise():
    resources = {"file_search": {"vector_store_ids": ["vs_1"]}, "code_interpreter": {"file_ids": ["file_1"]}}
    assert mapping.tool({"type": "file_search", "file_search": {"max_num_results": 5}}, resources)[0] == {
        "type": "file_search",
        "vector_store_ids": ["vs_1"],
        "max_num_results": 5,
    }
    assert mapping.tool({"type": "code_interpreter"}, resources)[0] == {
        "type": "code_interpreter",
        "container": {"type": "auto", "file_ids": ["file_1"]},
    }
    dropped, why = mapping.tool({"type": "file_search"}, {})
    assert dropped is None and "vector_store_ids" in why
    assert mapping.tool({"type": "retrieval"}, {}) == (None, "tool type 'retrieval' has no Responses counterpart")


def test_tool_choice_and_response_format_take_the_responses_shapes():
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert mapping.tool_choice(named) == {"type": "function", "name": "get_weather"}
    assert mapping.tool_choice("required") == "required"
    assert mapping.text_format("auto") is None and mapping.text_format({"type": "text"}) is None
    assert mapping.text_format({"type": "json_object"}) == {"format": {"type": "json_object"}}
    schema = {"name": "w", "schema": {"type": "object"}, "strict": True}
    assert mapping.text_format({"type": "json_schema", "json_schema": schema}) == {
        "format": {"type": "json_schema", **schema}
    }


@pytest.mark.parametrize(
    ("run", "request_", "expected"),
    [
        ({"instructions": "Be brief."}, {}, "Be brief."),
        ({"instructions": "Be brief."}, {"additional_instructions": "Use C."}, "Be brief.\nUse C."),
        ({"instructions": "Be brief.\nUse C."}, {"additional_instructions": "Use C."}, "Be brief.\nUse C."),  # folded
        ({}, {"instructions": "Own.", "additional_instructions": "More."}, "Own.\nMore."),
        ({}, {"additional_instructions": "Only."}, "Only."),
        ({}, {}, None),
    ],
)
def test_instructions_are_the_runs_followed_by_additional_instructions(run, request_, expected):
    assert mapping.instructions(run, request_) == expected


def test_messages_become_items():
    assert mapping.message_item({"role": "user", "content": "Hi"}) == (
        {"type": "message", "role": "user", "content": "Hi"},
        [],
    )
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert mapping.message_item({"role": "assistant", "content": parts})[0]["content"] == "ab"
    image = [{"type": "text", "text": "Look"}, {"type": "image_file", "image_file": {"file_id": "file_1"}}]
    item, notes = mapping.message_item({"role": "user", "content": image, "attachments": [{"file_id": "f"}]})
    assert item["content"] == [
        {"type": "input_text", "text": "Look"},
        {"type": "input_image", "detail": "auto", "file_id": "file_1"},
    ]
    assert notes == ["message attachments (files for tools) have no item counterpart: not sent"]


def test_the_response_template_takes_the_run_object_first_and_lists_what_it_drops():
    v1 = {k: v for k, v in RUN.items() if k not in ("max_prompt_tokens", "truncation_strategy")}
    v1 |= {"file_ids": ["file-1"], "tools": [*RUN["tools"], {"type": "retrieval"}]}  # no usage, required_action
    request = {"assistant_id": "asst_1", "max_prompt_tokens": 500, "truncation_strategy": {"type": "last_messages"}}
    template, notes = response_template(v1, request)
    assert template == {
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER["parameters"], "strict": False}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "metadata": {"team": "a"},
        "truncation": "auto",
    }
    assert notes == [
        "tool not sent: tool type 'retrieval' has no Responses counterpart",
        "truncation_strategy last_messages=None: sent as truncation auto",
        "max_prompt_tokens 500 has no Responses counterpart: not sent",
    ]
    bare, _ = response_template({"model": "gpt-4o", "tools": [], "tool_choice": "auto"}, {"max_completion_tokens": 300})
    assert bare == {"model": "gpt-4o", "tools": [], "max_output_tokens": 300}  # no tool_choice without tools
    warm, _ = response_template({"model": "gpt-4o", "temperature": 0.2, "top_p": 1.0}, {})
    assert (warm["temperature"], "top_p" in warm) == (0.2, False)  # the default (1) is left out


# --- translation --------------------------------------------------------------------------


def _session(*exchanges: RecordedExchange):
    (session,) = build_sessions(list(exchanges))
    return session


def _run(status: str, **extra) -> str:
    return json.dumps(RUN | {"status": status} | extra)


def test_a_session_becomes_conversation_items_responses_and_not_comparable_steps():
    asked = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
        },
    }
    stream = sse(
        ("thread.run.created", json.loads(_run("queued"))),
        ("thread.run.requires_action", json.loads(_run("requires_action", required_action=asked))),
    )
    t = "thread_1"
    session = _session(
        recorded(
            "e1",
            "POST",
            "/threads",
            thread=t,
            body=json.dumps({"messages": [{"role": "user", "content": "Hi"}], "metadata": {"k": "v"}}),
            response=json.dumps({"id": t, "object": "thread"}),
        ),
        recorded(
            "e2",
            "POST",
            f"/threads/{t}/messages",
            thread=t,
            body=json.dumps({"role": "user", "content": "Paris?"}),
            started=1,
        ),
        recorded(
            "e3",
            "POST",
            f"/threads/{t}/runs",
            thread=t,
            body=json.dumps(
                {"assistant_id": "asst_1", "stream": True, "additional_messages": [{"role": "user", "content": "Now"}]}
            ),
            response=stream,
            streamed=True,
            started=2,
        ),
        recorded(
            "e4",
            "POST",
            f"/threads/{t}/runs/run_1/submit_tool_outputs",
            thread=t,
            body=json.dumps({"tool_outputs": [{"tool_call_id": "call_1", "output": {"t": 1}}]}),
            response=_run("queued"),
            started=3,
        ),
        recorded("e5", "GET", f"/threads/{t}/runs/run_1", thread=t, response=_run("completed"), started=4),
        recorded(
            "e6",
            "POST",
            f"/threads/{t}/runs/run_1/cancel",
            thread=t,
            status=400,
            response=json.dumps({"error": {"message": "no"}}),
            started=5,
        ),
        recorded(
            "e7",
            "GET",
            f"/threads/{t}/runs/run_1/steps",
            thread=t,
            response='{"object": "list", "data": []}',
            started=6,
        ),
        recorded(
            "e8",
            "POST",
            f"/threads/{t}/runs/run_1",
            thread=t,
            body='{"metadata": {}}',
            response=_run("completed"),
            started=7,
        ),
    )
    translation = translate(session)
    kinds = [(a.step.first.operation, a.kind) for a in translation.actions]
    assert kinds == [
        ("createThread", "conversation"),
        ("createMessage", "items"),
        ("createRun", "response"),
        ("submitToolOutputsToRun", "response"),
        ("getRun", "poll"),
        ("cancelRun", "cancel"),
        ("listRunSteps", "none"),
        ("modifyRun", "none"),
    ]
    thread, message, create, submit, *_ = translation.actions
    assert thread.items == ({"type": "message", "role": "user", "content": "Hi"},) and thread.metadata == {"k": "v"}
    assert message.items == ({"type": "message", "role": "user", "content": "Paris?"},)
    assert create.inputs == ({"type": "message", "role": "user", "content": "Now"},)
    assert (create.stream, create.background) == (True, True)  # cancelled later: only a background one can be
    assert (submit.stream, submit.background, submit.outputs) == (False, True, (("call_1", '{"t": 1}'),))
    assert translation.templates["run_1"]["instructions"] == "Be brief."
    assert translation.actions[6].not_comparable == (mapping.NO_COUNTERPART["listRunSteps"],)
    assert (translation.prefix, translation.query, translation.comparable) == ("/v1", "", True)


def test_runs_from_before_the_recording_and_refused_creates_are_not_comparable():
    t = "thread_2"
    session = _session(
        recorded("e1", "GET", f"/threads/{t}/runs/run_old", thread=t, response=_run("completed")),
        recorded(
            "e2",
            "POST",
            f"/threads/{t}/runs",
            thread=t,
            status=400,
            response=json.dumps({"error": {"message": "active run"}}),
            started=1,
        ),
        recorded("e3", "GET", f"/threads/{t}/runs", thread=t, response='{"object": "list", "data": []}', started=2),
    )
    translation = translate(session)
    assert [a.kind for a in translation.actions] == ["none", "none", "none"]
    assert not translation.comparable
    reasons = [r for a in translation.actions for r in a.not_comparable]
    assert reasons[0].startswith("getRun: the run was created before the recording")
    assert reasons[1] == "createRun not translated: the recorded server answered HTTP 400 (active run)"


def test_a_gateway_prefix_and_api_version_are_kept():
    exchange = recorded("e1", "POST", "/threads", thread="thread_3", response='{"id": "thread_3"}')
    azure = dataclasses.replace(exchange, url="https://x/openai/threads?api-version=2024-05-01&x=1")
    translation = translate(_session(azure))
    assert (translation.prefix, translation.query) == ("/openai", "api-version=2024-05-01")


# --- comparing ----------------------------------------------------------------------------


def test_stream_events_compare_through_the_mapping():
    delta = {
        "id": "step_1",
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": [{"index": 0}]}},
    }
    run_stream = sse(
        ("thread.run.created", {}),
        ("thread.run.queued", {}),
        ("thread.run.in_progress", {}),
        ("thread.run.step.created", {}),
        ("thread.run.step.delta", delta),
        ("thread.run.step.delta", delta),
        ("thread.run.requires_action", {}),
        ("done", "[DONE]"),
    )
    step = _session(recorded("e1", "POST", "/threads/t/runs", thread="t", response=run_stream, streamed=True)).steps[0]
    rec = observe(200, run_stream, streamed=True)
    names = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    whole = observe_response(200, sse(*((n, {"type": n}) for n in names)), streamed=True)
    assert match_stream(step, rec, whole) == []
    cut = observe_response(200, sse(*((n, {"type": n}) for n in names[:4])), streamed=True)
    (diff,) = match_stream(step, rec, cut)
    assert diff.message == (
        "stream events differ at #3: the run streamed completed (thread.run.requires_action), "
        "the response end of stream"
    )


def _response(status: str, *output: dict, **extra) -> dict:
    return {"id": "resp_1", "object": "response", "status": status, "model": "gpt-4o", "output": list(output)} | extra


CALL = {"type": "function_call", "call_id": "call_new", "name": "get_weather", "arguments": '{"city": "Paris"}'}
ASKED = {
    "type": "submit_tool_outputs",
    "submit_tool_outputs": {
        "tool_calls": [
            {"id": "call_old", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ]
    },
}


def test_a_run_waiting_on_tools_matches_a_completed_response_with_the_same_calls():
    run = RUN | {"status": "requires_action", "required_action": ASKED}
    view = observe_response(200, json.dumps(_response("completed", CALL)), streamed=False)
    assert match_run(run, view, {}, MatchOptions()) == ([], [])
    renamed = observe_response(200, json.dumps(_response("completed", CALL | {"name": "weather"})), streamed=False)
    (diff,), _ = match_run(run, renamed, {}, MatchOptions())
    assert diff.message == "tool function renamed: recorded get_weather(), replayed weather()"


def test_statuses_map_and_expired_is_not_comparable():
    failed = observe_response(
        200, json.dumps(_response("failed", error={"code": "server_error", "message": "boom"})), streamed=False
    )
    (diff,), _ = match_run(RUN | {"status": "completed"}, failed, {}, MatchOptions())
    assert (diff.severity, diff.message) == (
        FAILURE,
        "status: the run was completed, the response is failed (boom) (a completed run maps to completed)",
    )
    queued = observe_response(200, json.dumps(_response("queued")), streamed=False)
    (early,), _ = match_run(RUN | {"status": "in_progress"}, queued, {}, MatchOptions())
    assert early.severity == WARNING
    assert match_run(RUN | {"status": "expired"}, queued, {}, MatchOptions()) == (
        [],
        ["run status expired: " + mapping.NO_STATUS["expired"]],
    )


def test_usage_adds_up_the_responses_of_a_run_prompt_to_input_and_completion_to_output():
    responses = {
        "resp_1": {"usage": {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}},
        "resp_2": {"usage": {"input_tokens": 130, "output_tokens": 30, "total_tokens": 160}},
        "resp_3": {"status": "cancelled"},
    }
    assert summed_usage(responses) == {"input_tokens": 230, "output_tokens": 40, "total_tokens": 270}
    run = RUN | {"status": "completed", "usage": {"prompt_tokens": 230, "completion_tokens": 40, "total_tokens": 270}}
    view = observe_response(
        200, json.dumps(_response("completed", {"type": "message", "role": "assistant"})), streamed=False
    )
    assert match_run(run, view, responses, MatchOptions()) == ([], [])
    tripled = {"r": {"usage": {"input_tokens": 690, "output_tokens": 120, "total_tokens": 810}}}
    diffs, _ = match_run(run, view, tripled, MatchOptions())
    assert [d.message for d in diffs] == [
        "prompt_tokens -> input_tokens: recorded 230, replayed 690 (3.00x, tolerance 10%)",
        "completion_tokens -> output_tokens: recorded 40, replayed 120 (3.00x, tolerance 10%)",
        "total_tokens: recorded 270, replayed 810 (3.00x, tolerance 10%)",
    ]


def test_an_assistant_message_is_expected_where_the_run_wrote_one():
    wrote = {"r1": {"status": "completed", "output": [{"type": "message", "role": "assistant"}]}}
    calls_only = {"r1": {"status": "completed", "output": [CALL]}}
    assert match_message("run_1", True, wrote) == []
    assert match_message("run_1", False, calls_only) == []
    (diff,) = match_message("run_1", True, calls_only)
    assert (
        diff.message
        == "run run_1 wrote an assistant message; the responses standing for it wrote none (they ended completed)"
    )


def test_a_cut_stream_still_shows_the_function_calls_it_got_to():
    events = [
        ("response.created", {"type": "response.created", "response": _response("in_progress")}),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "item": CALL | {"id": "fc_1", "arguments": ""}},
        ),
        (
            "response.function_call_arguments.delta",
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"city": '},
        ),
        (
            "response.function_call_arguments.delta",
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '"Paris"}'},
        ),
    ]
    view = observe_response(200, sse(*events), streamed=True)
    assert [(c.name, c.arguments) for c in view.function_calls()] == [("get_weather", {"city": "Paris"})]
    assert view.status == "in_progress" and view.statuses == ["in_progress"]


# --- costs --------------------------------------------------------------------------------


def test_the_cost_table_prices_both_sides_per_model():
    prices = {row["model"]: row for row in price_table(["gpt-4o"]).collect().to_dicts()}["gpt-4o"]
    runs = [
        {"model": "gpt-4o", "usage": {"prompt_tokens": 1000, "completion_tokens": 100}},
        {"model": "gpt-4o", "usage": None},  # a v1 or cancelled run: counted, no tokens
        {"model": "no-such-model", "usage": {"prompt_tokens": 5, "completion_tokens": 5}},
    ]
    responses = [
        {
            "model": "gpt-4o",
            "usage": {"input_tokens": 600, "output_tokens": 60, "input_tokens_details": {"cached_tokens": 200}},
        },
        {"model": "gpt-4o", "usage": {"input_tokens": 400, "output_tokens": 40}},
    ]
    gpt, unknown, total = migration_costs(runs, responses)
    old = 1000 * prices["input_usd_per_token"] + 100 * prices["output_usd_per_token"]
    new = (
        800 * prices["input_usd_per_token"]
        + 200 * prices["cached_input_usd_per_token"]
        + 100 * prices["output_usd_per_token"]
    )
    assert gpt | {"old_cost_usd": None, "new_cost_usd": None, "cost_change": None} == {
        "model": "gpt-4o",
        "runs": 2,
        "responses": 2,
        "old_input_tokens": 1000,
        "new_input_tokens": 1000,
        "old_output_tokens": 100,
        "new_output_tokens": 100,
        "new_cached_tokens": 200,
        "old_cost_usd": None,
        "new_cost_usd": None,
        "cost_change": None,
        "runs_without_usage": 1,
        "responses_without_usage": 0,
    }
    assert gpt["old_cost_usd"] == pytest.approx(old) and gpt["new_cost_usd"] == pytest.approx(new)
    assert gpt["cost_change"] == pytest.approx(new / old, abs=1e-4)
    assert (unknown["model"], unknown["old_cost_usd"], unknown["responses"], unknown["new_input_tokens"]) == (
        "no-such-model",
        None,
        0,
        None,
    )
    assert (total["model"], total["runs"], total["responses"], total["runs_without_usage"]) == ("all", 3, 2, 1)
    assert total["old_cost_usd"] == pytest.approx(old)  # the unknown model's null cost adds nothing
    assert migration_costs([], []) == []


# --- native Responses traffic ---------------------------------------------------------------


def _native(
    n: int,
    operation: str,
    method: str,
    path: str,
    body: dict | None = None,
    answer: dict | None = None,
    streamed: bool = False,
) -> RecordedExchange:
    response = json.dumps(answer or {})
    if streamed:
        response = sse(("response.created", {"type": "response.created", "response": answer}))
    return RecordedExchange(
        f"x{n}",
        operation,
        method,
        f"http://h/v1{path}",
        None,
        200,
        at(n),
        1.0,
        streamed,
        (),
        json.dumps(body) if body else None,
        response,
    )


def test_native_responses_traffic_is_grouped_by_conversation_and_response_chain():
    exchanges = [
        _native(1, "createResponse", "POST", "/responses", {"input": "a"}, {"id": "resp_a", "object": "response"}),
        _native(2, "getResponse", "GET", "/responses/resp_a", answer={"id": "resp_a", "object": "response"}),
        _native(
            3,
            "createResponse",
            "POST",
            "/responses",
            {"previous_response_id": "resp_a"},
            {"id": "resp_b", "object": "response"},
            streamed=True,
        ),
        _native(4, "listInputItems", "GET", "/responses/resp_b/input_items"),
        _native(5, "createConversation", "POST", "/conversations", {}, {"id": "conv_1", "object": "conversation"}),
        _native(
            6,
            "createResponse",
            "POST",
            "/responses",
            {"conversation": "conv_1"},
            {"id": "resp_c", "object": "response", "conversation": {"id": "conv_1"}},
        ),
        _native(7, "createResponse", "POST", "/responses", {"input": "z"}, {"id": "resp_d", "object": "response"}),
    ]
    threads = [RecordedThread(None, (ex,)) for ex in exchanges] + [RecordedThread("thread_1", ())]
    groups = native_sessions(threads)
    assert [(g.label, [ex.exchange_id for ex in g.exchanges]) for g in groups] == [
        ("resp_a", ["x1", "x2", "x3", "x4"]),
        ("conv_1", ["x5", "x6"]),
        ("resp_d", ["x7"]),
    ]
    assert groups[0].reason == (
        "native Responses API traffic (createResponse x2, getResponse, listInputItems): "
        "already on the Responses API: nothing to translate, not replayed"
    )


def test_a_thread_created_before_the_recording_is_said_once():
    t = "thread_4"
    session = _session(
        recorded("e1", "POST", f"/threads/{t}/messages", thread=t, body=json.dumps({"role": "user", "content": "Hi"})),
        recorded(
            "e2",
            "POST",
            f"/threads/{t}/runs",
            thread=t,
            body='{"assistant_id": "a"}',
            response=_run("queued"),
            started=1,
        ),
    )
    message, create = translate(session).actions
    assert (message.kind, message.not_comparable) == ("conversation", (UNKNOWN_START,))
    assert (create.kind, create.not_comparable) == ("response", ())
