"""serve's pure parts: request keys and why they differ, id mapping, the recording's sessions."""

from __future__ import annotations

import pytest

from runtap.recordings.ids import IdMap, session_ids
from runtap.recordings.sessions import group_threads
from runtap.serve.matching import RequestKey, closeness, differences, explain, normalize_body, normalize_query
from runtap.serve.recording import Recording, build_recording
from tests.recorded import recorded as row


def key(operation="createRun", thread="thread_1", run=None, step=None, query=(), body=None) -> RequestKey:
    return RequestKey(operation, thread, run, step, tuple(query), {} if body is None else body)


def recording(exchanges) -> Recording:
    """What serve plays from these recorded exchanges (retried attempts left out, grouped by thread)."""
    return build_recording(group_threads(exchanges))


# --- normalizing and explaining --------------------------------------------------------------


def test_normalize_body_ignores_order_nulls_and_stream_false():
    a = normalize_body('{"assistant_id": "asst_1", "stream": false, "model": null}')
    b = normalize_body('{"assistant_id":"asst_1"}')
    assert a == b == {"assistant_id": "asst_1"}
    assert normalize_body('{"stream": true}') == {"stream": True}  # a stream is another answer
    assert normalize_body("") == {} and normalize_body(None) == {}
    assert normalize_body("not json") == "not json"


def test_normalize_query_sorts_and_keeps_repeated_keys():
    assert normalize_query("limit=1&after=run_2&include[]=a&include[]=b") == (
        ("after", "run_2"),
        ("include[]", "a"),
        ("include[]", "b"),
        ("limit", "1"),
    )
    assert normalize_query("") == ()


def test_differences_name_each_field_that_differs():
    recorded = key(body={"assistant_id": "asst_A", "metadata": {"k": "v"}, "tools": [1]})
    got = key(body={"assistant_id": "asst_B", "metadata": {"k": "v"}, "extra": 1})
    assert differences(recorded, got) == [
        'body.assistant_id: recorded "asst_A", got "asst_B"',
        "body.extra: not in recording, got 1",
        "body.tools: recorded [1], missing in request",
    ]
    assert differences(recorded, recorded) == []


def test_differences_cover_operation_ids_and_query():
    reasons = differences(key("listRuns", query=[("limit", "1")]), key("getRun", run="run_9", query=[("limit", "2")]))
    assert reasons == [
        "operation: recorded listRuns, got getRun",
        "run_id: recorded None, got run_9",
        "query: recorded limit=1, got limit=2",
    ]


def test_explain_keeps_the_line_short():
    recorded = key(body={f"k{i}": i for i in range(6)})
    got = key(body={f"k{i}": i + 1 for i in range(6)})
    line = explain(recorded, got)
    assert line.count("body.") == 3 and line.endswith("and 3 more")


def test_closeness_prefers_same_operation_then_same_ids():
    got = key("getRun", run="run_1")
    assert closeness(key("getRun", run="run_1"), got) < closeness(key("getRun", run="run_2"), got)
    assert closeness(key("getRun", run="run_2"), got) < closeness(key("listRuns"), got)


# --- ids ---------------------------------------------------------------------------------------


def test_session_ids_are_values_of_session_fields_not_account_ids():
    value = {"id": "run_abc12345", "thread_id": "thread_xyz", "assistant_id": "asst_1", "step_details": {}}
    assert session_ids(value) == {"run_abc12345", "thread_xyz"}
    nested = {"object": "list", "data": [{"id": "7f1c-uuid", "message_id": "m-2", "file_id": "file-1"}]}
    assert session_ids(nested) == {"7f1c-uuid", "m-2"}  # any id shape; files belong to the account


def test_id_map_hands_out_recorded_ids_first_then_fresh_ones():
    issued: set[str] = set()
    first, second = IdMap(issued=issued), IdMap(issued=issued)
    assert first.bind("run_abc12345") == "run_abc12345"
    fresh = second.bind("run_abc12345")
    assert fresh != "run_abc12345" and fresh.startswith("run_") and len(fresh) == len("run_abc12345")
    text = '{"id": "run_abc12345", "thread_id": "thread_9", "run_id": "run_abc12345"}'
    assert second.rewrite(text) == text.replace("run_abc12345", fresh)
    assert second.restore(f"/threads/thread_9/runs/{fresh}") == "/threads/thread_9/runs/run_abc12345"
    assert second.recorded(fresh) == "run_abc12345" and second.get("run_unknown") == "run_unknown"


# --- the recording ---------------------------------------------------------------------------


def test_sessions_group_exchanges_by_thread_in_order_and_collect_ids():
    rows = [
        row("e1", "POST", "/threads", thread="thread_A", body="{}", response='{"id": "thread_A"}'),
        row("e2", "POST", "/threads", thread="thread_B", body="{}", response='{"id": "thread_B"}', started=1),
        row(
            "e3",
            "POST",
            "/threads/thread_A/runs",
            thread="thread_A",
            body='{"assistant_id": "asst_1"}',
            response='{"id": "run_1", "thread_id": "thread_A", "assistant_id": "asst_1"}',
            started=2,
        ),
    ]
    played = recording(rows)
    a, b = played.sessions
    assert [e.exchange.exchange_id for e in a.exchanges] == ["e1", "e3"] and a.thread_id == "thread_A"
    assert [e.exchange.exchange_id for e in b.exchanges] == ["e2"]
    assert a.ids == {"thread_A", "run_1"}
    assert played.by_thread["thread_B"] is b and played.exchange_count == 3


def test_retried_failures_are_left_out_but_final_failures_kept():
    body = '{"assistant_id": "asst_1"}'
    rows = [
        row("e1", "POST", "/threads/thread_A/runs", thread="thread_A", body=body, status=500),
        row("e2", "POST", "/threads/thread_A/runs", thread="thread_A", body=body, status=200, started=1),
        row("e3", "POST", "/threads/thread_A/runs/run_1/cancel", thread="thread_A", status=500, started=2),
    ]
    (session,) = recording(rows).sessions
    assert [(e.exchange.exchange_id, e.exchange.status_code) for e in session.exchanges] == [("e2", 200), ("e3", 500)]


def test_stream_gaps_come_from_recorded_event_times():
    rows = [
        row(
            "e1",
            "POST",
            "/threads/thread_A/runs",
            thread="thread_A",
            streamed=True,
            started=10.0,
            body='{"stream": true}',
            response="event: a\ndata: {}\n\nevent: b\ndata: {}\n\n",
            events=(10.25, 10.75),
        )
    ]
    (session,) = recording(rows).sessions
    assert session.first.exchange.event_gaps == pytest.approx((0.25, 0.5))
    assert session.first.exchange.streamed


def test_replayed_headers_drop_connection_headers():
    headers = [
        ["Content-Type", "application/json"],
        ["Content-Length", "9"],
        ["Date", "x"],
        ["openai-poll-after-ms", "50"],
        ["x-request-id", "req_1"],
    ]
    (session,) = recording(
        [row("e1", "GET", "/threads/thread_A/runs/run_1", thread="thread_A", headers=headers)]
    ).sessions
    assert session.first.headers == (
        ("Content-Type", "application/json"),
        ("openai-poll-after-ms", "50"),
        ("x-request-id", "req_1"),
    )


def test_non_runs_routes_are_not_served():
    rows = [row("e1", "GET", "/assistants/asst_1", thread=None)]
    assert recording(rows).sessions == ()
