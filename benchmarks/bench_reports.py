"""Benchmark every `runtap report` against one hand-written DuckDB query computing the same figures.

Builds a synthetic store (default 1,000,000 runs, ~10 run snapshots each) with set-based DuckDB
SQL, then for each report times the runtap path (open store, load, polars report, collect) and a
single SQL query over the same store, in the same process, and prints the ratio and peak RSS.

    .venv/bin/python benchmarks/bench_reports.py [--runs N] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

import duckdb

from analysis import REPORTS, Filters, run_report
from store.reader import open_store
from store.schema import all_ddl

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
