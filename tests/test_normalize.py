"""normalize: Exchange -> rows of the store's tables, checked against the reference stream,
plain JSON responses, odd and broken input, and a real DuckDB store built from store.schema."""

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from runtap.addon.decode import make_decoder
from runtap.addon.exchange import Exchange
from runtap.addon.normalize import TABLES, normalize
from runtap.addon.sse import SSEParser
from runtap.store.schema import all_ddl, column_names

REFERENCE = Path(__file__).parent / "fixtures" / "sse-stream-example.txt"
THREAD, RUN = "thread_lkZR1WHFgfhLlEozXSZ06X7I", "run_UPbDYMTdsNUU5FJ8XTAUjHZP"
TOOL_STEP, MSG_STEP = "step_NnGSPHN1pdvfoQXwWKjGkpyb", "step_WvbqREVkDB6LzBcAeoap31Az"
CALL = "call_ALpVvblVqYAZiTxdimwdwGEF"
BASE = "https://api.openai.com/v1/threads"


def _reference_responses() -> tuple[bytes, bytes]:
    """The two responses of the reference file, without the comment lines that label them."""
    text = REFERENCE.read_text()
    first, second = re.split(r"^: === Response 2.*\n", text, flags=re.M)
    strip = lambda part: re.sub(r"^:.*\n", "", part, flags=re.M).lstrip("\n").encode()  # noqa: E731
    return strip(first), strip(second)


def _exchange(
    url,
    body=b"",
    *,
    method="POST",
    status=200,
    content_type="application/json",
    request_body=b"",
    request_headers=(),
    response_headers=(),
    **kwargs,
):
    headers = [("Content-Type", content_type)] if content_type else []
    return Exchange(
        exchange_id=kwargs.pop("exchange_id", "ex1"),
        capture_id="cap1",
        method=method,
        url=url,
        request_headers=list(request_headers),
        request_body=request_body,
        status_code=status,
        response_headers=headers + list(response_headers),
        response_body=body,
        request_started_at=1000.0,
        response_started_at=1000.25,
        response_ended_at=1001.5,
        **kwargs,
    )


def _stream_exchange(body: bytes, url: str, **kwargs) -> Exchange:
    return _exchange(
        url,
        body,
        content_type="text/event-stream; charset=utf-8",
        request_body=b'{"stream":true}',
        streamed=True,
        **kwargs,
    )


def _run(**fields) -> dict:
    run = {
        "id": "run_a",
        "object": "thread.run",
        "created_at": 1718035200,
        "thread_id": "thread_a",
        "assistant_id": "asst_a",
        "status": "completed",
        "model": "gpt-4o",
        "started_at": 1718035201,
        "expires_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": 1718035206,
        "required_action": None,
        "last_error": None,
        "incomplete_details": None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    run.update(fields)
    return run


def _check_shape(rows):
    assert set(rows) == set(TABLES)
    for table, table_rows in rows.items():
        for row in table_rows:
            assert list(row) == column_names(table)
            for value in row.values():
                if isinstance(value, datetime):
                    assert value.tzinfo is not None


def test_reference_stream_one_requires_action():
    first, _ = _reference_responses()
    rows = normalize(_stream_exchange(first, f"{BASE}/{THREAD}/runs"))
    _check_shape(rows)
    (exchange,) = rows["exchanges"]
    assert exchange["operation"] == "createRun"
    assert (exchange["thread_id"], exchange["run_id"]) == (THREAD, RUN)  # run id learned from the stream
    assert exchange["error"] is None and exchange["streamed"] is True and exchange["sse_events"] == 10
    events = rows["sse_events"]
    assert [(e["seq"], e["event"], e["object_type"]) for e in events] == [
        (0, "thread.run.created", "thread.run"),
        (1, "thread.run.queued", "thread.run"),
        (2, "thread.run.in_progress", "thread.run"),
        (3, "thread.run.step.created", "thread.run.step"),
        (4, "thread.run.step.in_progress", "thread.run.step"),
        (5, "thread.run.step.delta", "thread.run.step.delta"),
        (6, "thread.run.step.delta", "thread.run.step.delta"),
        (7, "thread.run.step.delta", "thread.run.step.delta"),
        (8, "thread.run.requires_action", "thread.run"),
        (9, "done", None),
    ]
    assert [e["object_id"] for e in events[:3]] == [RUN] * 3 and events[3]["object_id"] == TOOL_STEP
    assert events[9]["data_bytes"] == len("[DONE]")
    ended = datetime.fromtimestamp(1001.5, UTC)  # a body without per-event times: response end
    assert {e["received_at"] for e in events} == {ended}
    runs = rows["run_snapshots"]
    assert [(r["seq"], r["event"], r["status"]) for r in runs] == [
        (0, "thread.run.created", "queued"),
        (1, "thread.run.queued", "queued"),
        (2, "thread.run.in_progress", "in_progress"),
        (8, "thread.run.requires_action", "requires_action"),
    ]
    assert all(r["source"] == "sse" and r["has_usage"] is False and r["total_tokens"] is None for r in runs)
    assert runs[0]["created_at"] == datetime.fromtimestamp(1718035200, UTC)
    assert runs[0]["started_at"] is None and runs[2]["started_at"] == datetime.fromtimestamp(1718035201, UTC)
    assert json.loads(runs[3]["required_action"])["type"] == "submit_tool_outputs"
    assert json.loads(runs[0]["raw"])["instructions"] == "You are a weather bot."
    steps = rows["step_snapshots"]
    assert [(s["seq"], s["status"], s["type"]) for s in steps] == [
        (3, "in_progress", "tool_calls"),
        (4, "in_progress", "tool_calls"),
    ]
    assert steps[0]["expired_at"] == datetime.fromtimestamp(1718035800, UTC)  # sent as expires_at
    calls = {(c["source"], c["step_id"]): c for c in rows["tool_call_snapshots"]}
    assert set(calls) == {("required_action", None), ("step", TOOL_STEP)}
    for call in calls.values():
        assert (call["tool_call_id"], call["type"], call["function_name"], call["arguments"]) == (
            CALL,
            "function",
            "get_current_weather",
            '{"location":"San Francisco, CA"}',
        )
    assert calls[("step", TOOL_STEP)]["seq"] == 7  # known from the deltas, last one at seq 7


def test_reference_stream_two_completes_with_usage():
    _, second = _reference_responses()
    rows = normalize(_stream_exchange(second, f"{BASE}/{THREAD}/runs/{RUN}/submit_tool_outputs"))
    _check_shape(rows)
    (exchange,) = rows["exchanges"]
    assert exchange["operation"] == "submitToolOutputsToRun" and exchange["error"] is None
    assert [e["event"] for e in rows["sse_events"]] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
        "done",
    ]
    runs = rows["run_snapshots"]
    assert [r["status"] for r in runs] == ["queued", "in_progress", "completed"]
    assert (runs[-1]["prompt_tokens"], runs[-1]["completion_tokens"], runs[-1]["total_tokens"]) == (340, 34, 374)
    assert runs[-1]["has_usage"] and runs[-1]["completed_at"] == datetime.fromtimestamp(1718035206, UTC)
    steps = {(s["step_id"], s["status"]): s for s in rows["step_snapshots"]}
    tool_step = steps[(TOOL_STEP, "completed")]
    assert (tool_step["total_tokens"], tool_step["seq"]) == (163, 0)
    assert steps[(MSG_STEP, "completed")]["total_tokens"] == 211
    assert json.loads(steps[(MSG_STEP, "in_progress")]["step_details"])["type"] == "message_creation"
    (call,) = rows["tool_call_snapshots"]
    assert (call["step_id"], call["tool_call_id"], call["arguments"], call["output"]) == (
        TOOL_STEP,
        CALL,
        '{"location":"San Francisco, CA"}',
        '{"temp_c":18,"conditions":"fog"}',
    )


def test_a_later_step_snapshot_carries_the_accumulated_deltas():
    first, _ = _reference_responses()
    in_progress = first.split(b"event: thread.run.step.in_progress\n")[1].split(b"\n\n")[0] + b"\n\n"
    # the same step reported again after its deltas, as some servers do
    body = first.replace(
        b"event: thread.run.requires_action",
        b"event: thread.run.step.in_progress\n" + in_progress + b"event: thread.run.requires_action",
    )
    rows = normalize(_stream_exchange(body, f"{BASE}/{THREAD}/runs"))
    before, after = rows["step_snapshots"][1], rows["step_snapshots"][2]
    assert json.loads(before["step_details"])["tool_calls"] == []
    (call,) = json.loads(after["step_details"])["tool_calls"]
    assert call["function"]["arguments"] == '{"location":"San Francisco, CA"}'
    assert json.loads(after["raw"])["step_details"]["tool_calls"] == []  # raw stays as received
    assert [c["seq"] for c in rows["tool_call_snapshots"] if c["source"] == "step"] == [8]


def test_live_chunks_give_real_arrival_times_and_the_same_rows():
    first, _ = _reference_responses()
    encoded = gzip.compress(first)
    decoder, parser, events, body = make_decoder("gzip"), SSEParser(), [], b""
    for i in range(len(encoded)):  # one byte at a time, one "second" apart
        data = decoder.feed(encoded[i : i + 1])
        body += data
        events += parser.feed(data, 2000.0 + i)
    body += decoder.flush()
    events += parser.close()
    live = normalize(_stream_exchange(body, f"{BASE}/{THREAD}/runs", sse_events=events))
    offline = normalize(_stream_exchange(body, f"{BASE}/{THREAD}/runs"))
    times = [e["received_at"] for e in live["sse_events"]]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert [r["observed_at"] for r in live["run_snapshots"]] == [times[r["seq"]] for r in live["run_snapshots"]]
    for table in TABLES:

        def strip(rows):
            return [{k: v for k, v in r.items() if k not in ("observed_at", "received_at")} for r in rows]

        assert strip(live[table]) == strip(offline[table])


def test_v1_run_without_usage_or_required_action():
    run = _run(file_ids=["file_1"], status="in_progress", completed_at=None)
    del run["usage"], run["required_action"], run["incomplete_details"]
    body = json.dumps(run, indent=2).encode()  # JSON responses are pretty-printed
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a", body, method="GET"))
    _check_shape(rows)
    (snap,) = rows["run_snapshots"]
    assert (snap["source"], snap["seq"], snap["event"], snap["status"]) == ("response", 0, None, "in_progress")
    assert snap["has_usage"] is False and snap["prompt_tokens"] is None
    assert snap["required_action"] is None and snap["incomplete_reason"] is None
    assert snap["observed_at"] == datetime.fromtimestamp(1001.5, UTC)
    assert json.loads(snap["raw"])["file_ids"] == ["file_1"]
    assert rows["exchanges"][0]["error"] is None and rows["tool_call_snapshots"] == []


def test_list_runs_page():
    runs = [
        _run(id="run_1"),
        _run(
            id="run_2",
            status="requires_action",
            usage=None,
            required_action={
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {
                    "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
                },
            },
        ),
        _run(
            id="run_3",
            status="incomplete",
            incomplete_details={"reason": "max_completion_tokens"},
            last_error={"code": "rate_limit_exceeded", "message": "slow down"},
        ),
    ]
    page = {"object": "list", "data": runs, "first_id": "run_1", "last_id": "run_3", "has_more": False}
    rows = normalize(_exchange(f"{BASE}/thread_a/runs?limit=3", json.dumps(page).encode(), method="GET"))
    _check_shape(rows)
    snaps = rows["run_snapshots"]
    assert [(s["seq"], s["source"], s["run_id"], s["status"]) for s in snaps] == [
        (0, "list", "run_1", "completed"),
        (1, "list", "run_2", "requires_action"),
        (2, "list", "run_3", "incomplete"),
    ]
    assert [s["has_usage"] for s in snaps] == [True, False, True]
    assert (snaps[2]["incomplete_reason"], snaps[2]["last_error_code"]) == (
        "max_completion_tokens",
        "rate_limit_exceeded",
    )
    (call,) = rows["tool_call_snapshots"]
    assert (call["run_id"], call["seq"], call["source"], call["function_name"]) == ("run_2", 1, "required_action", "f")
    assert rows["exchanges"][0]["run_id"] is None  # a list teaches no single run id


def test_run_steps_endpoints_accept_expired_at_and_expires_at():
    step = {
        "id": "step_1",
        "object": "thread.run.step",
        "run_id": "run_a",
        "thread_id": "thread_a",
        "type": "tool_calls",
        "status": "completed",
        "created_at": 1,
        "expired_at": 50,
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": "ci_1",
                    "type": "code_interpreter",
                    "code_interpreter": {"input": "1+1", "outputs": [{"type": "logs", "logs": "2"}]},
                }
            ],
        },
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a/steps/step_1", json.dumps(step).encode(), method="GET"))
    (snap,) = rows["step_snapshots"]
    assert snap["expired_at"] == datetime.fromtimestamp(50, UTC) and snap["total_tokens"] == 3
    assert rows["exchanges"][0]["step_id"] == "step_1"
    (call,) = rows["tool_call_snapshots"]
    assert (call["type"], call["arguments"], json.loads(call["output"])) == (
        "code_interpreter",
        "1+1",
        [{"type": "logs", "logs": "2"}],
    )
    other = dict(step, id="step_2", expires_at=60)
    del other["expired_at"], other["usage"]
    page = json.dumps({"object": "list", "data": [step, other]}).encode()
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a/steps", page, method="GET"))
    assert [(s["seq"], s["expired_at"].timestamp(), s["has_usage"]) for s in rows["step_snapshots"]] == [
        (0, 50, True),
        (1, 60, False),
    ]


def test_status_comes_from_the_object_not_the_event_name():
    data = json.dumps(_run(status="incomplete", incomplete_details={"reason": "max_prompt_tokens"}))
    body = f"event: thread.run.completed\ndata: {data}\n\nevent: done\ndata: [DONE]\n\n".encode()
    (snap,) = normalize(_stream_exchange(body, f"{BASE}/thread_a/runs"))["run_snapshots"]
    assert (snap["event"], snap["status"], snap["incomplete_reason"]) == (
        "thread.run.completed",
        "incomplete",
        "max_prompt_tokens",
    )


def test_create_thread_and_run_stream_learns_the_thread():
    thread = json.dumps({"id": "thread_new", "object": "thread", "created_at": 1, "metadata": {}})
    run = json.dumps(_run(id="run_new", thread_id="thread_new", status="queued"))
    body = (
        f"event: thread.created\ndata: {thread}\n\nevent: thread.run.created\ndata: {run}\n\n"
        "event: done\ndata: [DONE]\n\n"
    ).encode()
    rows = normalize(_stream_exchange(body, "https://api.openai.com/v1/threads/runs"))
    exchange = rows["exchanges"][0]
    assert (exchange["operation"], exchange["thread_id"], exchange["run_id"]) == (
        "createThreadAndRun",
        "thread_new",
        "run_new",
    )
    assert rows["sse_events"][0]["object_type"] == "thread" and len(rows["run_snapshots"]) == 1


def test_context_operations_give_an_exchange_row_only():
    rows = normalize(_exchange(f"{BASE}", b'{"id": "thread_c", "object": "thread"}'))
    assert (rows["exchanges"][0]["operation"], rows["exchanges"][0]["thread_id"]) == ("createThread", "thread_c")
    rows = normalize(_exchange(f"{BASE}/thread_c/messages", b'{"id": "msg_1", "object": "thread.message"}'))
    assert rows["exchanges"][0]["operation"] == "createMessage"
    for result in (rows,):
        assert all(result[t] == [] for t in TABLES if t != "exchanges")


def test_headers_are_redacted_and_read_in_any_casing():
    request_headers = [
        ("Authorization", "Bearer sk-live-secret"),
        ("OpenAI-Organization", "org-secret"),
        ("X-Stainless-Poll-Helper", "true"),
        ("X-Tenant-Key", "tenant-secret"),
    ]
    response_headers = [("X-Request-ID", "req_abc"), ("Openai-Processing-Ms", "187"), ("set-cookie", "s=secret")]
    ex = _exchange(
        f"{BASE}/thread_a/runs/run_a",
        json.dumps(_run()).encode(),
        method="GET",
        request_headers=request_headers,
        response_headers=response_headers,
    )
    (row,) = normalize(ex, redact_extra=["x-tenant-key"])["exchanges"]
    text = json.dumps(row, default=str)
    assert "secret" not in text
    assert ["Authorization", "[REDACTED]"] in json.loads(row["request_headers"])
    assert (row["x_request_id"], row["openai_processing_ms"], row["is_poll"]) == ("req_abc", 187.0, True)
    assert (row["duration_ms"], row["ttfb_ms"]) == (1500.0, 250.0)


def test_request_model_and_invalid_utf8_bodies():
    ex = _exchange(
        f"{BASE}/thread_a/runs",
        b"\xff not json \xfe",
        status=200,
        request_body=b'{"assistant_id": "asst_a", "model": "gpt-4o-mini"}',
    )
    (row,) = normalize(ex)["exchanges"]
    assert row["request_model"] == "gpt-4o-mini"
    assert row["response_body"] == "\ufffd not json \ufffd"
    assert row["error"].startswith("response body is not JSON")


def test_non_json_and_error_responses():
    html = b"<html>bad gateway</html>"
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a", html, method="GET", status=502, content_type="text/html"))
    assert rows["exchanges"][0]["error"] is None and rows["run_snapshots"] == []
    assert rows["exchanges"][0]["response_body"] == html.decode()
    error = b'{"error": {"message": "No thread found", "type": "invalid_request_error", "code": null}}'
    rows = normalize(_exchange(f"{BASE}/thread_x/runs", error, status=404))
    assert rows["exchanges"][0]["status_code"] == 404 and rows["run_snapshots"] == []
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a", b'{"object": "list", "data": []}', method="GET"))
    assert "not a thread.run object" in rows["exchanges"][0]["error"] and rows["run_snapshots"] == []
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a", b'{"id": "run_a", "usage": NaN}', method="GET"))
    assert "not JSON" in rows["exchanges"][0]["error"]


def test_truncated_stream_keeps_what_arrived_and_says_so():
    first, _ = _reference_responses()
    cut = first[: first.index(b"event: thread.run.step.created") + 60]
    ex = _stream_exchange(cut, f"{BASE}/{THREAD}/runs", error="client disconnected")
    rows = normalize(ex)
    error = rows["exchanges"][0]["error"]
    assert error.startswith("client disconnected; ")
    assert "stream truncated" in error and "event 3 (thread.run.step.created): data is not JSON" in error
    assert [r["status"] for r in rows["run_snapshots"]] == ["queued", "queued", "in_progress"]
    assert len(rows["sse_events"]) == 4 and rows["step_snapshots"] == []


def test_no_response_and_foreign_routes():
    ex = _exchange(f"{BASE}/thread_a/runs", status=None, error="upstream connect failed")
    ex.response_headers, ex.response_ended_at = [], None
    (row,) = normalize(ex)["exchanges"]
    assert (row["status_code"], row["error"], row["duration_ms"]) == (None, "upstream connect failed", None)
    rows = normalize(_exchange("https://api.openai.com/v1/assistants", b'{"id": "asst_1"}'))
    assert rows["exchanges"][0]["operation"] is None and rows["exchanges"][0]["path"] == "/v1/assistants"
    assert all(rows[t] == [] for t in TABLES if t != "exchanges")


def test_unexpected_shapes_are_reported_not_raised():
    run = _run(
        created_at="yesterday",
        usage={"prompt_tokens": "many", "total_tokens": 2**70},
        required_action={"submit_tool_outputs": {"tool_calls": ["x"]}},
        status=7,
    )
    rows = normalize(_exchange(f"{BASE}/thread_a/runs/run_a", json.dumps(run).encode(), method="GET"))
    _check_shape(rows)
    (snap,) = rows["run_snapshots"]
    assert (snap["created_at"], snap["prompt_tokens"], snap["total_tokens"], snap["status"]) == (None, None, None, "7")
    error = rows["exchanges"][0]["error"]
    assert "unusable created_at" in error and "unusable usage.prompt_tokens" in error
    assert "tool call is not an object" in error


@pytest.fixture
def store(tmp_path):
    con = duckdb.connect(str(tmp_path / "runtap.duckdb"))
    for statement in all_ddl():
        con.execute(statement)
    yield con
    con.close()


def _insert(con, rows):
    for table, table_rows in rows.items():
        if table_rows:
            cols = column_names(table)
            con.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [[row[c] for c in cols] for row in table_rows],
            )


def test_rows_load_into_a_real_store_and_the_views_agree(store):
    first, second = _reference_responses()
    one = _stream_exchange(first, f"{BASE}/{THREAD}/runs", exchange_id="ex1")
    two = _stream_exchange(second, f"{BASE}/{THREAD}/runs/{RUN}/submit_tool_outputs", exchange_id="ex2")
    two.request_started_at, two.response_started_at, two.response_ended_at = 1002.0, 1002.1, 1003.0
    for ex in (one, two):
        _insert(store, normalize(ex))
    assert store.execute("SELECT status, model, total_tokens FROM runs").fetchall() == [("completed", "gpt-4o", 374)]
    transitions = store.execute("SELECT from_status, to_status FROM run_transitions ORDER BY seq").fetchall()
    assert transitions == [
        ("queued", "in_progress"),
        ("in_progress", "requires_action"),
        ("requires_action", "queued"),
        ("queued", "in_progress"),
        ("in_progress", "completed"),
    ]
    assert store.execute(
        "SELECT run_id, step_id, tool_call_id, type, function_name, arguments FROM tool_calls"
    ).fetchall() == [(RUN, TOOL_STEP, CALL, "function", "get_current_weather", '{"location":"San Francisco, CA"}')]
    assert store.execute("SELECT step_id, status, total_tokens FROM run_steps ORDER BY step_id").fetchall() == [
        (TOOL_STEP, "completed", 163),
        (MSG_STEP, "completed", 211),
    ]
    assert store.execute("SELECT count(*) FROM sse_events").fetchone() == (24,)
