"""Every report against figures worked out by hand or by plain SQL on the fixture capture."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from runtap.analysis import REPORTS, Filters, parse_instant, run_report
from tests.fixtures.report_store import build_report_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_report_store(str(tmp_path_factory.mktemp("reports") / "capture.duckdb"))


def sql(store: str, query: str) -> pl.DataFrame:
    con = duckdb.connect(store, read_only=True)
    try:
        con.sql("SET TimeZone = 'UTC'")
        return con.sql(query).pl()
    finally:
        con.close()


def rows(frame: pl.DataFrame, *columns: str) -> set[tuple]:
    return set(frame.select(columns).iter_rows())


# One golden row per report: key columns -> expected values, worked out from the fixture's docstring.
GOLDEN = {
    "tokens": (
        ("model",),
        {
            ("gpt-4o",): {
                "runs": 2,
                "runs_with_usage": 2,
                "prompt_tokens": 600,
                "completion_tokens": 120,
                "total_tokens": 720,
            },
            ("acme-llm-7b",): {"runs": 1, "total_tokens": 1200, "cost_usd": None},
            ("gpt-4-turbo",): {"runs": 2, "runs_with_usage": 0, "total_tokens": None, "cost_usd": None},
        },
    ),
    "transitions": (
        ("from_status", "to_status"),
        {
            ("queued", "completed"): {"count": 1},  # the poll that skipped in_progress
            ("requires_action", "queued"): {"count": 1},
            ("in_progress", "incomplete"): {"count": 1},  # status, not the thread.run.completed event
            ("queued", "in_progress"): {"count": 6},
        },
    ),
    "durations": (
        ("model",),
        {
            # Stays by the rules of run_status_intervals (store/intervals.py): create sent at 10.0,
            # headers 10.05; polls answered at 10.1 (the create's end), 11.04 (in_progress) and
            # 12.06 (requires_action); submit sent at 15.0, headers 15.04; polls at 16.02
            # (in_progress) and 17.03 (completed; the API's second 17 narrows the 1.01 s gap to
            # 17.0-17.03): starts 10.05, 10.57, 11.55, 15.04, 15.55, 17.015.
            ("gpt-4o-mini",): {
                "runs": 1,
                "queued_p50_ms": 1030.0,
                "queued_uncertainty_p50_ms": 1030.0,
                "in_progress_p50_ms": 2445.0,
                "requires_action_p50_ms": 3490.0,
                "requires_action_uncertainty_p50_ms": 550.0,
                "cancelling_p50_ms": None,
                "end_to_end_p50_ms": 6965.0,
                "end_to_end_uncertainty_p50_ms": 65.0,
                "api_runs": 0,
                "api_end_to_end_p50_ms": None,
                "polls_per_run": 4.0,
            },
            # run_poll: queued 0.1 (create sent at 0, headers 0.1) -> completed 2.025 (the API's
            # second); run_stream: queued 20.01 (create sent at 20.0, headers 20.01) -> in_progress
            # 20.5 -> incomplete 21.9 (live SSE events, 5 ms each).
            ("gpt-4o",): {
                "runs": 2,
                "queued_p50_ms": 1207.5,
                "queued_p90_ms": 1781.5,
                "in_progress_p50_ms": 1400.0,
                "in_progress_uncertainty_p50_ms": 10.0,
                "requires_action_p50_ms": None,
                "end_to_end_p50_ms": 1907.5,
                "end_to_end_uncertainty_p50_ms": 70.0,
                "polls_per_run": 1.0,
            },
            ("o3-mini",): {"end_to_end_p50_ms": 2972.5, "end_to_end_uncertainty_p50_ms": 62.5, "polls_per_run": 3.0},
            # Nothing finer than the API's seconds for run_v1 (one list item, already completed);
            # run_open never ended: its queue time is observed, the API's too.
            ("gpt-4-turbo",): {
                "runs": 2,
                "queued_p50_ms": 515.0,
                "end_to_end_p50_ms": None,
                "api_runs": 1,
                "api_queue_p50_ms": 1000.0,
                "api_execution_p50_ms": 9000.0,
                "api_end_to_end_p50_ms": 10000.0,
            },
        },
    ),
    "latency": (
        ("operation",),
        {
            ("getRun",): {"requests": 12, "failed": 1, "max_ms": 500.0},
            ("createRun",): {
                "requests": 6,
                "streams": 1,
                "first_byte_p50_ms": 15.0,
                "first_event_p50_ms": 20.0,
                "first_delta_p50_ms": 800.0,
                "headers_p50_ms": 50.0,
            },
        },
    ),
    "steps": (
        ("type", "tool"),
        {
            ("tool_calls", "get_weather"): {
                "steps": 1,
                "failed": 0,
                "tool_calls": 1,
                "total_tokens": 230,
                "avg_duration_ms": 4000.0,
            },
            ("tool_calls", "code_interpreter"): {
                "steps": 1,
                "failed": 1,
                "total_tokens": None,
                "avg_duration_ms": None,
            },
            ("message_creation", None): {"steps": 2, "total_tokens": 120, "avg_duration_ms": 1000.0},
        },
    ),
    "summary": (
        ("exchanges",),
        {
            (22,): {
                "threads": 6,
                "runs": 7,
                "models": 5,
                "total_tokens": 2320,
                "failure_rate": 1 / 6,
                "http_error_rate": 1 / 22,
            },
        },
    ),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_matches_golden_rows(store, name):
    keys, expected = GOLDEN[name]
    frame = run_report(store, name).main
    by_key = {tuple(r[k] for k in keys): r for r in frame.iter_rows(named=True)}
    for key, values in expected.items():
        assert key in by_key, f"{name}: no row {key}"
        got = {column: by_key[key][column] for column in values}
        assert got == pytest.approx(values), f"{name} {key}"


def test_costs_come_from_genai_prices_and_unknown_models_are_noted(store):
    from genai_prices import Usage, calc_price

    result = run_report(store, "tokens")
    gpt4o = result.main.filter(pl.col("model") == "gpt-4o").row(0, named=True)
    expected = calc_price(Usage(input_tokens=600, output_tokens=120), model_ref="gpt-4o", provider_id="openai")
    assert gpt4o["cost_usd"] == pytest.approx(float(expected.total_price))
    assert any("acme-llm-7b" in note for note in result.notes)
    assert any(note.startswith("2 run(s) reported no usage") for note in result.notes)


def test_transitions_equal_the_run_transitions_view(store):
    view = sql(store, "SELECT from_status, to_status, count(*) AS count FROM run_transitions GROUP BY ALL")
    got = run_report(store, "transitions").main
    assert rows(got, "from_status", "to_status", "count") == rows(view, "from_status", "to_status", "count")


def test_token_sums_equal_the_runs_view(store):
    view = sql(
        store,
        """SELECT model, count(*) AS runs, sum(prompt_tokens)::BIGINT AS prompt_tokens,
                                sum(total_tokens)::BIGINT AS total_tokens FROM runs GROUP BY model""",
    )
    got = run_report(store, "tokens").main
    assert rows(got, "model", "runs", "prompt_tokens", "total_tokens") == rows(
        view, "model", "runs", "prompt_tokens", "total_tokens"
    )


def test_latency_percentiles_equal_duckdb_quantile_cont(store):
    view = sql(
        store,
        """SELECT operation, count(*) AS requests,
                                quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
                                quantile_cont(duration_ms, 0.99) AS p99_ms, max(duration_ms) AS max_ms
                         FROM exchanges GROUP BY operation ORDER BY operation""",
    )
    got = run_report(store, "latency").main.sort("operation").select(view.columns)
    for mine, theirs in zip(got.iter_rows(named=True), view.iter_rows(named=True), strict=True):
        assert mine == {k: pytest.approx(v) if isinstance(v, float) else v for k, v in theirs.items()}


def test_transitions_sections_terminal_reasons_and_open(store):
    sections = run_report(store, "transitions").sections
    assert rows(sections["terminal"], "status", "runs") == {("completed", 4), ("failed", 1), ("incomplete", 1)}
    assert rows(sections["reasons"], "status", "reason", "runs") == {
        ("failed", "rate_limit_exceeded", 1),
        ("incomplete", "max_completion_tokens", 1),
    }
    assert rows(sections["open"], "status", "runs") == {("in_progress", 1)}


@pytest.mark.parametrize(
    ("filters", "runs"),
    [
        (Filters(models=("gpt-4o",)), 2),
        (Filters(assistants=("asst_C",)), 3),
        (Filters(threads=("th_6",)), 2),
        (Filters(captures=("cap_b",)), 3),
        (Filters(since=parse_instant("2026-03-01")), 6),  # run_v1 was created the day before
        (Filters(until=parse_instant("2026-02-28", end_of_day=True)), 1),
        (Filters(since=parse_instant("2026-03-01T10:00:30"), models=("o3-mini", "acme-llm-7b")), 2),
    ],
)
def test_filters_select_runs(store, filters, runs):
    assert run_report(store, "tokens", filters).main["runs"].sum() == runs


def test_model_filter_restricts_exchanges_and_transitions(store):
    latency = run_report(store, "latency", Filters(models=("o3-mini",))).main
    assert dict(latency.select("operation", "requests").iter_rows()) == {"getRun": 3, "createRun": 1, "listRunSteps": 1}
    transitions = run_report(store, "transitions", Filters(models=("o3-mini",))).main
    assert rows(transitions, "from_status", "to_status", "count") == {
        ("queued", "in_progress", 1),
        ("in_progress", "failed", 1),
    }


def test_durations_by_assistant(store):
    frame = run_report(store, "durations", by_assistant=True).main
    assert rows(frame, "model", "assistant_id", "runs") == {
        ("gpt-4o", "asst_A", 1),
        ("gpt-4o", "asst_B", 1),
        ("gpt-4o-mini", "asst_A", 1),
        ("o3-mini", "asst_B", 1),
        ("acme-llm-7b", "asst_C", 1),
        ("gpt-4-turbo", "asst_C", 2),
    }
