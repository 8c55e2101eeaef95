"""The DuckDB schema of a runtap store: tables (facts) and views (derived), one source of truth.

Every writer (live addon, ingest) and every reader (reports, replay, serve) uses these names.
Table and view names and the columns listed in DESIGN.md are contract; extra columns are fine.
Times are TIMESTAMPTZ in UTC; durations are DOUBLE milliseconds; JSON is stored as JSON text.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# (column, DuckDB type). Order matters only for readability: writers insert BY NAME.
TABLES: dict[str, list[tuple[str, str]]] = {
    "captures": [
        ("capture_id", "VARCHAR"),
        ("started_at", "TIMESTAMPTZ"),
        ("upstream", "VARCHAR"),
        ("mode", "VARCHAR"),
        ("tool_version", "VARCHAR"),
        ("source", "VARCHAR"),  # "proxy", or the file an ingest read
    ],
    "exchanges": [
        ("exchange_id", "VARCHAR"),  # the mitmproxy flow id: stable across flow files
        ("capture_id", "VARCHAR"),
        ("operation", "VARCHAR"),  # OpenAPI operationId, e.g. createRun
        ("method", "VARCHAR"),
        ("url", "VARCHAR"),
        ("path", "VARCHAR"),
        ("thread_id", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("step_id", "VARCHAR"),
        ("status_code", "INTEGER"),
        ("request_started_at", "TIMESTAMPTZ"),
        ("response_started_at", "TIMESTAMPTZ"),  # response headers received
        ("first_byte_at", "TIMESTAMPTZ"),  # first response body byte (streams)
        ("response_ended_at", "TIMESTAMPTZ"),
        ("duration_ms", "DOUBLE"),  # request start -> response end
        ("ttfb_ms", "DOUBLE"),  # request start -> response headers
        ("streamed", "BOOLEAN"),
        ("is_poll", "BOOLEAN"),  # the SDK's X-Stainless-Poll-Helper
        ("request_model", "VARCHAR"),  # model override in the request body, if any
        ("request_headers", "JSON"),  # secrets redacted
        ("response_headers", "JSON"),  # secrets redacted
        ("request_body", "VARCHAR"),
        ("response_body", "VARCHAR"),  # decoded; raw SSE text for streams
        ("error", "VARCHAR"),  # transport or parse error; NULL when none
        ("x_request_id", "VARCHAR"),
        ("openai_processing_ms", "DOUBLE"),
        ("sse_events", "INTEGER"),
    ],
    "run_snapshots": [
        ("exchange_id", "VARCHAR"),
        ("seq", "INTEGER"),  # position within the exchange (list index or SSE event number)
        ("request_started_at", "TIMESTAMPTZ"),  # of the exchange: orders ties of observed_at
        ("observed_at", "TIMESTAMPTZ"),  # proxy clock
        ("source", "VARCHAR"),  # response | list | sse | request
        ("event", "VARCHAR"),  # SSE event name, NULL otherwise
        ("run_id", "VARCHAR"),
        ("thread_id", "VARCHAR"),
        ("assistant_id", "VARCHAR"),
        ("status", "VARCHAR"),  # the object's own status field
        ("model", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),  # the API's own timestamps from here on
        ("started_at", "TIMESTAMPTZ"),
        ("expires_at", "TIMESTAMPTZ"),
        ("cancelled_at", "TIMESTAMPTZ"),
        ("failed_at", "TIMESTAMPTZ"),
        ("completed_at", "TIMESTAMPTZ"),
        ("has_usage", "BOOLEAN"),
        ("prompt_tokens", "BIGINT"),
        ("completion_tokens", "BIGINT"),
        ("total_tokens", "BIGINT"),
        ("last_error_code", "VARCHAR"),
        ("last_error_message", "VARCHAR"),
        ("incomplete_reason", "VARCHAR"),
        ("required_action", "JSON"),
        ("raw", "JSON"),
    ],
    "step_snapshots": [
        ("exchange_id", "VARCHAR"),
        ("seq", "INTEGER"),
        ("request_started_at", "TIMESTAMPTZ"),
        ("observed_at", "TIMESTAMPTZ"),
        ("source", "VARCHAR"),
        ("event", "VARCHAR"),
        ("step_id", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("thread_id", "VARCHAR"),
        ("assistant_id", "VARCHAR"),
        ("type", "VARCHAR"),  # message_creation | tool_calls
        ("status", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("completed_at", "TIMESTAMPTZ"),
        ("cancelled_at", "TIMESTAMPTZ"),
        ("failed_at", "TIMESTAMPTZ"),
        ("expired_at", "TIMESTAMPTZ"),  # spec name; the hosted API sent expires_at
        ("has_usage", "BOOLEAN"),
        ("prompt_tokens", "BIGINT"),
        ("completion_tokens", "BIGINT"),
        ("total_tokens", "BIGINT"),
        ("last_error_code", "VARCHAR"),
        ("step_details", "JSON"),  # with streamed tool-call deltas accumulated
        ("raw", "JSON"),
    ],
    "tool_call_snapshots": [
        ("exchange_id", "VARCHAR"),
        ("seq", "INTEGER"),
        ("observed_at", "TIMESTAMPTZ"),
        ("source", "VARCHAR"),  # required_action | step
        ("run_id", "VARCHAR"),
        ("step_id", "VARCHAR"),  # NULL when seen in required_action only
        ("tool_call_id", "VARCHAR"),
        ("type", "VARCHAR"),  # function | code_interpreter | file_search
        ("function_name", "VARCHAR"),
        ("arguments", "VARCHAR"),
        ("output", "VARCHAR"),
    ],
    "sse_events": [
        ("exchange_id", "VARCHAR"),
        ("seq", "INTEGER"),
        ("event", "VARCHAR"),
        ("received_at", "TIMESTAMPTZ"),
        ("object_id", "VARCHAR"),
        ("object_type", "VARCHAR"),
        ("data_bytes", "INTEGER"),
    ],
}

# Snapshot order: observation time, then the exchange, then the position in its stream.
_SNAPSHOT_ORDER = "observed_at, request_started_at, exchange_id, seq"

VIEWS: dict[str, str] = {
    "runs": f"""
        WITH ordered AS (
            SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY {_SNAPSHOT_ORDER} DESC) AS rn_desc
            FROM run_snapshots WHERE run_id IS NOT NULL
        ), latest AS (
            SELECT * FROM ordered WHERE rn_desc = 1
        ), usage_latest AS (
            SELECT run_id, prompt_tokens, completion_tokens, total_tokens FROM (
                SELECT run_id, prompt_tokens, completion_tokens, total_tokens,
                       row_number() OVER (PARTITION BY run_id ORDER BY {_SNAPSHOT_ORDER} DESC) AS rn
                FROM run_snapshots WHERE run_id IS NOT NULL AND has_usage
            ) WHERE rn = 1
        ), agg AS (
            SELECT run_id, min(observed_at) AS first_observed_at, max(observed_at) AS last_observed_at,
                   count(*) AS snapshots,
                   max(thread_id) AS any_thread_id, max(assistant_id) AS any_assistant_id,
                   max(model) AS any_model
            FROM run_snapshots WHERE run_id IS NOT NULL GROUP BY run_id
        )
        SELECT l.run_id,
               coalesce(l.thread_id, a.any_thread_id) AS thread_id,
               coalesce(l.assistant_id, a.any_assistant_id) AS assistant_id,
               coalesce(l.model, a.any_model) AS model,
               l.status, l.created_at, l.started_at, l.completed_at,
               u.prompt_tokens, u.completion_tokens, u.total_tokens,
               l.expires_at, l.cancelled_at, l.failed_at,
               l.last_error_code, l.last_error_message, l.incomplete_reason,
               a.first_observed_at, a.last_observed_at, a.snapshots,
               l.exchange_id AS last_exchange_id
        FROM latest l
        JOIN agg a USING (run_id)
        LEFT JOIN usage_latest u USING (run_id)
    """,
    "run_steps": f"""
        WITH ordered AS (
            SELECT *, row_number() OVER (PARTITION BY step_id ORDER BY {_SNAPSHOT_ORDER} DESC) AS rn_desc
            FROM step_snapshots WHERE step_id IS NOT NULL
        ), usage_latest AS (
            SELECT step_id, prompt_tokens, completion_tokens, total_tokens FROM (
                SELECT step_id, prompt_tokens, completion_tokens, total_tokens,
                       row_number() OVER (PARTITION BY step_id ORDER BY {_SNAPSHOT_ORDER} DESC) AS rn
                FROM step_snapshots WHERE step_id IS NOT NULL AND has_usage
            ) WHERE rn = 1
        )
        SELECT o.step_id, o.run_id, o.thread_id, o.assistant_id, o.type, o.status,
               u.prompt_tokens, u.completion_tokens, u.total_tokens,
               o.created_at, o.completed_at, o.cancelled_at, o.failed_at, o.expired_at,
               o.last_error_code, o.step_details, o.observed_at AS last_observed_at
        FROM ordered o LEFT JOIN usage_latest u USING (step_id)
        WHERE o.rn_desc = 1
    """,
    "run_transitions": f"""
        WITH seqd AS (
            SELECT run_id, status, observed_at, request_started_at, exchange_id, seq,
                   lag(status) OVER (PARTITION BY run_id ORDER BY {_SNAPSHOT_ORDER}) AS prev_status
            FROM run_snapshots WHERE run_id IS NOT NULL AND status IS NOT NULL
        )
        SELECT run_id,
               row_number() OVER (PARTITION BY run_id ORDER BY {_SNAPSHOT_ORDER}) AS seq,
               prev_status AS from_status, status AS to_status, observed_at
        FROM seqd
        WHERE prev_status IS NOT NULL AND prev_status <> status
    """,
    "tool_calls": """
        SELECT tool_call_id,
               max(run_id) AS run_id,
               max(step_id) AS step_id,
               max(type) AS type,
               max(function_name) AS function_name,
               arg_max(arguments, length(coalesce(arguments, ''))) AS arguments,
               max(output) AS output,
               min(observed_at) AS first_observed_at
        FROM tool_call_snapshots
        WHERE tool_call_id IS NOT NULL
        GROUP BY tool_call_id
    """,
}


def table_ddl(name: str) -> str:
    """Return the CREATE TABLE IF NOT EXISTS statement for one table."""
    cols = ",\n    ".join(f"{col} {typ}" for col, typ in TABLES[name])
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    {cols}\n)"


def all_ddl() -> list[str]:
    """Return every statement that creates the store: tables, then views, then the version mark."""
    statements = [table_ddl(name) for name in TABLES]
    statements += [f"CREATE OR REPLACE VIEW {name} AS {sql}" for name, sql in VIEWS.items()]
    statements.append("CREATE TABLE IF NOT EXISTS runtap_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    statements.append(
        f"INSERT OR REPLACE INTO runtap_meta VALUES ('schema_version', '{SCHEMA_VERSION}')"
    )
    return statements


def column_names(name: str) -> list[str]:
    """Return the column names of one table, in order."""
    return [col for col, _ in TABLES[name]]
