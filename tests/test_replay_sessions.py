"""Loading recorded sessions from a real DuckDB store, and grouping exchanges into logical steps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from runtap.errors import RuntapError
from runtap.recordings.exchanges import RecordedExchange
from runtap.replay.sessions import build_sessions, load_sessions
from runtap.store.schema import all_ddl

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def ex(
    n: int,
    operation: str,
    method: str,
    path: str,
    status: int = 200,
    body: str | None = None,
    thread: str | None = "thread_a",
    response: str | None = None,
    retry: int | None = None,
) -> RecordedExchange:
    return RecordedExchange(
        exchange_id=f"x{n:03d}",
        operation=operation,
        method=method,
        url=f"https://api.test{path}",
        thread_id=thread,
        status_code=status,
        started_at=T0 + timedelta(seconds=n),
        duration_ms=10.0,
        streamed=False,
        request_headers=(("x-stainless-retry-count", str(retry)),) if retry is not None else (),
        request_body=body,
        response_body=response,
    )


def test_poll_loop_is_one_wait_step_and_retries_are_sent_once():
    exchanges = [
        ex(0, "createThread", "POST", "/v1/threads"),
        ex(1, "createRun", "POST", "/v1/threads/thread_a/runs", status=500, body='{"assistant_id":"asst_1"}'),
        ex(2, "createRun", "POST", "/v1/threads/thread_a/runs", body='{"assistant_id":"asst_1"}'),
        ex(3, "getRun", "GET", "/v1/threads/thread_a/runs/run_1"),
        ex(4, "getRun", "GET", "/v1/threads/thread_a/runs/run_1"),
        ex(5, "getRun", "GET", "/v1/threads/thread_a/runs/run_1"),
        ex(6, "listRunSteps", "GET", "/v1/threads/thread_a/runs/run_1/steps"),
        ex(7, "listRunSteps", "GET", "/v1/threads/thread_a/runs/run_1/steps"),
        ex(8, "getRun", "GET", "/v1/threads/thread_a/runs/run_1"),
    ]
    (session,) = build_sessions(exchanges)
    steps = session.steps
    assert [(s.kind, s.first.operation, len(s.exchanges)) for s in steps] == [
        ("request", "createThread", 1),
        ("request", "createRun", 1),
        ("wait", "getRun", 3),
        ("request", "listRunSteps", 1),
        ("wait", "getRun", 1),
    ]
    assert steps[1].first.status_code == 200  # the failed attempt the SDK retried is dropped
    assert steps[3].first.exchange_id == "x007"  # a repeated GET keeps its last answer
    assert steps[2].duration_ms == pytest.approx(2010.0)
    assert "wait, 3 polls" in steps[2].name


def test_a_failure_not_retried_is_kept():
    exchanges = [
        ex(0, "createRun", "POST", "/v1/threads/thread_a/runs", status=500, body="{}"),
        ex(1, "getRun", "GET", "/v1/threads/thread_a/runs/run_1"),
    ]
    (session,) = build_sessions(exchanges)
    assert [s.first.status_code for s in session.steps] == [500, 200]


RUN_BODY = '{"assistant_id":"asst_1"}'


def test_an_sdk_retry_is_sent_once_even_when_another_callers_poll_came_in_between():
    exchanges = [
        ex(0, "createThread", "POST", "/v1/threads"),
        ex(1, "createRun", "POST", "/v1/threads/thread_a/runs", status=429, body=RUN_BODY, retry=0),
        ex(2, "listRuns", "GET", "/v1/threads/thread_a/runs"),  # a dashboard, during the SDK's backoff
        ex(3, "createRun", "POST", "/v1/threads/thread_a/runs", body=RUN_BODY, retry=1),
    ]
    (session,) = build_sessions(exchanges)
    assert [(s.first.operation, s.first.status_code) for s in session.steps] == [
        ("createThread", 200),
        ("listRuns", 200),
        ("createRun", 200),
    ]


def test_a_failure_the_app_saw_is_replayed_though_the_request_came_again_after_other_writes():
    exchanges = [
        ex(0, "createThread", "POST", "/v1/threads"),
        ex(1, "createRun", "POST", "/v1/threads/thread_a/runs", status=409, body=RUN_BODY, retry=0),
        ex(2, "createRun", "POST", "/v1/threads/thread_a/runs", status=409, body=RUN_BODY, retry=1),
        ex(3, "createRun", "POST", "/v1/threads/thread_a/runs", status=409, body=RUN_BODY, retry=2),
        ex(40, "createMessage", "POST", "/v1/threads/thread_a/messages", body='{"content":"again"}'),
        ex(41, "createRun", "POST", "/v1/threads/thread_a/runs", body=RUN_BODY),
    ]
    (session,) = build_sessions(exchanges)
    assert [(s.first.exchange_id, s.first.status_code) for s in session.steps] == [
        ("x000", 200),
        ("x003", 409),  # the SDK's last attempt: the app saw it, so replay expects it
        ("x040", 200),
        ("x041", 200),
    ]


def test_target_keeps_path_and_query():
    e = ex(0, "listRunSteps", "GET", "/openai/threads/t/runs/r/steps?api-version=2024-05-01&include[]=x")
    assert e.target == "/openai/threads/t/runs/r/steps?api-version=2024-05-01&include[]=x"


def write_store(path: str, rows: list[dict]) -> None:
    """A real runtap store with the given exchanges rows."""
    con = duckdb.connect(path)
    for statement in all_ddl():
        con.execute(statement)
    for row in rows:
        cols = ", ".join(row)
        con.execute(f"INSERT INTO exchanges ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    con.close()


def row(
    n: int,
    thread: str | None,
    operation: str,
    method: str,
    path: str,
    capture: str = "cap1",
    response: str | None = None,
    start: datetime = T0,
) -> dict:
    return {
        "exchange_id": f"{thread}-{n}",
        "capture_id": capture,
        "operation": operation,
        "method": method,
        "url": f"http://127.0.0.1:9{path}",
        "path": path,
        "thread_id": thread,
        "status_code": 200,
        "request_started_at": start + timedelta(seconds=n),
        "duration_ms": 5.0,
        "streamed": False,
        "request_headers": json.dumps([["Authorization", "[REDACTED]"], ["OpenAI-Beta", "assistants=v2"]]),
        "response_body": response,
    }


@pytest.fixture
def store(tmp_path):
    db = str(tmp_path / "rec.duckdb")
    write_store(
        db,
        [
            row(0, None, "createThread", "POST", "/v1/threads", response='{"id": "thread_a", "object": "thread"}'),
            row(1, "thread_a", "createRun", "POST", "/v1/threads/thread_a/runs"),
            row(
                2,
                "thread_b",
                "createThreadAndRun",
                "POST",
                "/v1/threads/runs",
                capture="cap2",
                start=T0 + timedelta(days=1),
            ),
            row(3, None, "listRuns", "GET", "/v1/threads/x/runs"),  # no thread: not part of any session
        ],
    )
    return db


def test_load_sessions_groups_by_thread_in_order(store):
    sessions = load_sessions(store)
    assert [s.thread_id for s in sessions] == ["thread_a", "thread_b"]
    a = sessions[0]
    assert [s.first.operation for s in a.steps] == ["createThread", "createRun"]  # thread id from the response
    assert a.steps[0].first.request_headers == (("Authorization", "[REDACTED]"), ("OpenAI-Beta", "assistants=v2"))


def test_load_sessions_filters(store):
    assert [s.thread_id for s in load_sessions(store, threads=("thread_b",))] == ["thread_b"]
    assert [s.thread_id for s in load_sessions(store, capture="cap2")] == ["thread_b"]
    assert [s.thread_id for s in load_sessions(store, since=T0 + timedelta(hours=1))] == ["thread_b"]


def test_no_sessions_is_a_clear_error(store, tmp_path):
    with pytest.raises(RuntapError, match=r"no recorded sessions .* matching capture nope"):
        load_sessions(store, capture="nope")
    with pytest.raises(RuntapError, match="no recorded session for thread thread_zz"):
        load_sessions(store, threads=("thread_a", "thread_zz"))
    empty = str(tmp_path / "empty.duckdb")
    write_store(empty, [])
    with pytest.raises(RuntapError, match="no recorded sessions in"):
        load_sessions(empty)
