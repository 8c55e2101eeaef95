"""The reports' per-run reduction on tie and partial cases, freshness after new writes, and the
benchmark's SQL baselines against the reports they are timed against."""

from __future__ import annotations

import importlib.util
import pathlib

import duckdb
import polars as pl
import pytest

from runtap.analysis import Filters, run_report
from runtap.analysis.loader import daily_token_sums, prepare
from runtap.store.reader import open_store
from tests.store_fixtures import make_store, run_snapshot, usage

BENCH = pathlib.Path(__file__).parent.parent / "benchmarks" / "bench_reports.py"


def rows(frame: pl.DataFrame, *columns: str) -> set[tuple]:
    return set(frame.select(columns).iter_rows())


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory) -> str:
    """Runs whose latest snapshot is decided by each tie-breaker, with partial observations."""
    stream = [
        run_snapshot("run_stream", s, 5, exchange_id="ex_stream", seq=i, source="sse", model="o3-mini")
        for i, s in enumerate(["queued", "in_progress", "completed"])
    ]
    stream[-1].update(usage(40, 2))
    snapshots = [
        *stream[::-1],  # inserted newest first: only seq orders them
        # Same observed_at: the exchange that started later is the later observation.
        run_snapshot("run_tie", "in_progress", 9, request_started_at=7),
        run_snapshot("run_tie", "failed", 9, request_started_at=8, last_error_code="server_error", **usage(5, 0)),
        # Tokens from the latest snapshot with usage; the latest one lacks model and thread.
        run_snapshot("run_partial", "in_progress", 1, **usage(1, 1)),
        run_snapshot("run_partial", "requires_action", 2, **usage(100, 20)),
        run_snapshot("run_partial", "queued", 3, model=None, thread_id=None),
        run_snapshot("run_partial", "incomplete", 4, model=None, incomplete_reason="max_prompt_tokens"),
        # A status-less observation between two statuses, then one as the latest.
        run_snapshot("run_gap", "queued", 1, model="gpt-4o-mini"),
        run_snapshot("run_gap", None, 2, model="gpt-4o-mini"),
        run_snapshot("run_gap", "in_progress", 3, model="gpt-4o-mini"),
        run_snapshot("run_gap", None, 4, model="gpt-4o-mini"),
        run_snapshot("run_v1", "completed", 1, model="gpt-4-turbo"),
    ]
    return make_store(tmp_path_factory.mktemp("loader") / "edges.duckdb", {"run_snapshots": snapshots})


def test_tokens_take_the_latest_usage_and_keep_a_partial_runs_model(edge_store):
    got = run_report(edge_store, "tokens").main
    assert rows(got, "model", "runs", "runs_with_usage", "prompt_tokens", "total_tokens") == {
        ("gpt-4o", 2, 2, 105, 125),  # run_tie's later exchange; run_partial: model kept, tokens seen at 2 s
        ("o3-mini", 1, 1, 40, 42),  # the stream's last event by position
        ("gpt-4o-mini", 1, 0, None, None),
        ("gpt-4-turbo", 1, 0, None, None),
    }


def test_statuses_and_transitions_on_tie_and_partial_cases(edge_store):
    sections = run_report(edge_store, "transitions").sections
    assert rows(sections["transitions"], "from_status", "to_status", "count") == {
        ("queued", "in_progress", 2),  # run_stream, and run_gap across its status-less snapshot
        ("in_progress", "completed", 1),
        ("in_progress", "failed", 1),  # run_tie: the exchange that started later is the later one
        ("in_progress", "requires_action", 1),
        ("requires_action", "queued", 1),
        ("queued", "incomplete", 1),
    }
    assert rows(sections["terminal"], "status", "runs") == {("completed", 2), ("failed", 1), ("incomplete", 1)}
    assert rows(sections["open"], "status", "runs") == {(None, 1)}  # run_gap's latest snapshot has no status
    assert rows(sections["reasons"], "status", "reason", "runs") == {
        ("failed", "server_error", 1),
        ("incomplete", "max_prompt_tokens", 1),
    }


def test_summary_counts_runs_by_model_and_final_status(edge_store):
    models = run_report(edge_store, "summary").sections["models"]
    assert rows(models, "model", "runs", "completed", "failed", "incomplete", "in_flight") == {
        ("gpt-4o", 2, 0, 1, 1, 0),
        ("o3-mini", 1, 1, 0, 0, 0),
        ("gpt-4o-mini", 1, 0, 0, 0, 1),
        ("gpt-4-turbo", 1, 1, 0, 0, 0),
    }


def test_filters_read_the_facts_they_need(edge_store):
    got = run_report(edge_store, "tokens", Filters(models=("gpt-4o",), threads=("thread_1",))).main
    assert rows(got, "model", "runs", "total_tokens") == {("gpt-4o", 2, 125)}


def test_a_report_sees_rows_written_after_the_previous_report(tmp_path):
    path = make_store(tmp_path / "fresh.duckdb", {"run_snapshots": [run_snapshot("run_1", "queued", 0)]})
    assert rows(run_report(path, "tokens").main, "model", "runs", "total_tokens") == {("gpt-4o", 1, None)}
    make_store(
        path,
        {
            "run_snapshots": [
                run_snapshot("run_1", "completed", 1, **usage(7, 3)),
                run_snapshot("run_2", "queued", 2, model="o3-mini"),
            ]
        },
    )
    assert rows(run_report(path, "tokens").main, "model", "runs", "total_tokens") == {
        ("gpt-4o", 1, 10),
        ("o3-mini", 1, None),
    }
    assert rows(run_report(path, "transitions").main, "from_status", "to_status", "count") == {
        ("queued", "completed", 1)
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The benchmark module and a small synthetic store it built."""
    spec = importlib.util.spec_from_file_location("bench_reports", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = str(tmp_path_factory.mktemp("bench") / "bench.duckdb")
    module.build_store(path, 400)
    return module, path


def baseline(bench, name: str) -> list[tuple]:
    module, path = bench
    with open_store(path) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(module.SQL[name]).fetchall()


def test_benchmark_store_has_the_documented_shape(bench):
    _module, path = bench
    with open_store(path) as con:
        runs, snapshots = con.execute("SELECT count(DISTINCT run_id), count(*) FROM run_snapshots").fetchall()[0]
    assert (runs, snapshots) == (400, 4000)


def test_benchmark_sql_computes_the_token_and_transition_figures(bench):
    tokens = run_report(bench[1], "tokens").main
    assert rows(tokens, "model", "runs", "runs_with_usage", "prompt_tokens", "completion_tokens", "total_tokens") == {
        tuple(r) for r in baseline(bench, "tokens")
    }
    sections = run_report(bench[1], "transitions").sections
    sql = baseline(bench, "transitions")
    assert rows(sections["transitions"], "from_status", "to_status", "count") == {
        (a, b, n) for a, b, _, n in sql if b is not None
    }
    assert rows(sections["reasons"], "status", "reason", "runs") == {
        (s, r, n) for s, b, r, n in sql if b is None and s in ("failed", "incomplete", "expired", "cancelled")
    }


def test_benchmark_sql_computes_the_latency_duration_and_step_figures(bench):
    latency = {r[0]: r for r in baseline(bench, "latency")}
    for row in run_report(bench[1], "latency").main.iter_rows(named=True):
        _op, requests, failed, (p50, p90, p99), max_ms, streams, headers = latency[row["operation"]][:7]
        assert (row["requests"], row["failed"], row["streams"]) == (requests, failed, streams)
        assert (row["p50_ms"], row["p90_ms"], row["p99_ms"], row["max_ms"], row["headers_p50_ms"]) == pytest.approx(
            (p50, p90, p99, max_ms, headers)
        )
    durations = {r[0]: r for r in baseline(bench, "durations")}
    figures = ("queued", "in_progress", "requires_action", "cancelling", "end_to_end")
    for row in run_report(bench[1], "durations").main.iter_rows(named=True):
        _, runs, *stays, api_runs, _, _, _, polls = durations[row["model"]]
        assert (row["runs"], row["api_runs"]) == (runs, api_runs)
        for figure, quantiles, uncertainty in zip(figures, stays[::2], stays[1::2], strict=True):
            got = (row[f"{figure}_p50_ms"], row[f"{figure}_p90_ms"], row[f"{figure}_uncertainty_p50_ms"])
            assert got == pytest.approx((*(quantiles or (None, None)), uncertainty)), (row["model"], figure)
        assert row["polls_per_run"] == pytest.approx(polls)
    steps = run_report(bench[1], "steps").main
    assert rows(steps, "type", "tool", "steps", "failed", "tool_calls", "total_tokens") == {
        (t, tool, n, failed, calls or 0, total)
        for t, tool, n, failed, calls, _, _, total, _, _ in baseline(bench, "steps")
    }


def test_requires_action_time_sums_closed_spells_only(tmp_path):
    statuses = [
        (0, "queued"),
        (2, "requires_action"),
        (3, "requires_action"),
        (5, "queued"),
        (8, "requires_action"),
        (9, "in_progress"),
        (12, "requires_action"),
    ]
    snapshots = [run_snapshot("run_turns", s, t, model="gpt-4o") for t, s in statuses]
    snapshots += [run_snapshot("run_waiting", s, t, model="gpt-4o") for t, s in [(0, "queued"), (1, "requires_action")]]
    path = make_store(tmp_path / "turns.duckdb", {"run_snapshots": snapshots})
    row = run_report(path, "durations").main.row(0, named=True)
    # Polls bracket each change, the estimate is the middle: requires_action from 1 to 4 s and from
    # 6.5 to 8.5 s; the stay open from 10.5 s and run_waiting's (it never left): not counted.
    assert (row["runs"], row["requires_action_p50_ms"]) == (2, 5000.0)


def test_only_exchanges_recorded_as_streamed_have_sse_events(recording):
    # The latency input joins SSE events only to exchanges not recorded as `streamed = false`.
    *_, db = recording
    with open_store(db) as con:  # its own connection: the fixture's may hold another test's result
        streamed, other = con.sql("""
            SELECT count(*) FILTER (WHERE e.streamed), count(*) FILTER (WHERE e.streamed IS NOT true)
            FROM sse_events s JOIN exchanges e USING (exchange_id)""").fetchall()[0]
    assert streamed > 0
    assert other == 0


def test_daily_token_sums_give_date_truncs_utc_days():
    """The day comes from the UTC wall clock, not date_trunc over TIMESTAMPTZ: the same days,
    at and around midnight, before 1970 too, and NULL without any timestamp."""
    con = duckdb.connect()
    prepare(con)
    con.execute("""CREATE TABLE runs AS SELECT * FROM (VALUES
        (TIMESTAMPTZ '2026-01-05 00:00:00+00', NULL::TIMESTAMPTZ, 1),
        (TIMESTAMPTZ '2026-01-05 23:59:59.999999+00', NULL, 2),
        (TIMESTAMPTZ '2026-01-06 00:00:00.000001+00', NULL, 4),
        (NULL, TIMESTAMPTZ '2026-01-06 01:00:00+02', 8),
        (TIMESTAMPTZ '1969-12-31 23:59:59.5+00', NULL, 16),
        (TIMESTAMPTZ '1970-01-01 00:00:00.5+00', NULL, 32),
        (NULL, NULL, 64)) t(created_at, first_observed_at, prompt_tokens)""")
    con.execute("ALTER TABLE runs ADD COLUMN model VARCHAR DEFAULT 'm'")
    con.execute("ALTER TABLE runs ADD COLUMN with_usage BOOLEAN DEFAULT true")
    got = con.sql(daily_token_sums("runs", ("prompt_tokens",))).fetchall()
    want = con.sql("""SELECT date_trunc('day', coalesce(created_at, first_observed_at)) AS day, model,
        sum(prompt_tokens)::BIGINT FROM runs GROUP BY ALL""").fetchall()
    assert sorted(got, key=str) == sorted(want, key=str)
    assert len(got) == 5
    assert str(con.sql(daily_token_sums("runs", ("prompt_tokens",))).types[0]) == "TIMESTAMP WITH TIME ZONE"
