"""The facts a trace is built from, read from the store in one sorted pass, one `Session` per trace.

A session is one thread (key `thread:<id>`). A run the store knows no thread for is a session of
its own (`run:<id>`), and so is an exchange on no thread and no known run (`exchange:<id>`), as in
`recordings.sessions`. Runs, steps, tool calls, status changes and exchanges come from the store's
views and tables (`runs`, `run_steps`, `tool_calls`, `run_transitions`, `exchanges`, and the
snapshot tables for the first and last sightings), filtered as the reports filter: runs by
`analysis.facts.matching_runs`, exchanges by `Filters.exchange_where`. Every time is an integer
of nanoseconds since the epoch (`epoch_ns`), what OpenTelemetry wants.

One query yields every row (one JSON object each: a union of structs would carry every part's
fields on every row), sorted by session, and only one session is in Python at a time. DuckDB
holds a pass's rows while it sorts them, so a big store is read in passes, each over the
sessions whose key hashes to it: a pass recomputes the views but sorts only its share.
Measured (benchmarks' synthetic store, 200,000 runs, 3.15M exchanges + snapshots, 1.9M spans;
2 shared cores at load 4-5): loading and building the spans took 158 s and 1.8 GB RSS in one
pass, 127 s and 1.2 GB in two (`ROWS_PER_PASS`), 231 s and 0.9 GB in seven. Message content
(request bodies, streamed response bodies, tool arguments and outputs) is not even read unless
asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb

from runtap.analysis.facts import TERMINAL, matching_runs
from runtap.analysis.filters import Filters
from runtap.store.latest import ORDER_KEY

STEP_TERMINAL = ("completed", "failed", "cancelled", "expired")
# Exchanges whose request body says what the model was asked (content, opt-in).
CONTEXT_OPERATIONS = ("createThread", "createMessage", "createRun", "createThreadAndRun")
_PARTS = ("run", "step", "tool", "transition", "exchange")
ROWS_PER_PASS = 2_000_000  # exchanges + run snapshots per pass


@dataclass(frozen=True)
class Only:
    """Restricts a load to a few runs and exchanges (the live exporter, `live`): the runs named, with
    their steps, tool calls, status changes and exchanges, and the exchanges named. Every source is
    filtered by these ids first, so the cost follows what is loaded, not the store's size."""

    runs: tuple[str, ...] = ()
    exchanges: tuple[str, ...] = ()

    def params(self) -> dict:
        """The query's parameters (typed in the query: an empty list binds too)."""
        return {"only_runs": list(self.runs), "only_exchanges": list(self.exchanges)}


@dataclass
class Session:
    """One trace's facts: rows as dicts with the columns selected below, times in ns."""

    key: str
    runs: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)
    transitions: list[dict] = field(default_factory=list)
    exchanges: list[dict] = field(default_factory=list)

    @property
    def thread_id(self) -> str | None:
        """The thread of this session, None for a thread-less run or exchange."""
        kind, _, value = self.key.partition(":")
        return value if kind == "thread" else None


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _struct(columns: list[str]) -> str:
    """A DuckDB struct literal; `name AS expr` pairs or plain column names."""
    items = []
    for column in columns:
        name, _, expr = column.partition(" := ")
        items.append(f"'{name}': {expr or name}")
    return "{" + ", ".join(items) + "}"


def _ns(*columns: str) -> list[str]:
    return [f"{c} := epoch_ns({c})" for c in columns]


def session_sql(filters: Filters, *, include_content: bool = False, only: Only | None = None) -> tuple[str, dict]:
    """The one query: columns key, part (index in `_PARTS`), row (JSON), for pass `$pass` of `$passes`.

    `only` (without filters): the runs and exchanges it names, whatever else the store holds."""
    matching, params = matching_runs((), filters)
    runs_only = exchanges_only = "true"
    if only is not None:
        if filters != Filters():
            raise ValueError("only= loads named runs and exchanges: no filters with it")
        runs_only = "list_contains($only_runs::VARCHAR[], run_id)"
        exchanges_only = f"(list_contains($only_exchanges::VARCHAR[], exchange_id) OR {runs_only})"
        matching, params = f"matching AS (SELECT DISTINCT run_id FROM run_snapshots WHERE {runs_only})", only.params()
    exchange_where, exchange_params = filters.exchange_where("SELECT run_id FROM matching")
    content = include_content
    run = _struct(
        [
            "run_id",
            "thread_id",
            "assistant_id",
            "model",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "last_error_code",
            "last_error_message",
            "incomplete_reason",
            "first_status",
            "request_model",
            *_ns("created_at", "first_observed_at", "last_observed_at", "first_request_at", "ended_at"),
        ]
    )
    step = _struct(
        [
            "step_id",
            "run_id",
            "type",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "last_error_code",
            *_ns("created_at", "completed_at", "failed_at", "cancelled_at", "expired_at"),
            *_ns("first_observed_at", "in_progress_at", "done_at"),
        ]
    )
    tool = _struct(
        [
            "tool_call_id",
            "run_id",
            "step_id",
            "type",
            "function_name",
            f"arguments := {'arguments' if content else 'NULL::VARCHAR'}",
            f"output := {'output' if content else 'NULL::VARCHAR'}",
            *_ns("first_observed_at", "required_at", "submitted_at"),
        ]
    )
    transition = _struct(["run_id", "seq", "from_status", "to_status", *_ns("observed_at")])
    bodies = (
        f"request_body := CASE WHEN operation IN ({_quoted(CONTEXT_OPERATIONS)}) THEN request_body END",
        "response_body := CASE WHEN streamed THEN response_body END",
    )
    exchange = _struct(
        [
            "exchange_id",
            "capture_id",
            "operation",
            "method",
            "url",
            "path",
            "thread_id",
            "run_id",
            "step_id",
            "status_code",
            "duration_ms",
            "ttfb_ms",
            "streamed",
            "is_poll",
            "error",
            "x_request_id",
            "openai_processing_ms",
            "sse_events",
            *_ns("request_started_at", "response_started_at", "first_byte_at", "response_ended_at"),
            *(bodies if content else ("request_body := NULL::VARCHAR", "response_body := NULL::VARCHAR")),
        ]
    )
    sql = f"""
    WITH {matching},
    keys AS (SELECT run_id, 'thread:' || thread_id AS thread_key, 'run:' || run_id AS run_key FROM runs
             WHERE {runs_only}),
    run_keys AS (
        SELECT * FROM (SELECT run_id, coalesce(thread_key, run_key) AS key FROM keys
                       WHERE run_id IN (SELECT run_id FROM matching))
        WHERE hash(key) % $passes = $pass
    ),
    seen AS (
        SELECT run_id, min(request_started_at) AS first_request_at,
               min(observed_at) FILTER (WHERE status IN ({_quoted(TERMINAL)})) AS ended_at,
               arg_min(status, {ORDER_KEY}) FILTER (WHERE status IS NOT NULL) AS first_status
        FROM run_snapshots WHERE run_id IN (SELECT run_id FROM matching) AND {runs_only} GROUP BY run_id
    ),
    requested AS (
        SELECT run_id, max(request_model) AS request_model FROM exchanges
        WHERE operation IN ('createRun', 'createThreadAndRun') AND run_id IS NOT NULL AND {runs_only}
        GROUP BY run_id
    ),
    step_seen AS (
        SELECT step_id, min(observed_at) FILTER (WHERE status = 'in_progress') AS in_progress_at,
               min(observed_at) FILTER (WHERE status IN ({_quoted(STEP_TERMINAL)})) AS done_at
        FROM step_snapshots WHERE step_id IS NOT NULL AND {runs_only} GROUP BY step_id
    ),
    required AS (
        SELECT tool_call_id, min(observed_at) AS required_at FROM tool_call_snapshots
        WHERE source = 'required_action' AND tool_call_id IS NOT NULL AND {runs_only} GROUP BY tool_call_id
    ),
    submits AS (  -- a function call ends when the client submits its output
        SELECT tool_call_id, min(request_started_at) AS submitted_at FROM (
            SELECT request_started_at,
                   unnest(CASE WHEN json_valid(request_body)
                          THEN json_extract_string(request_body, '$.tool_outputs[*].tool_call_id') END) AS tool_call_id
            FROM exchanges WHERE operation = 'submitToolOutputsToRun' AND {runs_only}
        ) WHERE tool_call_id IS NOT NULL GROUP BY tool_call_id
    )
    SELECT k.key, 0 AS part, to_json({run}) AS row
        FROM (SELECT * FROM runs WHERE {runs_only}) JOIN run_keys k USING (run_id) JOIN seen USING (run_id)
        LEFT JOIN requested USING (run_id)
    UNION ALL
    SELECT k.key, 1 AS part, to_json({step}) AS row
        FROM (SELECT * FROM run_steps WHERE {runs_only}) JOIN run_keys k USING (run_id)
        LEFT JOIN step_seen USING (step_id)
    UNION ALL
    SELECT k.key, 2 AS part, to_json({tool}) AS row
        FROM (SELECT * FROM tool_calls WHERE {runs_only}) JOIN run_keys k USING (run_id)
        LEFT JOIN required USING (tool_call_id)
        LEFT JOIN submits USING (tool_call_id)
    UNION ALL
    SELECT k.key, 3 AS part, to_json({transition}) AS row FROM (SELECT * FROM run_transitions WHERE {runs_only})
        JOIN run_keys k USING (run_id)
    UNION ALL
    SELECT * FROM (
        SELECT coalesce('thread:' || e.thread_id, k.thread_key, k.run_key, 'exchange:' || e.exchange_id) AS key,
               4 AS part, to_json({exchange}) AS row
        FROM (SELECT * FROM exchanges WHERE {exchange_where} AND {exchanges_only}) e LEFT JOIN keys k USING (run_id)
    ) WHERE hash(key) % $passes = $pass
    ORDER BY key, part
    """
    return sql, params | exchange_params


def passes_for(con: duckdb.DuckDBPyConnection) -> int:
    """How many passes keep each one near `ROWS_PER_PASS` rows."""
    (rows,) = con.execute("SELECT (SELECT count(*) FROM exchanges) + (SELECT count(*) FROM run_snapshots)").fetchone()
    return max(1, math.ceil(rows / ROWS_PER_PASS))


def load_sessions(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    *,
    include_content: bool = False,
    passes: int | None = None,
    chunk: int = 2000,
    only: Only | None = None,
) -> Iterator[Session]:
    """Yield one `Session` per trace: pass by pass, in key order within a pass (`only`: a few)."""
    sql, params = session_sql(filters, include_content=include_content, only=only)
    con.execute("SET enable_progress_bar = false")  # DuckDB draws one on long queries otherwise
    passes = passes or passes_for(con)
    for number in range(passes):
        con.execute(sql, params | {"passes": passes, "pass": number})
        session: Session | None = None
        while rows := con.fetchmany(chunk):
            for key, part, row in rows:
                if session is None or session.key != key:
                    if session is not None:
                        yield session
                    session = Session(key)
                getattr(session, f"{_PARTS[part]}s").append(json.loads(row))
        if session is not None:
            yield session
