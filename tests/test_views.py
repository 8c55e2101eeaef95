"""The store's views follow their rules (store/schema.py, docs/ARCHITECTURE.md), checked on hand-made rows
in a real DuckDB file."""

from __future__ import annotations

import duckdb
import pytest

from runtap.store.latest import ORDER_KEY
from runtap.store.reader import open_store
from tests.store_fixtures import (
    at,
    function_call,
    make_store,
    required_action,
    run_snapshot,
    step_snapshot,
    tool_call_snapshot,
    tool_step_details,
    usage,
)


def query(path, sql: str) -> list[tuple]:
    with open_store(path) as con:
        return con.execute(sql).fetchall()


def store(tmp_path, **rows) -> str:
    return make_store(tmp_path / "views.duckdb", rows)


def transitions(path, run_id: str = "run_1") -> list[tuple]:
    return query(
        path, f"SELECT seq, from_status, to_status FROM run_transitions WHERE run_id = '{run_id}' ORDER BY seq"
    )


def test_contract_columns(tmp_path):
    path = store(tmp_path, run_snapshots=[run_snapshot()])
    contract = {
        "runs": [
            "run_id",
            "thread_id",
            "assistant_id",
            "model",
            "status",
            "created_at",
            "started_at",
            "completed_at",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
        ],
        "run_steps": ["step_id", "run_id", "type", "status", "prompt_tokens", "completion_tokens", "total_tokens"],
        "run_transitions": ["run_id", "seq", "from_status", "to_status", "observed_at"],
        "tool_calls": ["run_id", "step_id", "tool_call_id", "type", "function_name"],
    }
    for view, columns in contract.items():
        have = [r[0] for r in query(path, f"DESCRIBE {view}")]
        assert set(columns) <= set(have), (view, set(columns) - set(have))


def test_runs_take_the_latest_snapshot_not_the_first_or_the_last_inserted(tmp_path):
    path = store(
        tmp_path,
        run_snapshots=[
            run_snapshot(status="completed", observed_at=3, model="gpt-4o-mini"),
            run_snapshot(status="queued", observed_at=1),
            run_snapshot(status="in_progress", observed_at=2),
        ],
    )
    assert query(path, "SELECT status, model, snapshots FROM runs") == [("completed", "gpt-4o-mini", 3)]


def test_status_is_the_objects_own_not_the_event_name(tmp_path):
    path = store(
        tmp_path,
        run_snapshots=[
            run_snapshot(status="in_progress", observed_at=1, source="sse", event="thread.run.in_progress"),
            run_snapshot(
                status="incomplete",
                observed_at=2,
                source="sse",
                event="thread.run.completed",
                incomplete_reason="max_completion_tokens",
            ),
        ],
    )
    assert query(path, "SELECT status, incomplete_reason FROM runs") == [("incomplete", "max_completion_tokens")]
    assert transitions(path) == [(1, "in_progress", "incomplete")]


def test_stream_read_from_a_file_orders_tied_times_by_sse_position(tmp_path):
    # Every event of a stream read from a file has the same observed_at: seq decides.
    statuses = ["queued", "in_progress", "requires_action"]
    rows = [
        run_snapshot(status=s, observed_at=5, exchange_id="ex_stream", seq=i, source="sse")
        for i, s in enumerate(statuses)
    ]
    path = store(tmp_path, run_snapshots=rows[::-1])
    assert transitions(path) == [(1, "queued", "in_progress"), (2, "in_progress", "requires_action")]
    assert query(path, "SELECT status FROM runs") == [("requires_action",)]


def test_tied_times_order_by_exchange_start(tmp_path):
    path = store(
        tmp_path,
        run_snapshots=[
            # Same observed_at; "ex_b" started first although its id sorts later.
            run_snapshot(status="completed", observed_at=9, exchange_id="ex_a", request_started_at=8),
            run_snapshot(status="in_progress", observed_at=9, exchange_id="ex_b", request_started_at=7),
        ],
    )
    assert transitions(path) == [(1, "in_progress", "completed")]
    assert query(path, "SELECT status FROM runs") == [("completed",)]


def test_order_key_compares_observation_then_exchange_start_then_position_nulls_last():
    # Each group's rows in snapshot order: (observed_at, request_started_at, seq).
    ordered = {
        "observed": [("2026-01-01 00:00:01", "2026-01-01 00:00:09", 9), ("2026-01-01 00:00:02", None, None)],
        "started": [
            ("2026-01-01 00:00:05", "2026-01-01 00:00:01", 7),
            ("2026-01-01 00:00:05", "2026-01-01 00:00:02", 0),
        ],
        "seq": [("2026-01-01 00:00:05", "2026-01-01 00:00:01", 1), ("2026-01-01 00:00:05", "2026-01-01 00:00:01", 2)],
        "nulls": [
            ("2026-01-01 00:00:05", "2026-01-01 00:00:01", 2),
            ("2026-01-01 00:00:05", "2026-01-01 00:00:01", None),
            ("2026-01-01 00:00:05", None, 0),
            (None, "2026-01-01 00:00:01", 0),
        ],
    }
    con = duckdb.connect()
    con.execute("CREATE TABLE t (g VARCHAR, i INT, observed_at TIMESTAMPTZ, request_started_at TIMESTAMPTZ, seq INT)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [(g, i, *row) for g, group in ordered.items() for i, row in enumerate(group)],
    )
    got = con.execute(f"SELECT g, list(i ORDER BY {ORDER_KEY}) FROM t GROUP BY g").fetchall()
    assert dict(got) == {g: list(range(len(group))) for g, group in ordered.items()}


def test_transitions_keep_what_was_observed(tmp_path):
    path = store(
        tmp_path,
        run_snapshots=[
            run_snapshot(status="queued", observed_at=0),
            run_snapshot(status="queued", observed_at=1),  # a repeated poll adds nothing
            run_snapshot(status="requires_action", observed_at=2),  # skipped in_progress
            run_snapshot(status="requires_action", observed_at=3),
            run_snapshot(status="queued", observed_at=4),  # after tool outputs
            run_snapshot(status="completed", observed_at=5),  # skipped in_progress again
            run_snapshot("run_once", "completed", observed_at=1),  # one observation: no transition
        ],
    )
    assert transitions(path) == [
        (1, "queued", "requires_action"),
        (2, "requires_action", "queued"),
        (3, "queued", "completed"),
    ]
    assert transitions(path, "run_once") == []
    assert query(
        path,
        "SELECT epoch(observed_at) - epoch(TIMESTAMPTZ '2026-01-01 12:00:00+00') "
        "FROM run_transitions WHERE run_id = 'run_1' ORDER BY seq",
    ) == [(2.0,), (4.0,), (5.0,)]


def test_tokens_come_from_the_latest_snapshot_with_usage(tmp_path):
    path = store(
        tmp_path,
        run_snapshots=[
            run_snapshot(status="in_progress", observed_at=1, **usage(1, 1)),
            run_snapshot(status="completed", observed_at=2, **usage(100, 20)),
            # A later observation without usage (an old v1 list item) keeps the status, not tokens.
            run_snapshot(status="expired", observed_at=3, completed_at=None),
            run_snapshot("run_nousage", "completed", observed_at=1),
        ],
    )
    assert query(
        path, "SELECT run_id, status, prompt_tokens, completion_tokens, total_tokens FROM runs ORDER BY run_id"
    ) == [("run_1", "expired", 100, 20, 120), ("run_nousage", "completed", None, None, None)]


def test_runs_take_nulls_from_the_latest_snapshot_but_identity_falls_back(tmp_path):
    path = store(
        tmp_path,
        run_snapshots=[
            run_snapshot(
                status="requires_action",
                observed_at=1,
                completed_at=at(1),
                required_action=required_action(function_call("call_1")),
            ),
            run_snapshot(
                status="queued", observed_at=2, completed_at=None, required_action=None, model=None, thread_id=None
            ),
        ],
    )
    assert query(path, "SELECT status, completed_at IS NULL, required_action IS NULL, model, thread_id FROM runs") == [
        ("queued", True, True, "gpt-4o", "thread_1")
    ]


def test_run_steps_latest_snapshot_and_usage(tmp_path):
    path = store(
        tmp_path,
        step_snapshots=[
            step_snapshot("step_1", "completed", 3, type="tool_calls", **usage(30, 5)),
            step_snapshot("step_1", "in_progress", 1, type="tool_calls"),
            step_snapshot("step_2", "in_progress", 2),
            step_snapshot(
                "step_2", "failed", 2, seq=1, last_error_code="server_error", exchange_id=None, request_started_at=None
            ),
        ],
    )
    assert query(
        path,
        "SELECT step_id, run_id, type, status, prompt_tokens, completion_tokens, "
        "total_tokens, last_error_code FROM run_steps ORDER BY step_id",
    ) == [
        ("step_1", "run_1", "tool_calls", "completed", 30, 5, 35, None),
        ("step_2", "run_1", "message_creation", "failed", None, None, None, "server_error"),
    ]


def test_tool_calls_one_row_per_id_seen_anywhere(tmp_path):
    rows = {
        "run_snapshots": [
            run_snapshot(
                status="requires_action",
                observed_at=1,
                required_action=required_action(
                    function_call("call_a", "get_weather"), function_call("call_b", "get_time")
                ),
            ),
            run_snapshot(
                status="requires_action",
                observed_at=2,  # a repeated poll
                required_action=required_action(
                    function_call("call_a", "get_weather"), function_call("call_b", "get_time")
                ),
            ),
        ],
        "step_snapshots": [
            step_snapshot(
                "step_1",
                "in_progress",
                1,
                type="tool_calls",
                step_details=tool_step_details(function_call("call_a", "get_weather", '{"ci')),
            ),
            step_snapshot(
                "step_1",
                "completed",
                3,
                type="tool_calls",
                step_details=tool_step_details(function_call("call_a", "get_weather", '{"city": "Paris"}', "sunny")),
            ),
        ],
        # Seen only in a streamed step delta, recorded by the normalizer.
        "tool_call_snapshots": [tool_call_snapshot("call_c", 2, step_id="step_2", function_name="lookup")],
    }
    path = make_store(tmp_path / "tc.duckdb", rows)
    assert query(
        path,
        "SELECT tool_call_id, run_id, step_id, type, function_name, arguments, output "
        "FROM tool_calls ORDER BY tool_call_id",
    ) == [
        ("call_a", "run_1", "step_1", "function", "get_weather", '{"city": "Paris"}', "sunny"),
        ("call_b", "run_1", None, "function", "get_time", "{}", None),
        ("call_c", "run_1", "step_2", "function", "lookup", "{}", None),
    ]


@pytest.mark.parametrize("details", [None, '{"type": "message_creation", "message_creation": {"message_id": "m"}}'])
def test_steps_without_tool_calls_add_no_tool_calls(tmp_path, details):
    path = store(tmp_path, step_snapshots=[step_snapshot(step_details=details)])
    assert query(path, "SELECT count(*) FROM tool_calls") == [(0,)]
