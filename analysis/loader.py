"""The one place reports read the store: DuckDB SQL in, small polars frames out (via Arrow).

Snapshot tables grow to millions of rows, so each report input is reduced in DuckDB to the
grain its report needs (per model, per status, per operation, ...) before it crosses into
polars: a 1M-run store yields frames of a few rows, and nothing is cached between runs, so a
report is right just after new writes. Each input asks `analysis.facts` for only the per-run
facts it uses. Percentiles are computed here too (DuckDB's `quantile_cont` is polars' linear
interpolation): moving 1M per-run or 5.75M per-exchange rows into polars to take them there
cost 20-40% more CPU on the benchmark store (benchmarks/bench_reports.py).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from runtap.addon.response_routes import RESPONSE_OPERATIONS
from runtap.analysis.facts import matching_runs, restrict, runs_with_stays, transitions_of
from runtap.analysis.filters import Filters
from runtap.analysis.response_facts import matching_responses
from runtap.store import derived, step_state
from runtap.store.intervals import STAY_STATUSES
from runtap.store.latest import TOKENS
from runtap.store.schema import TABLES

_USAGE_FACTS = (*TOKENS, "with_usage")  # the token facts, and whether any snapshot of the run carried usage

# Which exchanges belong to which API. Every runs exchange names its thread except the two that
# create one (whose thread may stay unknown when they fail); no Responses exchange names a thread.
# Testing thread_id first keeps the string comparison off almost every row: `operation NOT IN
# (13 names)` alone made `latency` and `summary` ~40% slower on 5.75M exchanges (this machine).
_RESPONSE_OPS = ", ".join(f"'{op}'" for op in sorted(RESPONSE_OPERATIONS))
_API_EXCHANGES = {
    "runs": "(thread_id IS NOT NULL OR operation IS NULL OR operation IN ('createThread', 'createThreadAndRun'))",
    "responses": f"(thread_id IS NULL AND operation IN ({_RESPONSE_OPS}))",
}


def _token_sums(tokens: tuple[str, ...] = TOKENS) -> str:
    """Sums of the token facts (NULL when no run of the group had usage)."""
    return ", ".join(f"sum({c})::BIGINT AS {c}" for c in tokens)


def daily_token_sums(source: str, tokens: tuple[str, ...] = TOKENS) -> str:
    """SELECT per UTC day of creation (or first sight) and model of FROM item `source`'s rows
    with usage: day, model and the sums of `tokens`."""
    # The day truncated on the UTC wall clock (make_timestamp of the epoch) and made a TIMESTAMPTZ
    # again per group (the session is UTC: `prepare`): date_trunc over TIMESTAMPTZ goes through
    # the time zone library for every row (1M runs: 0.26 s of CPU instead of 0.09).
    return f"""SELECT day::TIMESTAMPTZ AS day, model, {", ".join(tokens)} FROM (
        SELECT date_trunc('day', make_timestamp(epoch_us(coalesce(created_at, first_observed_at)))) AS day, model,
               {_token_sums(tokens)}
        FROM {source} WHERE with_usage GROUP BY ALL)"""


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pl.LazyFrame:
    return con.sql(sql, params=params or None).pl().lazy()


def _per_run(con, filters: Filters, facts: tuple[str, ...], select: str) -> pl.LazyFrame:
    """Run `select` (which reads the CTE `matching`) over the matching runs' `facts`."""
    cte, params = matching_runs(facts, filters, con)
    return _frame(con, f"WITH {cte} {select}", params)


def load_usage_by_model(con, filters: Filters) -> pl.LazyFrame:
    """Per model: runs, runs_with_usage and the token sums of those (NULL when no run had usage)."""
    return _per_run(
        con,
        filters,
        ("model", *_USAGE_FACTS),
        f"""
        SELECT model, count(*) AS runs, count(*) FILTER (WHERE with_usage) AS runs_with_usage, {_token_sums()}
        FROM matching GROUP BY model""",
    )


def load_outcomes(con, filters: Filters) -> pl.LazyFrame:
    """Per model and final status: runs and token sums (NULL when no run of the group had usage)."""
    return _per_run(
        con,
        filters,
        ("model", "status", *TOKENS),
        f"""
        SELECT model, status, count(*) AS runs, {_token_sums()} FROM matching GROUP BY model, status""",
    )


def load_endings(con, filters: Filters) -> pl.LazyFrame:
    """Runs per final status, last_error_code and incomplete_reason."""
    return _per_run(
        con,
        filters,
        ("status", "last_error_code", "incomplete_reason"),
        """
        SELECT status, last_error_code, incomplete_reason, count(*) AS runs FROM matching GROUP BY ALL""",
    )


def load_daily_usage(con, filters: Filters) -> pl.LazyFrame:
    """Per UTC day of creation (or first sight) and model: token sums of runs with usage."""
    return _per_run(
        con,
        filters,
        ("model", *_USAGE_FACTS, "created_at", "first_observed_at"),
        daily_token_sums("matching"),
    )


def load_transition_counts(con, filters: Filters) -> pl.LazyFrame:
    """Status transitions (consecutive distinct statuses of a run) counted: from_status, to_status, count."""
    cte, params = matching_runs((), filters, con)
    sql = f"""WITH {cte}
        SELECT from_status, to_status, count(*) AS count FROM {transitions_of(con, filters)} GROUP BY ALL"""
    return _frame(con, sql, params)


def load_duration_stats(con, filters: Filters, *, by_assistant: bool = False) -> pl.LazyFrame:
    """Per model (and assistant_id), from the runs' stays (`run_status_intervals`'s rules,
    store/intervals.py): runs; [p50, p90] of each run's time in each of `STAY_STATUSES`
    (`<status>_ms`: its closed stays summed; runs never leaving the status do not count) and of
    end_to_end_ms (first stay's start to the terminal status, runs observed from creation to the
    end), each with the p50 of its uncertainty (`<figure>_uncertainty_ms`); for the runs with no
    observed end-to-end, the API's whole-second figures: api_runs, [p50, p90] of api_queue_ms
    (created -> started), api_execution_ms (started -> ended), api_end_to_end_ms; polls_per_run
    (getRun exchanges).
    """
    keys = ("model", "assistant_id") if by_assistant else ("model",)
    cte, params = runs_with_stays((*keys, "created_at", "started_at", "ended_at"), filters, con)
    keys = ", ".join(keys)
    figures = [*STAY_STATUSES, "end_to_end"]
    observed = ", ".join(
        f"quantile_cont({f}_ms, [0.5, 0.9]) AS {f}_ms, quantile_cont({f}_uncertainty_ms, 0.5) AS {f}_uncertainty_ms"
        for f in figures
    )
    api = {
        "api_queue_ms": "started_at - created_at",
        "api_execution_ms": "ended_at - started_at",
        "api_end_to_end_ms": "ended_at - created_at",
    }
    # CASE ... END rather than FILTER (WHERE ...): the same values (quantiles skip NULLs) for
    # half the CPU of the whole query on 1M runs (DuckDB runs each filtered aggregate apart).
    api_figures = ", ".join(
        f"quantile_cont(CASE WHEN end_to_end_ms IS NULL THEN epoch_ms({expr}) END, [0.5, 0.9]) AS {name}"
        for name, expr in api.items()
    )
    # each run's getRun exchanges: as the writer keeps them, or counted over every exchange
    polls = f"SELECT * FROM {derived.RUN_POLLS}" if derived.current(con) else derived.polls_sql()
    sql = f"""WITH {cte},
        polls AS ({polls})
        SELECT {keys}, count(*) AS runs, {observed},
               count(CASE WHEN end_to_end_ms IS NULL THEN ended_at - created_at END) AS api_runs, {api_figures},
               avg(coalesce(p.polls, 0)) AS polls_per_run
        FROM matching_stays LEFT JOIN polls p USING (run_id)
        GROUP BY {keys}"""
    return _frame(con, sql, params)


def _exchanges_in_scope(con, filters: Filters, api: str) -> tuple[str, str, dict]:
    """(CTE, predicate over `exchanges`, params): the exchanges of one API ("runs" or "responses")
    that `filters` keep (the runs from the page's shared facts, when `con` has them)."""
    if api == "runs":
        cte, params = matching_runs((), filters, con)
        where, ex_params = filters.exchange_where("SELECT run_id FROM matching")
    else:
        cte, params = matching_responses((), filters)
        where, ex_params = filters.exchange_where("SELECT response_id FROM matching_responses", key="response_id")
    return cte, f"{where} AND {_API_EXCHANGES[api]}", params | ex_params


# Each stream's first event and first text delta.
_FIRSTS = """firsts AS (
            SELECT exchange_id, min(received_at) AS first_event_at,
                   min(received_at) FILTER (WHERE event IN ('thread.message.delta', 'response.output_text.delta'))
                   AS first_delta_at
            FROM sse_events GROUP BY exchange_id
        )"""


def _timings(con, filters: Filters, api: str) -> tuple[str, dict]:
    """CTEs ending in `timings`: one row per exchange of `api` in scope: operation, failed (HTTP
    >= 400 or a transport error), streamed, duration_ms, ttfb_ms (headers), first_byte_ms and, for
    streams, first_event_ms and first_delta_ms (first `thread.message.delta` or
    `response.output_text.delta`), all from the request start.
    """
    cte, where, params = _exchanges_in_scope(con, filters, api)

    def columns(first_event: str, first_delta: str) -> str:
        return f"""e.operation, (e.status_code >= 400 OR e.error IS NOT NULL) AS failed,
                   coalesce(e.streamed, false) AS streamed, e.duration_ms, e.ttfb_ms,
                   (epoch_us(e.first_byte_at) - epoch_us(e.request_started_at)) / 1000.0 AS first_byte_ms,
                   (epoch_us({first_event}) - epoch_us(e.request_started_at)) / 1000.0 AS first_event_ms,
                   (epoch_us({first_delta}) - epoch_us(e.request_started_at)) / 1000.0 AS first_delta_ms"""

    # Only streams have SSE events (addon/normalize.py records events only for a response it
    # marks `streamed`), so an exchange recorded as not streamed skips the join: 0.6 s of CPU
    # less over 5.75M exchanges. A store without the column (NULL) joins every exchange.
    sql = f"""{cte}, {_FIRSTS}, timings AS (
            SELECT {columns("f.first_event_at", "f.first_delta_at")}
            FROM (SELECT * FROM exchanges WHERE ({where}) AND streamed IS NOT false) e
            LEFT JOIN firsts f USING (exchange_id)
            UNION ALL
            SELECT {columns("NULL::TIMESTAMPTZ", "NULL::TIMESTAMPTZ")}
            FROM exchanges e WHERE ({where}) AND streamed IS false
        )"""
    return sql, params


def load_operation_latency(con, filters: Filters, api: str = "runs") -> pl.LazyFrame:
    """Per operation of `api`: requests (every exchange), failed, duration_ms [p50, p90, p99],
    max_ms, headers_p50_ms, first_byte_p50_ms, streams, first_event_p50_ms, first_delta_p50_ms.
    """
    cte, where, params = _exchanges_in_scope(con, filters, api)
    # The figures of `_timings`'s rows, in two aggregates joined per operation: every exchange's
    # (without the stream columns, NULL on most of them), and the streams' with their first
    # events; counts of a CASE rather than FILTER clauses (DuckDB runs a filtered aggregate
    # apart). 5.75M exchanges, 7 runs each: median 1.51 -> 1.39 s of CPU (one thread).
    sql = f"""WITH {cte}, {_FIRSTS},
        per_operation AS (
            SELECT operation, count(*) AS requests,
                   count(CASE WHEN status_code >= 400 OR error IS NOT NULL THEN 1 END) AS failed,
                   quantile_cont(duration_ms, [0.5, 0.9, 0.99]) AS duration_ms, max(duration_ms) AS max_ms,
                   quantile_cont(ttfb_ms, 0.5) AS headers_p50_ms,
                   quantile_cont((epoch_us(first_byte_at) - epoch_us(request_started_at)) / 1000.0, 0.5)
                   AS first_byte_p50_ms,
                   count(CASE WHEN streamed THEN 1 END) AS streams
            FROM exchanges WHERE {where} GROUP BY operation
        ), per_stream_operation AS (
            SELECT operation,
                   quantile_cont((epoch_us(f.first_event_at) - epoch_us(e.request_started_at)) / 1000.0, 0.5)
                   AS first_event_p50_ms,
                   quantile_cont((epoch_us(f.first_delta_at) - epoch_us(e.request_started_at)) / 1000.0, 0.5)
                   AS first_delta_p50_ms
            FROM (SELECT operation, exchange_id, request_started_at FROM exchanges
                  WHERE ({where}) AND streamed IS NOT false) e
            JOIN firsts f USING (exchange_id) GROUP BY operation
        )
        SELECT o.operation, requests, failed, duration_ms, max_ms, headers_p50_ms, first_byte_p50_ms, streams,
               first_event_p50_ms, first_delta_p50_ms
        FROM per_operation o LEFT JOIN per_stream_operation s ON o.operation IS NOT DISTINCT FROM s.operation"""
    return _frame(con, sql, params)


def load_exchange_timings(con, filters: Filters, api: str = "runs") -> pl.LazyFrame:
    """One row per exchange of `api` in scope (see `_timings`): what the HTML latency chart draws."""
    ctes, params = _timings(con, filters, api)
    return _frame(con, f"WITH {ctes} SELECT * FROM timings", params)


def load_overview(con, filters: Filters, api: str = "runs") -> pl.LazyFrame:
    """One row over the exchanges of `api`: exchanges, threads (runs) or conversations
    (responses), http_errors, first_seen_at, last_seen_at."""
    cte, where, params = _exchanges_in_scope(con, filters, api)
    sessions = (
        "count(DISTINCT thread_id) AS threads" if api == "runs" else "count(DISTINCT conversation_id) AS conversations"
    )
    sql = f"""WITH {cte}
        SELECT count(*) AS exchanges, {sessions},
               count(*) FILTER (WHERE status_code >= 400 OR error IS NOT NULL) AS http_errors,
               min(request_started_at) AS first_seen_at,
               max(coalesce(response_ended_at, request_started_at)) AS last_seen_at
        FROM exchanges WHERE {where}"""
    return _frame(con, sql, params)


def load_step_cube(con, filters: Filters) -> pl.LazyFrame:
    """Steps counted per type, tool and final status.

    `tool` is the step's distinct tools joined with "+" (a function's name, or code_interpreter /
    file_search), NULL for message_creation. Columns: type, tool, status, steps, tool_calls,
    prompt/completion/total_tokens (of steps with usage), duration_sum_ms, durations (steps with
    both created_at and completed_at), duration_max_ms.
    """
    cte, params = matching_runs((), filters, con)
    steps = step_state.source(restrict(filters), derived.current(con))  # as the writer keeps them, when current
    sql = f"""WITH {cte}, steps AS (SELECT * FROM {steps})
        SELECT type, tool, status, count(*) AS steps, coalesce(sum(tool_calls)::BIGINT, 0) AS tool_calls,
               sum(prompt_tokens)::BIGINT AS prompt_tokens, sum(completion_tokens)::BIGINT AS completion_tokens,
               sum(total_tokens)::BIGINT AS total_tokens,
               sum(duration_ms) AS duration_sum_ms, count(duration_ms) AS durations,
               max(duration_ms) AS duration_max_ms
        FROM steps GROUP BY ALL"""
    return _frame(con, sql, params)


LOADERS: dict[str, Callable[..., pl.LazyFrame]] = {
    "usage_by_model": load_usage_by_model,
    "outcomes": load_outcomes,
    "endings": load_endings,
    "daily_usage": load_daily_usage,
    "transition_counts": load_transition_counts,
    "duration_stats": load_duration_stats,
    "operation_latency": load_operation_latency,
    "exchange_timings": load_exchange_timings,
    "overview": load_overview,
    "step_cube": load_step_cube,
}


def is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the store holds no run observation and no exchange at all."""
    row = con.sql("SELECT (SELECT count(*) FROM run_snapshots) + (SELECT count(*) FROM exchanges)").fetchall()[0]
    return row[0] == 0


def has_responses(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the store recorded any Responses or Conversations exchange (call after `prepare`)."""
    return con.sql(f"SELECT EXISTS (SELECT 1 FROM exchanges WHERE {_API_EXCHANGES['responses']})").fetchall()[0][0]


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Session settings every load relies on: UTC days and timestamps, no progress bar on stderr;
    and the tables and columns a store written by an older runtap lacks, as typed NULLs."""
    con.sql("SET TimeZone = 'UTC'")
    con.sql("SET enable_progress_bar = false")
    _stand_in_for_missing(con)


def _stand_in_for_missing(con: duckdb.DuckDBPyConnection) -> None:
    """Temporary views (read-only connections allow them) in place of missing tables and columns:
    an older store has no Responses tables, so `--api responses` reads them as empty."""
    found: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall():
        found.setdefault(table, set()).add(column)
    database = None
    for table, columns in TABLES.items():
        have = found.get(table)
        missing = [f"NULL::{ctype} AS {column}" for column, ctype in columns if have is None or column not in have]
        if have is None:
            con.execute(f"CREATE TEMP VIEW {table} AS SELECT {', '.join(missing)} WHERE false")
        elif missing:
            database = database or con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f'CREATE TEMP VIEW {table} AS SELECT *, {", ".join(missing)} FROM "{database}".main.{table}')
