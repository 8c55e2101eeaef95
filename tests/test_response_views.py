"""The Responses views on hand-made snapshots: the latest snapshot wins (in the runs' snapshot
order), tokens come from the latest snapshot with usage, identity columns survive a partial
observation, the first status is not a transition, and a function call is one row however often
it was seen, with the output that answered it."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from runtap.store.schema import all_ddl

T = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def snap(eid: str, seq: int, observed: float, status: str | None, **fields) -> dict:
    usage = fields.pop("usage", None)
    row = {
        "exchange_id": eid,
        "seq": seq,
        "request_started_at": at(observed - 0.5),
        "observed_at": at(observed),
        "response_id": "resp_1",
        "status": status,
        "has_usage": usage is not None,
        **fields,
    }
    if usage:
        row.update(zip(("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"), usage))
    return row


def item(eid: str, seq: int, observed: float, source: str, **fields) -> dict:
    return {"exchange_id": eid, "seq": seq, "observed_at": at(observed), "source": source, **fields}


@pytest.fixture
def con():
    con = duckdb.connect(":memory:")
    for statement in all_ddl():
        con.execute(statement)
    yield con
    con.close()


def insert(con, table: str, rows: list[dict]) -> None:
    frame = pl.DataFrame(rows, infer_schema_length=None)  # noqa: F841 (read by DuckDB below)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")


def test_latest_snapshot_wins_and_tokens_come_from_the_latest_with_usage(con):
    insert(
        con,
        "response_snapshots",
        [
            snap("ex1", 0, 1, "queued", model="gpt-4o", background=True, conversation_id="conv_1"),
            snap("ex2", 0, 2, "in_progress", model="gpt-4o", background=True, conversation_id="conv_1"),
            snap("ex3", 0, 3, "completed", model="gpt-4o", background=True, usage=(100, 20, 120, 40, 5)),
            # a later, partial observation: no usage, no model, no conversation
            snap("ex4", 0, 4, "completed"),
        ],
    )
    row = con.execute(
        """SELECT status, model, background, conversation_id, input_tokens, output_tokens, total_tokens,
                  cached_tokens, reasoning_tokens, snapshots, last_exchange_id FROM responses"""
    ).fetchall()
    assert row == [("completed", "gpt-4o", True, "conv_1", 100, 20, 120, 40, 5, 4, "ex4")]
    transitions = con.execute("SELECT seq, from_status, to_status FROM response_transitions ORDER BY seq").fetchall()
    assert transitions == [(1, "queued", "in_progress"), (2, "in_progress", "completed")]


def test_stream_events_are_ordered_by_their_position_when_times_tie(con):
    # a stream read from a file: every event has the response end as its time
    insert(
        con,
        "response_snapshots",
        [
            snap("ex1", 9, 5, "completed", model="o3-mini", usage=(10, 5, 15, 0, 2)),
            snap("ex1", 0, 5, "in_progress", model="o3-mini"),
            snap("ex1", 1, 5, "in_progress", model="o3-mini"),
        ],
    )
    assert con.execute("SELECT status, total_tokens FROM responses").fetchall() == [("completed", 15)]
    assert con.execute("SELECT from_status, to_status FROM response_transitions").fetchall() == [
        ("in_progress", "completed")
    ]


def test_a_response_without_usage_has_null_tokens(con):
    insert(con, "response_snapshots", [snap("ex1", 0, 1, "queued"), snap("ex2", 0, 2, "cancelled")])
    assert con.execute("SELECT status, input_tokens, total_tokens FROM responses").fetchall() == [
        ("cancelled", None, None)
    ]


def test_function_calls_one_row_each_with_their_output(con):
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "item_id": "fc_1"}
    insert(
        con,
        "response_items",
        [
            item("ex1", 2, 1.0, "sse", response_id="resp_1", status="in_progress", arguments="", **call),
            item(
                "ex1", 5, 1.1, "sse", response_id="resp_1", status="in_progress", arguments='{"city": "Oslo"}', **call
            ),
            item(
                "ex1",
                7,
                1.2,
                "response",
                response_id="resp_1",
                status="completed",
                arguments='{"city": "Oslo"}',
                **call,
            ),
            # the client echoed the call as input to the next response: not where it was made
            item("ex2", 0, 2.0, "request", response_id="resp_2", arguments='{"city": "Oslo"}', **call),
            item(
                "ex2",
                0,
                2.0,
                "request",
                response_id="resp_2",
                type="function_call_output",
                call_id="call_1",
                output="-3C",
            ),
            # seen only in a conversation's items
            item("ex3", 0, 3.0, "list", conversation_id="conv_1", type="function_call", call_id="call_9", name="f"),
        ],
    )
    rows = con.execute(
        """SELECT response_id, call_id, name, arguments, status, output, output_response_id
           FROM response_function_calls ORDER BY call_id"""
    ).fetchall()
    assert rows == [
        ("resp_1", "call_1", "get_weather", '{"city": "Oslo"}', "completed", "-3C", "resp_2"),
        (None, "call_9", "f", None, None, None, None),
    ]
