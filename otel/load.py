"""The facts a trace is built from, read from the store in one sorted pass, one `Session` per trace.

A session is one thread (key `thread:<id>`). A run the store knows no thread for is a session of
its own (`run:<id>`), and so is an exchange on no thread and no known run (`exchange:<id>`), as in
`recordings.sessions`. Runs, steps, tool calls, status changes and exchanges come from the store's
views and tables (`runs`, `run_steps`, `tool_calls`, `run_transitions`, `exchanges`, and the
snapshot tables for the first and last sightings), filtered as the reports filter: runs by
`analysis.facts.matching_runs`, exchanges by `Filters.exchange_where`. Every time is an integer
of nanoseconds since the epoch (`epoch_ns`), what OpenTelemetry wants.

One query yields every row, sorted by session, so a store of any size is read as a stream and
only one session is in memory at a time. Message content (request bodies, streamed response
bodies, tool arguments and outputs) is not even read unless asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb

from runtap.analysis.facts import ORDER_KEY, TERMINAL, matching_runs
from runtap.analysis.filters import Filters

STEP_TERMINAL = ("completed", "failed", "cancelled", "expired")
# Exchanges whose request body says what the model was asked (content, opt-in).
CONTEXT_OPERATIONS = ("createThread", "createMessage", "createRun", "createThreadAndRun")
_PARTS = ("run", "step", "tool", "transition", "exchange")


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


def session_sql(filters: Filters, *, include_content: bool = False) -> tuple[str, dict]:
    """The one query: columns key, part, run, step, tool, transition, exchange (one struct set per row)."""
    matching, params = matching_runs((), filters)
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
    keys AS (SELECT run_id, 'thread:' || thread_id AS thread_key, 'run:' || run_id AS run_key FROM runs),
    run_keys AS (
        SELECT run_id, coalesce(thread_key, run_key) AS key FROM keys WHERE run_id IN (SELECT run_id FROM matching)
    ),
    seen AS (
        SELECT run_id, min(request_started_at) AS first_request_at,
               min(observed_at) FILTER (WHERE status IN ({_quoted(TERMINAL)})) AS ended_at,
               arg_min(status, {ORDER_KEY}) FILTER (WHERE status IS NOT NULL) AS first_status
        FROM run_snapshots WHERE run_id IN (SELECT run_id FROM matching) GROUP BY run_id
    ),
    requested AS (
        SELECT run_id, max(request_model) AS request_model FROM exchanges
        WHERE operation IN ('createRun', 'createThreadAndRun') AND run_id IS NOT NULL GROUP BY run_id
    ),
    step_seen AS (
        SELECT step_id, min(observed_at) FILTER (WHERE status = 'in_progress') AS in_progress_at,
               min(observed_at) FILTER (WHERE status IN ({_quoted(STEP_TERMINAL)})) AS done_at
        FROM step_snapshots WHERE step_id IS NOT NULL GROUP BY step_id
    ),
    required AS (
        SELECT tool_call_id, min(observed_at) AS required_at FROM tool_call_snapshots
        WHERE source = 'required_action' AND tool_call_id IS NOT NULL GROUP BY tool_call_id
    ),
    submits AS (  -- a function call ends when the client submits its output
        SELECT tool_call_id, min(request_started_at) AS submitted_at FROM (
            SELECT request_started_at,
                   unnest(CASE WHEN json_valid(request_body)
                          THEN json_extract_string(request_body, '$.tool_outputs[*].tool_call_id') END) AS tool_call_id
            FROM exchanges WHERE operation = 'submitToolOutputsToRun'
        ) WHERE tool_call_id IS NOT NULL GROUP BY tool_call_id
    )
    SELECT k.key, 0 AS part, {run} AS run
        FROM runs JOIN run_keys k USING (run_id) JOIN seen USING (run_id) LEFT JOIN requested USING (run_id)
    UNION ALL BY NAME
    SELECT k.key, 1 AS part, {step} AS step
        FROM run_steps JOIN run_keys k USING (run_id) LEFT JOIN step_seen USING (step_id)
    UNION ALL BY NAME
    SELECT k.key, 2 AS part, {tool} AS tool
        FROM tool_calls JOIN run_keys k USING (run_id) LEFT JOIN required USING (tool_call_id)
        LEFT JOIN submits USING (tool_call_id)
    UNION ALL BY NAME
    SELECT k.key, 3 AS part, {transition} AS transition FROM run_transitions JOIN run_keys k USING (run_id)
    UNION ALL BY NAME
    SELECT coalesce('thread:' || e.thread_id, k.thread_key, k.run_key, 'exchange:' || e.exchange_id) AS key,
           4 AS part, {exchange} AS exchange
        FROM (SELECT * FROM exchanges WHERE {exchange_where}) e LEFT JOIN keys k USING (run_id)
    ORDER BY key, part
    """
    return sql, params | exchange_params


def load_sessions(
    con: duckdb.DuckDBPyConnection, filters: Filters, *, include_content: bool = False, chunk: int = 2000
) -> Iterator[Session]:
    """Yield one `Session` per trace, in key order, reading the query's rows in chunks."""
    sql, params = session_sql(filters, include_content=include_content)
    con.execute(sql, params or None)
    columns = [d[0] for d in con.description]
    at = {name: columns.index(name) for name in _PARTS}
    session: Session | None = None
    while rows := con.fetchmany(chunk):
        for row in rows:
            key, part = row[0], _PARTS[row[1]]
            if session is None or session.key != key:
                if session is not None:
                    yield session
                session = Session(key)
            getattr(session, f"{part}s").append(row[at[part]])
    if session is not None:
        yield session
