"""serve's choice of answers: sessions for new threads, cursor rules for polls and writes, misses."""

from __future__ import annotations

import json
from dataclasses import replace

from runtap.recordings.sessions import group_threads
from runtap.serve.recording import build_recording
from runtap.serve.registry import Miss, Registry, Reply
from tests.recorded import at, recorded

ASST = '{"assistant_id": "asst_1"}'


def run_json(run_id: str, thread: str, status: str) -> str:
    return json.dumps(
        {"id": run_id, "object": "thread.run", "thread_id": thread, "status": status, "assistant_id": "asst_1"}
    )


def row(exchange_id, method, path, thread, *, body="", response="{}", started=0.0, status=200, headers=None):
    return recorded(
        exchange_id,
        method,
        path,
        thread=thread,
        body=body,
        response=response,
        started=started,
        status=status,
        request_headers=headers,
    )


def serve(exchanges) -> Registry:
    """A registry over these recorded exchanges, grouped as `load_recording` groups them."""
    return Registry(build_recording(group_threads(exchanges)))


def session_rows(name: str, statuses: list[str], start: float) -> list[tuple]:
    """createThread {}, createMessage, createRun, one getRun per status, listRunSteps."""
    thread, run = f"thread_{name}0000000", f"run_{name}0000000"
    base = f"/threads/{thread}"
    rows = [
        row(f"{name}1", "POST", "/threads", thread, body="{}", response=json.dumps({"id": thread, "object": "thread"})),
        row(
            f"{name}2",
            "POST",
            f"{base}/messages",
            thread,
            body=json.dumps({"role": "user", "content": f"hi {name}"}),
            response=json.dumps({"id": f"msg_{name}0000000", "thread_id": thread}),
        ),
        row(f"{name}3", "POST", f"{base}/runs", thread, body=ASST, response=run_json(run, thread, "queued")),
    ]
    rows += [
        row(f"{name}p{i}", "GET", f"{base}/runs/{run}", thread, response=run_json(run, thread, s))
        for i, s in enumerate(statuses)
    ]
    rows.append(
        row(f"{name}9", "GET", f"{base}/runs/{run}/steps", thread, response=json.dumps({"object": "list", "data": []}))
    )
    return [replace(r, started_at=at(start + i)) for i, r in enumerate(rows)]


def registry() -> Registry:
    rows = session_rows("A", ["queued", "in_progress", "completed"], 0) + session_rows("B", ["failed"], 100)
    return serve(rows)


def call(reg: Registry, method: str, path: str, body: str = "") -> dict:
    answer = reg.answer(method, f"/v1{path}", body)
    assert isinstance(answer, Reply), answer
    return json.loads(answer.ids.rewrite(answer.recorded.exchange.response_body))


def start_thread(reg: Registry, name: str) -> tuple[str, str]:
    """Create a thread, add session `name`'s message and start its run: (thread id, run id)."""
    thread = call(reg, "POST", "/threads", "{}")["id"]
    call(reg, "POST", f"/threads/{thread}/messages", json.dumps({"content": f"hi {name}", "role": "user"}))
    run = call(reg, "POST", f"/threads/{thread}/runs", '{"assistant_id": "asst_1", "stream": false}')
    return thread, run["id"]


def test_a_poll_loop_plays_recorded_statuses_then_repeats_the_last():
    reg = registry()
    thread, run = start_thread(reg, "A")
    statuses = [call(reg, "GET", f"/threads/{thread}/runs/{run}")["status"] for _ in range(5)]
    assert statuses == ["queued", "in_progress", "completed", "completed", "completed"]


def test_a_read_out_of_recorded_order_does_not_skip_the_poll_loop():
    reg = registry()
    thread, run = start_thread(reg, "A")
    assert call(reg, "GET", f"/threads/{thread}/runs/{run}/steps")["object"] == "list"
    statuses = [call(reg, "GET", f"/threads/{thread}/runs/{run}")["status"] for _ in range(3)]
    assert statuses == ["queued", "in_progress", "completed"]


def test_the_next_request_decides_between_sessions_with_the_same_create():
    reg = registry()
    # Session B's conversation first, though A was recorded first: the message decides.
    thread, run = start_thread(reg, "B")
    assert call(reg, "GET", f"/threads/{thread}/runs/{run}")["status"] == "failed"
    assert thread == "thread_A0000000"  # the id handed out at createThread stays the client's
    assert run == "run_B0000000"
    thread, run = start_thread(reg, "A")
    assert call(reg, "GET", f"/threads/{thread}/runs/{run}")["status"] == "queued"


def test_playing_a_session_again_hands_out_fresh_ids_consistently():
    reg = registry()
    first = start_thread(reg, "A")
    second = start_thread(reg, "A")
    assert first == ("thread_A0000000", "run_A0000000")
    assert second[0] not in first and second[1] not in first
    assert second[0].startswith("thread_") and second[1].startswith("run_")
    polled = call(reg, "GET", f"/threads/{second[0]}/runs/{second[1]}")
    assert polled["id"] == second[1] and polled["thread_id"] == second[0]
    assert polled["assistant_id"] == "asst_1"  # account-level ids are not mapped
    # The first client's thread keeps its own cursor.
    assert call(reg, "GET", f"/threads/{first[0]}/runs/{first[1]}")["status"] == "queued"


def test_a_skipped_write_does_not_block_later_ones():
    rows = session_rows("A", ["completed"], 0)
    reg = serve(rows)
    thread = call(reg, "POST", "/threads", "{}")["id"]
    # No createMessage this time: createRun is still answered.
    assert call(reg, "POST", f"/threads/{thread}/runs", ASST)["status"] == "queued"


def test_a_recorded_thread_id_can_be_used_directly_and_shows_its_final_state():
    reg = registry()
    path = "/threads/thread_A0000000/runs/run_A0000000"
    assert [call(reg, "GET", path)["status"] for _ in range(2)] == ["completed", "completed"]
    # A new thread playing the same session gets fresh ids: the adopted thread keeps its own.
    thread, run = start_thread(reg, "A")
    assert thread != "thread_A0000000" and call(reg, "GET", f"/threads/{thread}/runs/{run}")["status"] == "queued"


def test_unmatched_body_names_the_closest_recorded_request_and_why():
    reg = registry()
    thread = call(reg, "POST", "/threads", "{}")["id"]
    call(reg, "POST", f"/threads/{thread}/messages", json.dumps({"content": "hi A", "role": "user"}))
    miss = reg.answer("POST", f"/v1/threads/{thread}/runs", '{"assistant_id": "asst_other"}')
    assert isinstance(miss, Miss)
    assert "no recorded createRun matches POST" in miss.message
    assert f"/v1/threads/{thread}/runs" in miss.message
    assert 'body.assistant_id: recorded "asst_1", got "asst_other"' in miss.message


def test_unmatched_create_names_the_closest_recorded_create():
    miss = registry().answer("POST", "/v1/threads", '{"metadata": {"x": "1"}}')
    assert isinstance(miss, Miss)
    assert "closest recorded request is createThread /v1/threads" in miss.message
    assert 'body.metadata: not in recording, got {"x": "1"}' in miss.message


def test_unknown_threads_and_unrecorded_endpoints_are_misses():
    reg = registry()
    unknown = reg.answer("GET", "/v1/threads/thread_nope/runs/run_x", "")
    assert isinstance(unknown, Miss) and "thread_nope was neither created through this server" in unknown.message
    other = reg.answer("GET", "/v1/assistants/asst_1", "")
    assert isinstance(other, Miss) and "not an Assistants runs-API request" in other.message


def test_a_recorded_failed_create_is_answered_as_recorded():
    rows = [
        row(
            "f1",
            "POST",
            "/threads/runs",
            None,
            body=ASST,
            status=400,
            response=json.dumps({"error": {"message": "bad", "type": "invalid_request_error"}}),
        )
    ]
    answer = serve(rows).answer("POST", "/v1/threads/runs", ASST)
    assert isinstance(answer, Reply) and answer.recorded.exchange.status_code == 400


# --- failed attempts: the SDK's retries are left out, failures the app saw are played ---------

ERROR = json.dumps({"error": {"message": "boom", "type": "server_error"}})
THREAD = "thread_R0000000"


def attempt(exchange_id, path, started, *, status=200, body=ASST, response=None, retry=None):
    """A POST on THREAD, marked with the SDK's attempt counter when `retry` is given."""
    headers = {"x-stainless-retry-count": str(retry)} if retry is not None else None
    response = response or (ERROR if status >= 400 else run_json("run_R0000000", THREAD, "queued"))
    return row(
        exchange_id,
        "POST",
        f"/threads/{THREAD}{path}",
        THREAD,
        body=body,
        response=response,
        started=started,
        status=status,
        headers=headers,
    )


def created_thread() -> list:
    return [row("r0", "POST", "/threads", THREAD, body="{}", response=json.dumps({"id": THREAD, "object": "thread"}))]


def test_an_sdk_retry_is_played_as_its_answer_even_with_a_poll_in_between():
    reg = serve(
        created_thread()
        + [
            attempt("r1", "/runs", 1, status=500, retry=0),
            row("r2", "GET", f"/threads/{THREAD}/runs", THREAD, started=1.5, response='{"object": "list", "data": []}'),
            attempt("r3", "/runs", 2, retry=1),  # the SDK's retry, after its backoff
        ]
    )
    thread = call(reg, "POST", "/threads", "{}")["id"]
    # A client that does not retry gets what the recorded app got: the run.
    assert call(reg, "POST", f"/threads/{thread}/runs", ASST)["status"] == "queued"


def test_a_failure_the_app_saw_is_played_though_the_request_came_again_after_other_writes():
    message = json.dumps({"role": "user", "content": "try again"})
    reg = serve(
        created_thread()
        + [
            attempt("r1", "/runs", 1, status=409, retry=0),
            attempt("r2", "/runs", 2, status=409, retry=1),
            attempt("r3", "/runs", 3, status=409, retry=2),  # the SDK gave up: the app saw this one
            attempt(
                "r4", "/messages", 30, body=message, response=json.dumps({"id": "msg_R", "object": "thread.message"})
            ),
            attempt("r5", "/runs", 31),  # the same request, made again by the app much later
        ]
    )
    thread = call(reg, "POST", "/threads", "{}")["id"]
    failed = reg.answer("POST", f"/v1/threads/{thread}/runs", ASST)
    assert isinstance(failed, Reply) and failed.recorded.exchange.exchange_id == "r3"
    assert failed.recorded.exchange.status_code == 409
    call(reg, "POST", f"/threads/{thread}/messages", message)
    assert call(reg, "POST", f"/threads/{thread}/runs", ASST)["status"] == "queued"
