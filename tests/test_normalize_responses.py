"""normalize on Responses and Conversations exchanges: JSON bodies, polls, streams (function-call
argument deltas accumulated, cut streams, events named by their data's type), request items,
conversation items, odd input; and the rows load into a real store built from store.schema."""

from __future__ import annotations

import json

import duckdb
import pytest

from runtap.addon.exchange import Exchange
from runtap.addon.normalize import TABLES, normalize
from runtap.addon.sse import SSEEvent
from runtap.store.schema import all_ddl, column_names

BASE = "https://api.openai.com/v1"
RESP, CONV, CALL, FC = "resp_1", "conv_1", "call_1", "fc_1"
USAGE = {
    "input_tokens": 88,
    "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 0},
    "output_tokens": 35,
    "output_tokens_details": {"reasoning_tokens": 12},
    "total_tokens": 123,
}


def _response(status="completed", *, output=(), usage=USAGE, **fields) -> dict:
    obj = {
        "id": RESP,
        "object": "response",
        "created_at": 1796128783,
        "status": status,
        "background": False,
        "completed_at": 1796128784 if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4o",
        "output": list(output),
        "previous_response_id": None,
        "conversation": None,
        "tools": [],
        **fields,
    }
    if usage is not None:
        obj["usage"] = usage
    return obj


def _call(status="completed", arguments='{"city": "Paris"}') -> dict:
    return {
        "id": FC,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": CALL,
        "name": "get_weather",
    }


def _exchange(url, body, *, method="POST", status=200, request=None, content_type="application/json", **kwargs):
    text = body if isinstance(body, str) else json.dumps(body)
    return Exchange(
        exchange_id=kwargs.pop("exchange_id", "ex1"),
        capture_id="cap1",
        method=method,
        url=url,
        request_headers=[("Authorization", "Bearer sk-secret")],
        request_body=json.dumps(request).encode() if request is not None else b"",
        status_code=status,
        response_headers=[("Content-Type", content_type)],
        response_body=text.encode(),
        request_started_at=1000.0,
        response_started_at=1000.25,
        response_ended_at=1001.5,
        **kwargs,
    )


def _sse(events: list[dict], *, named=True) -> str:
    lines = []
    for event in events:
        lines += ([f"event: {event['type']}"] if named else []) + [f"data: {json.dumps(event)}", ""]
    return "\n".join(lines) + "\n"


def _stream_events(*, cut_after: int | None = None) -> list[dict]:
    added = _call("in_progress", "")
    events = [
        {"type": "response.created", "response": _response("in_progress", usage=None)},
        {"type": "response.in_progress", "response": _response("in_progress", usage=None)},
        {"type": "response.output_item.added", "output_index": 0, "item": added},
        {"type": "response.function_call_arguments.delta", "item_id": FC, "output_index": 0, "delta": '{"city": '},
        {"type": "response.function_call_arguments.delta", "item_id": FC, "output_index": 0, "delta": '"Paris"}'},
        {
            "type": "response.function_call_arguments.done",
            "item_id": FC,
            "output_index": 0,
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "response.output_item.done", "output_index": 0, "item": _call()},
        {"type": "response.completed", "response": _response(output=[_call()])},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events[:cut_after] if cut_after is not None else events


def _stream(events, **kwargs) -> Exchange:
    return _exchange(
        f"{BASE}/responses",
        _sse(events, named=kwargs.pop("named", True)),
        content_type="text/event-stream; charset=utf-8",
        request={"model": "gpt-4o", "input": "Weather in Paris?", "stream": True},
        streamed=True,
        **kwargs,
    )


def test_created_background_response_and_the_request_items_it_answers():
    request = {
        "model": "gpt-4o",
        "background": True,
        "previous_response_id": "resp_0",
        "input": [{"type": "function_call_output", "call_id": CALL, "output": "21C"}],
    }
    body = _response("queued", usage=None, background=True, previous_response_id="resp_0", completed_at=None)
    rows = normalize(_exchange(f"{BASE}/responses", body, request=request))
    (ex,) = rows["exchanges"]
    assert (ex["operation"], ex["response_id"], ex["conversation_id"], ex["error"]) == (
        "createResponse",
        RESP,
        None,
        None,
    )
    assert ex["thread_id"] is None and ex["streamed"] is False and "sk-secret" not in ex["request_headers"]
    (snap,) = rows["response_snapshots"]
    assert snap["status"] == "queued" and snap["background"] is True and snap["has_usage"] is False
    assert (snap["previous_response_id"], snap["model"], snap["source"], snap["seq"]) == (
        "resp_0",
        "gpt-4o",
        "response",
        0,
    )
    assert snap["input_tokens"] is None and snap["output_items"] == 0 and json.loads(snap["raw"]) == body
    (item,) = rows["response_items"]
    assert (item["source"], item["type"], item["call_id"], item["output"], item["response_id"]) == (
        "request",
        "function_call_output",
        CALL,
        "21C",
        RESP,
    )
    assert item["observed_at"] == ex["request_started_at"]


def test_a_completed_poll_gives_usage_with_details_and_its_function_calls():
    rows = normalize(_exchange(f"{BASE}/responses/{RESP}?include[]=x", _response(output=[_call()]), method="GET"))
    (ex,) = rows["exchanges"]
    assert (ex["operation"], ex["response_id"], ex["path"]) == ("getResponse", RESP, f"/v1/responses/{RESP}")
    (snap,) = rows["response_snapshots"]
    tokens = [snap[k] for k in ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")]
    assert snap["has_usage"] is True and tokens == [88, 35, 123, 40, 12]
    assert snap["completed_at"] is not None and snap["output_items"] == 1
    (item,) = rows["response_items"]
    assert (item["type"], item["call_id"], item["name"], item["arguments"], item["item_index"]) == (
        "function_call",
        CALL,
        "get_weather",
        '{"city": "Paris"}',
        0,
    )


def test_streamed_function_call():
    rows = normalize(_stream(_stream_events()))
    (ex,) = rows["exchanges"]
    assert (ex["streamed"], ex["sse_events"], ex["response_id"], ex["error"]) == (True, 8, RESP, None)
    events = rows["sse_events"]
    assert [e["event"] for e in events][:3] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]
    assert [e["sequence_number"] for e in events] == list(range(8))
    assert events[0]["object_id"] == RESP and events[0]["object_type"] == "response"
    assert (events[2]["object_id"], events[2]["object_type"]) == (FC, "function_call")
    assert events[3]["object_id"] == FC
    snaps = rows["response_snapshots"]
    assert [(s["event"], s["status"], s["has_usage"], s["seq"]) for s in snaps] == [
        ("response.created", "in_progress", False, 0),
        ("response.in_progress", "in_progress", False, 1),
        ("response.completed", "completed", True, 7),
    ]
    assert json.loads(snaps[-1]["raw"])["id"] == RESP  # the response object, not the event around it
    items = [(i["event"], i["status"], i["arguments"], i["response_id"]) for i in rows["response_items"]]
    assert items == [
        ("response.output_item.added", "in_progress", "", RESP),
        ("response.function_call_arguments.done", "in_progress", '{"city": "Paris"}', RESP),
        ("response.output_item.done", "completed", '{"city": "Paris"}', RESP),
        ("response.completed", "completed", '{"city": "Paris"}', RESP),
    ]


def test_a_cut_stream_keeps_the_accumulated_arguments_and_says_so():
    rows = normalize(_stream(_stream_events(cut_after=5)))
    assert "stream truncated" in rows["exchanges"][0]["error"]
    last = rows["response_items"][-1]
    assert (last["call_id"], last["name"], last["arguments"], last["seq"]) == (
        CALL,
        "get_weather",
        '{"city": "Paris"}',
        4,
    )


def test_events_are_named_by_their_data_type_whatever_the_event_line_says():
    rows = normalize(_stream(_stream_events(), named=False))
    assert [e["event"] for e in rows["sse_events"]][-1] == "response.completed"
    assert rows["exchanges"][0]["error"] is None
    assert [s["status"] for s in rows["response_snapshots"]] == ["in_progress", "in_progress", "completed"]


def test_live_arrival_times_date_each_snapshot():
    events = _stream_events()
    exchange = _stream(events)
    exchange.sse_events = [SSEEvent(n, e["type"], json.dumps(e), 1000.3 + n / 10) for n, e in enumerate(events)]
    rows = normalize(exchange)
    times = [s["observed_at"].timestamp() for s in rows["response_snapshots"]]
    assert times == pytest.approx([1000.3, 1000.4, 1001.0])


def test_a_background_response_streamed_again_from_a_sequence_number():
    events = _stream_events()[3:]  # joined after output_item.added
    exchange = _exchange(
        f"{BASE}/responses/{RESP}?stream=true&starting_after=2",
        _sse(events),
        method="GET",
        content_type="text/event-stream",
        streamed=True,
    )
    rows = normalize(exchange)
    assert rows["exchanges"][0]["response_id"] == RESP
    first = rows["response_items"][0]
    assert (first["response_id"], first["item_id"], first["arguments"]) == (RESP, FC, '{"city": "Paris"}')


def test_stream_error_event_and_failed_response():
    failed = _response("failed", usage=None, error={"code": "server_error", "message": "boom"})
    events = [
        {"type": "response.created", "sequence_number": 0, "response": _response("in_progress", usage=None)},
        {"type": "response.failed", "sequence_number": 1, "response": failed},
    ]
    rows = normalize(_stream(events))
    assert rows["exchanges"][0]["error"] is None
    snap = rows["response_snapshots"][-1]
    assert (snap["status"], snap["error_code"], snap["error_message"]) == ("failed", "server_error", "boom")
    error = [
        {"type": "error", "sequence_number": 0, "code": "rate_limit_exceeded", "message": "slow down", "param": None}
    ]
    rows = normalize(_stream(error))
    assert "stream error event: slow down" in rows["exchanges"][0]["error"]
    assert "truncated" not in rows["exchanges"][0]["error"]


def test_cancel_and_delete():
    cancelled = _response("cancelled", usage=None, background=True)
    rows = normalize(_exchange(f"{BASE}/responses/{RESP}/cancel", cancelled))
    assert rows["exchanges"][0]["operation"] == "cancelResponse"
    assert rows["response_snapshots"][0]["status"] == "cancelled"
    rows = normalize(
        _exchange(f"{BASE}/responses/{RESP}", {"id": RESP, "object": "response", "deleted": True}, method="DELETE")
    )
    assert rows["exchanges"][0]["operation"] == "deleteResponse" and rows["exchanges"][0]["response_id"] == RESP
    assert rows["response_snapshots"] == [] and rows["exchanges"][0]["error"] is None


def test_conversations_and_their_items():
    items = [{"type": "message", "role": "user", "content": "hi"}]
    conversation = {"id": CONV, "object": "conversation", "created_at": 1796128783, "metadata": {}}
    rows = normalize(_exchange(f"{BASE}/conversations", conversation, request={"items": items}))
    assert rows["exchanges"][0]["conversation_id"] == CONV
    (item,) = rows["response_items"]
    assert (item["source"], item["type"], item["role"], item["conversation_id"]) == ("request", "message", "user", CONV)
    listed = {
        "object": "list",
        "data": [
            {"id": "msg_1", "type": "message", "status": "completed", "role": "user", "content": []},
            {"id": "fco_1", "type": "function_call_output", "status": "completed", "call_id": CALL, "output": "-3C"},
        ],
        "first_id": "msg_1",
        "last_id": "fco_1",
        "has_more": False,
    }
    rows = normalize(_exchange(f"{BASE}/conversations/{CONV}/items?limit=2", listed, method="GET"))
    assert rows["exchanges"][0]["operation"] == "listConversationItems"
    assert [(i["item_id"], i["item_index"], i["conversation_id"], i["source"]) for i in rows["response_items"]] == [
        ("msg_1", 0, CONV, "list"),
        ("fco_1", 1, CONV, "list"),
    ]
    rows = normalize(_exchange(f"{BASE}/conversations/{CONV}/items/fco_1", listed["data"][1], method="GET"))
    assert [(i["item_id"], i["source"], i["output"]) for i in rows["response_items"]] == [("fco_1", "item", "-3C")]
    rows = normalize(_exchange(f"{BASE}/conversations/{CONV}/items/fco_1", conversation, method="DELETE"))
    assert rows["exchanges"][0]["operation"] == "deleteConversationItem" and rows["response_items"] == []
    rows = normalize(_exchange(f"{BASE}/responses/{RESP}/input_items", listed, method="GET"))
    assert {(i["response_id"], i["source"]) for i in rows["response_items"]} == {(RESP, "input_items")}


def test_a_response_in_a_conversation_names_it():
    body = _response(conversation={"id": CONV})
    rows = normalize(
        _exchange(f"{BASE}/responses", body, request={"model": "gpt-4o", "conversation": CONV, "input": "x"})
    )
    assert rows["exchanges"][0]["conversation_id"] == CONV
    assert rows["response_snapshots"][0]["conversation_id"] == CONV


def test_errors_and_routes_that_are_not_recorded():
    error = {"error": {"message": "No tool output found", "type": "invalid_request_error", "param": None, "code": None}}
    rows = normalize(_exchange(f"{BASE}/responses", error, status=400, request={"model": "gpt-4o", "input": []}))
    assert rows["exchanges"][0]["operation"] == "createResponse"
    assert rows["response_snapshots"] == [] and rows["response_items"] == []
    rows = normalize(_exchange(f"{BASE}/responses/compact", {"id": "x"}))
    assert rows["exchanges"][0]["operation"] is None and rows["response_snapshots"] == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "response body is not JSON"),
        ("", "empty response body"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"object": "thread.run", "id": "run_1"}), "not a response object"),
        (json.dumps(_response(usage="lots")), "usage is not an object"),
        (json.dumps(_response(created_at="yesterday")), "unusable created_at"),
        (json.dumps(_response(usage={**USAGE, "input_tokens": "many"})), "unusable usage.input_tokens"),
        (json.dumps({**_response(), "output": "none"}), "response output is not a list"),
        (json.dumps(_response(output=[1])), "response output[0] is not an object"),
    ],
)
def test_odd_shapes_are_noted_not_raised(body, problem):
    rows = normalize(_exchange(f"{BASE}/responses/{RESP}", body, method="GET"))
    assert problem in rows["exchanges"][0]["error"]


def test_every_row_has_exactly_its_table_columns():
    for exchange in (
        _stream(_stream_events()),
        _exchange(f"{BASE}/responses/{RESP}", _response(output=[_call()]), method="GET"),
    ):
        rows = normalize(exchange)
        assert set(rows) == set(TABLES)
        for table, table_rows in rows.items():
            for row in table_rows:
                assert set(row) == set(column_names(table)), table


def test_rows_load_into_a_real_store():
    con = duckdb.connect(":memory:")
    for statement in all_ddl():
        con.execute(statement)
    for n, exchange in enumerate(
        (_stream(_stream_events()), _exchange(f"{BASE}/responses/{RESP}", _response(), method="GET"))
    ):
        exchange.exchange_id = f"ex{n}"
        for table, table_rows in normalize(exchange).items():
            cols = column_names(table)
            if table_rows:
                con.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [[row[c] for c in cols] for row in table_rows],
                )
    assert con.execute("SELECT count(*), count(DISTINCT response_id) FROM response_snapshots").fetchone() == (4, 1)
    assert con.execute("SELECT count(*) FROM response_items WHERE type = 'function_call'").fetchone() == (4,)
