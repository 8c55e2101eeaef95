"""What the timelines read from the store: each chosen run's status stays, requests and tool calls
as bars on its time axis, and, for the HTML page, which runs are slowest and where each model's
time goes. DuckDB SQL in, small polars frames out, like analysis/loader.py.

A bar is one row: `lane` (status | tool_call | request), `name`, `start_at`, `end_at` (NULL: still
open when the recording ended, or a terminal status), `duration_ms`, and what the lane adds.
- status: a row of `run_status_intervals` (store/intervals.py decides the estimates).
- request: an exchange that names the run (create, poll, stream, submit, cancel, steps, ...),
  from its request start to its response end.
- tool_call: a call the run asked for (`tool_call_snapshots`), from the start of the run's
  requires_action stay that asked for it (the first one that had not ended before the call was
  first seen) to the request start of the submitToolOutputsToRun that answered it (by
  `tool_call_id` in its body); never answered: to the end of that stay.
"""

from __future__ import annotations

import duckdb
import polars as pl

from runtap.analysis.facts import runs_with_stays
from runtap.analysis.filters import Filters
from runtap.store.derived import boundaries_source
from runtap.store.intervals import STAY_STATUSES, run_status_intervals_sql
from runtap.store.latest import RUN_FACTS, per_object

# The runs a timeline is asked for: a relation of run_id with parameter $id.
RUN_CHOICE = """SELECT DISTINCT run_id FROM (
        SELECT run_id FROM run_snapshots WHERE run_id = $id
        UNION ALL SELECT run_id FROM exchanges WHERE run_id = $id)"""
THREAD_CHOICE = """SELECT DISTINCT run_id FROM (
        SELECT run_id FROM run_snapshots WHERE thread_id = $id
        UNION ALL SELECT run_id FROM exchanges WHERE thread_id = $id) WHERE run_id IS NOT NULL"""


def _bars_sql(con: duckdb.DuckDBPyConnection, chosen: str) -> str:
    """SELECT the bars of the runs in relation `chosen` (one run_id column)."""
    where = "run_id IN (SELECT run_id FROM chosen)"
    boundaries = boundaries_source(con, where)
    return f"""WITH chosen AS ({chosen}),
        stays AS (
            SELECT run_id, visit, status, entered_at, left_at, duration_ms, uncertainty_ms
            FROM ({run_status_intervals_sql(boundaries=boundaries)})
        ), requests AS (
            SELECT * FROM exchanges WHERE {where}
        ), answered AS (  -- each tool output submitted: the call it answers, when the request started
            SELECT run_id, request_started_at AS submitted_at,
                   unnest(json_extract_string(request_body, '$.tool_outputs[*].tool_call_id')) AS tool_call_id
            FROM requests WHERE operation = 'submitToolOutputsToRun' AND json_valid(request_body)
        ), calls AS (
            SELECT run_id, tool_call_id, max(function_name) AS function_name, max(type) AS type,
                   min(observed_at) AS first_seen
            FROM tool_call_snapshots WHERE {where} AND tool_call_id IS NOT NULL GROUP BY ALL
        ), asked AS (  -- the requires_action stay that asked for each call
            SELECT c.*, arg_min(s.entered_at, s.visit) AS asked_at, arg_min(s.left_at, s.visit) AS left_at
            FROM calls c LEFT JOIN stays s
              ON s.run_id = c.run_id AND s.status = 'requires_action' AND coalesce(s.left_at >= c.first_seen, true)
            GROUP BY ALL
        ), tool_bars AS (
            SELECT run_id, tool_call_id, name, start_at, coalesce(submitted_at, left_at) AS end_at FROM (
                SELECT a.run_id, a.tool_call_id, coalesce(a.function_name, a.type) AS name,
                       coalesce(a.asked_at, a.first_seen) AS start_at, a.left_at, min(w.submitted_at) AS submitted_at
                FROM asked a LEFT JOIN answered w
                  ON w.run_id = a.run_id AND w.tool_call_id = a.tool_call_id
                 AND w.submitted_at >= coalesce(a.asked_at, a.first_seen)
                GROUP BY ALL)
        ), threads AS ({per_object("run_snapshots", "run_id", RUN_FACTS, ["thread_id"], where)}
        )
        SELECT b.*, coalesce(t.thread_id, b.request_thread_id) AS thread_id FROM (
            SELECT run_id, 'status' AS lane, status AS name, entered_at AS start_at, left_at AS end_at,
                   duration_ms, uncertainty_ms, visit, NULL::VARCHAR AS exchange_id, NULL::VARCHAR AS method,
                   NULL::INTEGER AS status_code, NULL::BOOLEAN AS streamed, NULL::VARCHAR AS tool_call_id,
                   NULL::VARCHAR AS request_thread_id
            FROM stays
            UNION ALL
            SELECT run_id, 'tool_call', name, start_at, end_at,
                   (epoch_us(end_at) - epoch_us(start_at)) / 1000.0, NULL, NULL, NULL, NULL, NULL, NULL,
                   tool_call_id, NULL
            FROM tool_bars
            UNION ALL
            SELECT run_id, 'request', operation, request_started_at, response_ended_at, duration_ms, NULL, NULL,
                   exchange_id, method, status_code, coalesce(streamed, false), NULL, thread_id
            FROM requests
        ) b LEFT JOIN threads t USING (run_id)"""


def load_bars(con: duckdb.DuckDBPyConnection, chosen: str, params: dict | None = None) -> pl.DataFrame:
    """The bars (see the module docstring) of the runs `chosen` selects (SQL of one run_id column,
    reading `params`)."""
    frame = con.sql(_bars_sql(con, chosen), params=params or None).pl()
    return frame.drop("request_thread_id")


def load_status_time(con: duckdb.DuckDBPyConnection, filters: Filters) -> pl.DataFrame:
    """Per model, over its runs observed from creation to their end: runs, and the mean time per
    run in each of STAY_STATUSES (`<status>_mean_ms`, 0 for a run that never was in it) and
    end-to-end (`end_to_end_mean_ms`, the sum of the others)."""
    cte, params = runs_with_stays(("model",), filters, con)
    means = ", ".join(f"avg(coalesce({s}_ms, 0)) AS {s}_mean_ms" for s in STAY_STATUSES)
    sql = f"""WITH {cte}
        SELECT model, count(*) AS runs, {means}, avg(end_to_end_ms) AS end_to_end_mean_ms
        FROM matching_stays WHERE end_to_end_ms IS NOT NULL GROUP BY model ORDER BY model NULLS LAST"""
    return con.sql(sql, params=params or None).pl()


def load_slowest(con: duckdb.DuckDBPyConnection, filters: Filters, limit: int) -> tuple[pl.DataFrame, int]:
    """The `limit` slowest runs `filters` keep (longest end-to-end first; runs not observed from
    creation to their end after them, newest first), with their model and end_to_end_ms, and how
    many runs there are in all."""
    cte, params = runs_with_stays(("model", "status", "first_observed_at"), filters, con)
    # The total counted apart: a window count over every run kept them all for the sort (0.2 s
    # of CPU on 1M runs) where the LIMIT alone keeps the top few.
    sql = f"""WITH {cte}
        SELECT run_id, model, status, end_to_end_ms, (SELECT count(*) FROM matching) AS total
        FROM matching_stays ORDER BY end_to_end_ms DESC NULLS LAST, first_observed_at DESC, run_id LIMIT {int(limit)}"""
    frame = con.sql(sql, params=params or None).pl()
    total = frame["total"][0] if frame.height else 0
    return frame.drop("total"), total
