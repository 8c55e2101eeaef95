"""Benchmark every `runtap report` against one hand-written DuckDB query computing the same figures.

Builds a synthetic store (default 1,000,000 runs, ~10 run snapshots each) with set-based DuckDB
SQL, then times each report's runtap path (open store, load, polars report, collect) and one
SQL query computing the same figures over the same store, then a few queries over the store's
views, then `runtap report html` (the whole page, written to a temporary file) against the sum of
the reports it shows, each computed alone. Every measurement runs in a fresh process (so its
peak RSS is its own), runtap and SQL alternate report by report, and each figure is the median
of --repeat rounds: on a shared machine, compare ratios measured side by side, and read them
with the load average printed before and after. A store built by an older runtap keeps its
older views: rebuild it (or pass no --db) to time the current ones.

    .venv/bin/python benchmarks/bench_reports.py [--runs N] [--db PATH] [--repeat K] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

from runtap.analysis import REPORTS, Filters, run_report
from runtap.analysis.html import write_html
from runtap.store import derived
from runtap.store.reader import open_store
from runtap.store.schema import all_ddl

MODELS = "['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'gpt-4-turbo', 'in-house-llm']"
# Ten observed statuses per run, one path per run kind (run index % 10): polls that skip
# in_progress, a tool turn (requires_action -> queued), failures, expiry and incompleteness.
PATHS = """[
 ['queued','queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','completed'],
 ['queued','queued','queued','queued','queued','queued','queued','queued','queued','completed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','completed','completed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','completed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','completed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','completed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','incomplete'],
 ['queued','in_progress','requires_action','requires_action','requires_action','queued','in_progress','in_progress','in_progress','completed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','failed'],
 ['queued','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','in_progress','expired']
]"""

BUILD = [
    f"""CREATE TEMP TABLE r AS SELECT i,
        'run_' || i AS run_id, 'thread_' || (i // 2) AS thread_id, 'asst_' || (i % 50) AS assistant_id,
        {MODELS}[1 + i % 5] AS model, i % 10 AS kind, i % 2 = 1 AS streamed,
        TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_milliseconds(i * 500) AS t0
        FROM range({{n}}) t(i)""",
    f"""INSERT INTO run_snapshots BY NAME SELECT
        'ex_' || i || '_' || CASE WHEN streamed THEN 0 ELSE j END AS exchange_id,
        CASE WHEN streamed THEN j ELSE 0 END AS seq,
        t0 + to_milliseconds(CASE WHEN streamed THEN 0 ELSE j * 1000 END) AS request_started_at,
        t0 + to_milliseconds(j * 1000 + 40) AS observed_at,
        CASE WHEN streamed THEN 'sse' ELSE 'response' END AS source,
        run_id, thread_id, assistant_id, model,
        ({PATHS})[1 + kind][1 + j] AS status,
        date_trunc('second', t0) AS created_at,
        CASE WHEN j >= 1 AND kind <> 1 THEN date_trunc('second', t0) + INTERVAL 1 SECOND END AS started_at,
        CASE WHEN j = 9 AND kind NOT IN (6, 8, 9) THEN date_trunc('second', t0) + INTERVAL 9 SECOND END
            AS completed_at,
        CASE WHEN j = 9 AND kind = 8 THEN date_trunc('second', t0) + INTERVAL 9 SECOND END AS failed_at,
        j = 9 AND i % 97 <> 0 AS has_usage,
        CASE WHEN j = 9 AND i % 97 <> 0 THEN 100 + i % 900 END AS prompt_tokens,
        CASE WHEN j = 9 AND i % 97 <> 0 THEN 10 + i % 90 END AS completion_tokens,
        CASE WHEN j = 9 AND i % 97 <> 0 THEN 110 + i % 900 + i % 90 END AS total_tokens,
        CASE WHEN j = 9 AND kind = 8 THEN 'rate_limit_exceeded' END AS last_error_code,
        CASE WHEN j = 9 AND kind = 6 THEN 'max_completion_tokens' END AS incomplete_reason
        FROM r, range(10) s(j)""",
    """INSERT INTO exchanges BY NAME SELECT
        'ex_' || i || '_' || j AS exchange_id, 'cap_' || (i // 250000) AS capture_id,
        CASE WHEN j = 0 THEN 'createRun' ELSE 'getRun' END AS operation,
        CASE WHEN j = 0 THEN 'POST' ELSE 'GET' END AS method,
        '/v1/threads/' || thread_id || '/runs' AS path, thread_id, run_id,
        CASE WHEN (i + j) % 211 = 0 THEN 500 ELSE 200 END AS status_code,
        t0 + to_milliseconds(j * 1000) AS request_started_at,
        t0 + to_milliseconds(j * 1000 + 5 + hash(i, j) % 30) AS response_started_at,
        t0 + to_milliseconds(j * 1000 + 5 + hash(i, j) % 30) AS first_byte_at,
        t0 + to_milliseconds(CASE WHEN streamed THEN 9000 ELSE j * 1000 END + 20 + hash(i, j) % 100)
            AS response_ended_at,
        (CASE WHEN streamed THEN 9000 ELSE 0 END + 20 + hash(i, j) % 100)::DOUBLE AS duration_ms,
        (5 + hash(i, j) % 30)::DOUBLE AS ttfb_ms, streamed, j > 0 AS is_poll
        FROM r, range(10) s(j) WHERE j = 0 OR NOT streamed""",
    """INSERT INTO exchanges BY NAME SELECT
        'exs_' || i AS exchange_id, 'cap_' || (i // 250000) AS capture_id, 'listRunSteps' AS operation,
        'GET' AS method, thread_id, run_id, 200 AS status_code,
        t0 + to_milliseconds(9500) AS request_started_at,
        (15 + hash(i) % 40)::DOUBLE AS duration_ms, (8 + hash(i) % 10)::DOUBLE AS ttfb_ms,
        false AS streamed, false AS is_poll
        FROM r WHERE i % 4 = 0""",
    """INSERT INTO sse_events BY NAME SELECT
        'ex_' || i || '_0' AS exchange_id, k AS seq,
        CASE WHEN k = 6 THEN 'thread.message.delta' WHEN k < 10 THEN 'thread.run.in_progress'
             ELSE 'thread.run.step.completed' END AS event,
        t0 + to_milliseconds(3 + k * 900) AS received_at, run_id AS object_id
        FROM r, range(12) s(k) WHERE streamed""",
    """INSERT INTO step_snapshots BY NAME SELECT
        'exs_' || i AS exchange_id, k AS seq, t0 + to_milliseconds(9500) AS request_started_at,
        t0 + to_milliseconds(9000 + k) AS observed_at, 'list' AS source,
        'step_' || i || '_' || k AS step_id, run_id, thread_id, assistant_id,
        CASE WHEN k = 0 AND kind = 7 THEN 'tool_calls' ELSE 'message_creation' END AS type,
        CASE WHEN kind = 8 THEN 'failed' ELSE 'completed' END AS status,
        t0 AS created_at, t0 + INTERVAL 8 SECOND AS completed_at,
        true AS has_usage, 50 + i % 40 AS prompt_tokens, 5 + i % 7 AS completion_tokens,
        55 + i % 40 + i % 7 AS total_tokens
        FROM r, range(2) s(k) WHERE k = 0 OR kind = 7""",
    """INSERT INTO tool_call_snapshots BY NAME SELECT
        'exs_' || i AS exchange_id, 0 AS seq, t0 + to_milliseconds(9000) AS observed_at,
        'step' AS source, run_id, 'step_' || i || '_0' AS step_id, 'call_' || i AS tool_call_id,
        'function' AS type, 'get_weather' AS function_name
        FROM r WHERE kind = 7""",
    """INSERT INTO captures BY NAME SELECT 'cap_' || c AS capture_id,
        TIMESTAMPTZ '2026-01-01 00:00:00+00' AS started_at, 'synthetic' AS source
        FROM range(({n} + 249999) // 250000) t(c)""",
]

# Each run's facts as the store keeps them (store/derived.py: run_state, one row per run).
PER_RUN = """(SELECT run_id, model, assistant_id, status, created_at, started_at,
    coalesce(completed_at, failed_at, cancelled_at) AS ended_at, last_error_code AS code,
    incomplete_reason AS reason, prompt_tokens AS p, completion_tokens AS c, total_tokens AS t FROM run_state)"""
_STAYS = {"queued": "q", "in_progress": "ip", "requires_action": "ra", "cancelling": "cn"}
_ENDED = "last_status IN ('completed', 'failed', 'cancelled', 'expired', 'incomplete')"
# Each run's time per status from the sums run_state keeps (the starts of the visits that left a
# status minus those of the visits in it, plus the last start when the run is still in it).
PER_RUN_STAYS = (
    "(SELECT run_id, "
    + ", ".join(
        f"CASE WHEN {s}_left > 0 THEN ({s}_net + CASE WHEN last_status = '{s}' THEN last_at ELSE 0 END) / 1000.0 "
        f"END AS {a}, "
        f"CASE WHEN {s}_left > 0 AND NOT (first_status = '{s}' AND first_u IS NULL) "
        f"THEN {s}_u - CASE WHEN last_status = '{s}' THEN coalesce(last_u, 0) ELSE 0 END END AS {a}u"
        for s, a in _STAYS.items()
    )
    + f""", CASE WHEN {_ENDED} AND first_status NOT IN ('completed', 'failed', 'cancelled', 'expired', 'incomplete')
             AND first_u IS NOT NULL THEN (last_at - first_at) / 1000.0 END AS e2e,
        CASE WHEN {_ENDED} AND first_status NOT IN ('completed', 'failed', 'cancelled', 'expired', 'incomplete')
             THEN first_u + last_u END AS e2eu
    FROM run_state WHERE first_status IS NOT NULL)"""
)
# One query per report, computing the same figures as the report (costs aside: a lookup of
# per-model prices applied to the prompt/completion sums).
SQL = {
    "summary": f"""WITH r AS {PER_RUN} SELECT * FROM
        (SELECT model, status, count(*), sum(p), sum(c), sum(t) FROM r GROUP BY ALL),
        (SELECT count(*), count(DISTINCT thread_id), count(*) FILTER (WHERE status_code >= 400 OR error IS NOT NULL),
                min(request_started_at), max(coalesce(response_ended_at, request_started_at)) FROM exchanges)""",
    "latency": """SELECT operation, count(*), count(*) FILTER (WHERE status_code >= 400 OR error IS NOT NULL),
        quantile_cont(duration_ms, [0.5, 0.9, 0.99]), max(duration_ms), count(*) FILTER (WHERE streamed),
        quantile_cont(ttfb_ms, 0.5), quantile_cont(epoch_us(first_byte_at) - epoch_us(request_started_at), 0.5),
        quantile_cont(epoch_us(f) - epoch_us(request_started_at), 0.5),
        quantile_cont(epoch_us(d) - epoch_us(request_started_at), 0.5)
        FROM exchanges LEFT JOIN (SELECT exchange_id, min(received_at) AS f,
            min(received_at) FILTER (WHERE event = 'thread.message.delta') AS d FROM sse_events GROUP BY ALL)
        USING (exchange_id) GROUP BY operation""",
    "durations": f"""WITH r AS {PER_RUN}, t AS {PER_RUN_STAYS},
        p AS (SELECT run_id, polls AS n FROM run_polls)
        SELECT model, count(*),
            quantile_cont(q, [0.5, 0.9]), quantile_cont(qu, 0.5),
            quantile_cont(ip, [0.5, 0.9]), quantile_cont(ipu, 0.5),
            quantile_cont(ra, [0.5, 0.9]), quantile_cont(rau, 0.5),
            quantile_cont(cn, [0.5, 0.9]), quantile_cont(cnu, 0.5),
            quantile_cont(e2e, [0.5, 0.9]), quantile_cont(e2eu, 0.5),
            count(ended_at - created_at) FILTER (WHERE e2e IS NULL),
            quantile_cont(epoch_ms(started_at - created_at), [0.5, 0.9]) FILTER (WHERE e2e IS NULL),
            quantile_cont(epoch_ms(ended_at - started_at), [0.5, 0.9]) FILTER (WHERE e2e IS NULL),
            quantile_cont(epoch_ms(ended_at - created_at), [0.5, 0.9]) FILTER (WHERE e2e IS NULL),
            avg(coalesce(n, 0))
        FROM r LEFT JOIN t USING (run_id) LEFT JOIN p USING (run_id) GROUP BY model""",
    "transitions": f"""WITH r AS {PER_RUN}
        SELECT from_status, status, NULL AS reason, count(*) FROM run_status_boundaries
        WHERE from_status IS NOT NULL GROUP BY ALL
        UNION ALL SELECT status, NULL, coalesce(code, reason), count(*) FROM r GROUP BY ALL""",
    "tokens": f"""SELECT model, count(*), count(*) FILTER (WHERE t IS NOT NULL), sum(p), sum(c), sum(t)
        FROM {PER_RUN} GROUP BY model""",
    # Each step's facts and tools as the writer keeps them (store/step_state.py), as the report reads them.
    "steps": """SELECT type, tool, count(*), count(*) FILTER (WHERE status = 'failed'), sum(tool_calls),
        sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), avg(duration_ms), max(duration_ms)
        FROM step_state WHERE max_k IS NOT NULL GROUP BY ALL""",
}


# Queries over the views (store.schema.VIEWS), timed as they are.
VIEW_QUERIES = {
    "runs": "SELECT count(*), sum(total_tokens) FROM runs",
    "runs by status": "SELECT status, count(*) FROM runs GROUP BY status",
    "run_transitions": "SELECT count(*) FROM run_transitions",
    "run_steps": "SELECT count(*), sum(total_tokens) FROM run_steps",
    "run_status_intervals": (
        "SELECT status, count(*), sum(duration_ms), avg(uncertainty_ms) FROM run_status_intervals GROUP BY status"
    ),
}


# The same figures as a view query, by hand from the tables (views without one are timed alone).
VIEW_SQL = {
    "run_status_intervals": """SELECT status, count(*), sum(d) / 1000.0, avg(u + nu) FROM (
        SELECT status, lead(at_us) OVER w - at_us AS d, uncertainty_ms AS u, lead(uncertainty_ms) OVER w AS nu
        FROM run_status_boundaries WINDOW w AS (PARTITION BY run_id ORDER BY n)) GROUP BY status""",
}


def build_store(path: str, runs: int) -> None:
    """Create the synthetic store at `path` (set-based SQL, no Python loops)."""
    con = duckdb.connect(path)
    try:
        for statement in all_ddl():
            con.sql(statement)
        for statement in BUILD:
            con.sql(statement.replace("{n}", str(runs)))
        start = time.perf_counter()
        derived.refresh(con)  # what the writer keeps batch by batch, made once after the bulk load
        print(f"status boundaries of the bulk-loaded snapshots: {time.perf_counter() - start:.1f} s")
        con.sql("CHECKPOINT")
    finally:
        con.close()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(path: str, name: str, kind: str) -> dict:
    """Time one run of report `name` in this process: "runtap" is the whole report path, "sql"
    opens the store read-only, runs its query, fetches the result into polars (`.pl()`, as the
    loader does) and closes; "view" does the same with VIEW_QUERIES[name]; "page" writes the
    HTML report (`name` is "html").
    """
    start, cpu = time.perf_counter(), _cpu_seconds()
    if kind == "runtap":
        run_report(path, name, Filters())
    elif kind == "page":
        with tempfile.TemporaryDirectory() as out:
            write_html(path, os.path.join(out, "report.html"))
    else:
        with open_store(path) as con:
            con.sql("SET enable_progress_bar = false")
            con.sql({"sql": SQL, "view": VIEW_QUERIES, "view_sql": VIEW_SQL}[kind][name]).pl()
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": _cpu_seconds() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_in_child(path: str, name: str, kind: str) -> dict:
    """`measure` in a fresh interpreter, so peak RSS belongs to this one measurement."""
    out = subprocess.run(
        [sys.executable, __file__, "--db", path, "--measure", name, kind],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Build (or reuse) the store, then time every report against its SQL query."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", help="store path (default: a temporary file, removed at the end)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="time only these reports and view queries")
    parser.add_argument("--measure", nargs=2, metavar=("REPORT", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.db, *args.measure)))
        return
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="runtap-bench-"), "bench.duckdb")
    if not os.path.exists(path):
        start = time.perf_counter()
        build_store(path, args.runs)
        print(
            f"built {path}: {args.runs:,} runs in {time.perf_counter() - start:.1f} s, "
            f"{os.path.getsize(path) / 2**20:.0f} MB"
        )
    with open_store(path) as con:
        counts = con.sql("SELECT (SELECT count(*) FROM run_snapshots), (SELECT count(*) FROM exchanges)").fetchall()[0]
    load_before = os.getloadavg()
    print(
        f"run_snapshots {counts[0]:,}, exchanges {counts[1]:,}; median of {args.repeat}, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}"
    )
    reports = [name for name in REPORTS if not args.only or name in args.only]
    views = [name for name in VIEW_QUERIES if not args.only or name in args.only]
    samples: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeat):
        for name in reports:
            for kind in ("runtap", "sql"):
                samples.setdefault((name, kind), []).append(measure_in_child(path, name, kind))
        for name in views:
            for kind in ("view", "view_sql") if name in VIEW_SQL else ("view",):
                samples.setdefault((name, kind), []).append(measure_in_child(path, name, kind))
        if not args.only or "html" in args.only:
            samples.setdefault(("html", "page"), []).append(measure_in_child(path, "html", "page"))

    def median(name: str, kind: str, field: str) -> float:
        return statistics.median(sample[field] for sample in samples[(name, kind)])

    print(
        f"{'report':<12} {'runtap s':>9} {'SQL s':>7} {'ratio':>6} {'runtap CPU s':>12} {'SQL CPU s':>9} "
        f"{'CPU ratio':>9} {'runtap RSS MB':>13} {'SQL RSS MB':>10}"
    )
    for name in reports:
        ours, sql = median(name, "runtap", "wall_s"), median(name, "sql", "wall_s")
        ours_cpu, sql_cpu = median(name, "runtap", "cpu_s"), median(name, "sql", "cpu_s")
        print(
            f"{name:<12} {ours:9.3f} {sql:7.3f} {ours / sql:6.2f} {ours_cpu:12.3f} {sql_cpu:9.3f} "
            f"{ours_cpu / sql_cpu:9.2f} {median(name, 'runtap', 'peak_rss_mb'):13.0f} "
            f"{median(name, 'sql', 'peak_rss_mb'):10.0f}"
        )
    print(f"{'view query':<20} {'s':>7} {'CPU s':>7} {'RSS MB':>7} {'SQL s':>7} {'ratio':>6} {'CPU ratio':>9}  query")
    for name in views:
        wall, cpu = median(name, "view", "wall_s"), median(name, "view", "cpu_s")
        by_hand = ""
        if (name, "view_sql") in samples:
            sql_wall, sql_cpu = median(name, "view_sql", "wall_s"), median(name, "view_sql", "cpu_s")
            by_hand = f"{sql_wall:7.3f} {wall / sql_wall:6.2f} {cpu / sql_cpu:9.2f}"
        print(
            f"{name:<20} {wall:7.3f} {cpu:7.3f} {median(name, 'view', 'peak_rss_mb'):7.0f} {by_hand:>25}  "
            f"{VIEW_QUERIES[name]}"
        )
    if ("html", "page") in samples:
        alone = sum(median(name, "runtap", "wall_s") for name in reports) if len(reports) == len(REPORTS) else None
        print(
            f"html page {median('html', 'page', 'wall_s'):7.3f} s, CPU {median('html', 'page', 'cpu_s'):.3f} s, "
            f"RSS {median('html', 'page', 'peak_rss_mb'):.0f} MB"
            + (f"; the {len(reports)} reports alone: {alone:.3f} s" if alone else "")
        )
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if not args.db:
        shutil.rmtree(os.path.dirname(path))


if __name__ == "__main__":
    main()
