"""The DuckDB schema of a runtap store: tables (facts) and views (derived), one source of truth.

Every writer (live addon, ingest) and every reader (reports, replay, serve) uses these names.
Table and view names and the contract columns (README, "Data model") are kept; extra columns are fine.
Times are TIMESTAMPTZ in UTC; durations are DOUBLE milliseconds; JSON is stored as JSON text.
"""

from __future__ import annotations

import pyarrow as pa

from runtap.store.derived import BOUNDARIES, derived_ddl
from runtap.store.intervals import run_status_intervals_sql
from runtap.store.latest import (
    RESPONSE_FACTS,
    RESPONSE_TOKENS,
    RUN_FACTS,
    STEP_FACTS,
    TOKENS,
    Fact,
    keyed,
    per_object,
    status_changes,
)

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
        ("response_id", "VARCHAR"),  # Responses API: the response the exchange is about
        ("conversation_id", "VARCHAR"),  # Conversations API (or a response's conversation)
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
        ("sequence_number", "INTEGER"),  # the event's own sequence_number (Responses streams)
    ],
    # Every observation of a response (Responses API): JSON bodies (create, retrieve/poll,
    # cancel) and stream events that carry the response object.
    "response_snapshots": [
        ("exchange_id", "VARCHAR"),
        ("seq", "INTEGER"),  # position within the exchange (SSE event number; 0 for a JSON body)
        ("request_started_at", "TIMESTAMPTZ"),
        ("observed_at", "TIMESTAMPTZ"),  # proxy clock
        ("source", "VARCHAR"),  # response | sse
        ("event", "VARCHAR"),  # the stream event's type, NULL otherwise
        ("response_id", "VARCHAR"),
        ("conversation_id", "VARCHAR"),
        ("previous_response_id", "VARCHAR"),
        ("model", "VARCHAR"),
        ("status", "VARCHAR"),  # the object's own status field
        ("background", "BOOLEAN"),
        ("created_at", "TIMESTAMPTZ"),  # the API's own timestamps
        ("completed_at", "TIMESTAMPTZ"),
        ("has_usage", "BOOLEAN"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("total_tokens", "BIGINT"),
        ("cached_tokens", "BIGINT"),  # usage.input_tokens_details.cached_tokens
        ("reasoning_tokens", "BIGINT"),  # usage.output_tokens_details.reasoning_tokens
        ("error_code", "VARCHAR"),
        ("error_message", "VARCHAR"),
        ("incomplete_reason", "VARCHAR"),
        ("output_items", "INTEGER"),
        ("raw", "JSON"),  # the response object
    ],
    # Every observation of an item: a response's output (function_call, message, ...), a
    # request's input (function_call_output answering a call), listed input or conversation items.
    "response_items": [
        ("exchange_id", "VARCHAR"),
        ("seq", "INTEGER"),  # SSE event number; 0 otherwise
        ("item_index", "INTEGER"),  # output_index, or position in the list / request
        ("request_started_at", "TIMESTAMPTZ"),
        ("observed_at", "TIMESTAMPTZ"),
        ("source", "VARCHAR"),  # output: response | sse; input: request | input_items; conversation: list | item
        ("event", "VARCHAR"),
        ("response_id", "VARCHAR"),  # the response it is output of (response, sse) or input to (request, input_items)
        ("conversation_id", "VARCHAR"),
        ("item_id", "VARCHAR"),
        ("type", "VARCHAR"),  # message | function_call | function_call_output | ...
        ("role", "VARCHAR"),
        ("status", "VARCHAR"),
        ("call_id", "VARCHAR"),
        ("name", "VARCHAR"),  # function name
        ("arguments", "VARCHAR"),  # streamed argument deltas accumulated
        ("output", "VARCHAR"),  # a function_call_output's output
    ],
}

# `runs` and `run_steps` are one GROUP BY each and `run_transitions` one window, all built from
# store/latest.py (the order of snapshots and "latest snapshot wins"), as are the reports.
# Measured on this machine (2 cores shared with other jobs, so ranges), on 1,000,000 runs x 10
# snapshots, duckdb 2.0: see benchmarks/README.md ("Views").


def _latest_view(
    by: str, table: str, facts: dict[str, Fact], columns: list[str], tokens: tuple[str, ...] = TOKENS
) -> str:
    """One row per `by`: `columns` (facts), the token counts of the latest snapshot with usage, and
    the last exchange, when and how often the object was observed."""
    names = [*columns, *tokens, "last_exchange_id", "first_observed_at", "last_observed_at", "snapshots"]
    return f"SELECT {', '.join([by, *names])} FROM ({per_object(table, by, facts, names)})"


# Tool calls as they appear inside JSON snapshots; one row per call and observation.
_REQUIRED_ACTION_CALLS = """
        SELECT tc->>'$.id' AS tool_call_id, run_id, NULL::VARCHAR AS step_id, tc->>'$.type' AS type,
               tc->>'$.function.name' AS function_name, tc->>'$.function.arguments' AS arguments,
               NULL::VARCHAR AS output, observed_at
        FROM (SELECT run_id, observed_at,
                     unnest(required_action->'$.submit_tool_outputs.tool_calls[*]') AS tc
              FROM run_snapshots WHERE required_action IS NOT NULL)"""
_STEP_CALLS = """
        SELECT tc->>'$.id' AS tool_call_id, run_id, step_id, tc->>'$.type' AS type,
               tc->>'$.function.name' AS function_name, tc->>'$.function.arguments' AS arguments,
               tc->>'$.function.output' AS output, observed_at
        FROM (SELECT run_id, step_id, observed_at, unnest(step_details->'$.tool_calls[*]') AS tc
              FROM step_snapshots WHERE step_details IS NOT NULL)"""

VIEWS: dict[str, str] = {
    "runs": _latest_view(
        "run_id",
        "run_snapshots",
        RUN_FACTS,
        [
            "thread_id",
            "assistant_id",
            "model",
            "status",
            "created_at",
            "started_at",
            "completed_at",
            "expires_at",
            "cancelled_at",
            "failed_at",
            "last_error_code",
            "last_error_message",
            "incomplete_reason",
            "required_action",
        ],
    ),
    "run_steps": _latest_view(
        "step_id",
        "step_snapshots",
        STEP_FACTS,
        [
            "run_id",
            "thread_id",
            "assistant_id",
            "type",
            "status",
            "created_at",
            "completed_at",
            "cancelled_at",
            "failed_at",
            "expired_at",
            "last_error_code",
            "step_details",
        ],
    ),
    # Consecutive distinct statuses of a run; its first observed status is not a transition.
    "run_transitions": f"""
        SELECT run_id, row_number() OVER (PARTITION BY run_id ORDER BY k) AS seq,
               from_status, to_status, observed_at
        FROM ({status_changes()})
    """,
    # One row per stay of a run in a status, with when it began and ended, estimated from the
    # finest evidence recorded, and how sure each estimate is (store/intervals.py has the rules).
    "run_status_intervals": run_status_intervals_sql(),
    # One row per distinct tool_call_id seen anywhere: the normalizer's tool_call_snapshots
    # (which also carry submitted outputs), a run's required_action, a step's step_details
    # (streamed deltas are accumulated into them). step_id stays NULL unless seen in a step.
    "tool_calls": f"""
        WITH seen AS (
            SELECT tool_call_id, run_id, step_id, type, function_name, arguments, output, observed_at
            FROM tool_call_snapshots
            UNION ALL {_REQUIRED_ACTION_CALLS}
            UNION ALL {_STEP_CALLS}
        )
        SELECT tool_call_id,
               max(run_id) AS run_id,
               max(step_id) AS step_id,
               max(type) AS type,
               max(function_name) AS function_name,
               arg_max(arguments, length(arguments)) AS arguments,
               arg_max(output, observed_at) AS output,
               min(observed_at) AS first_observed_at
        FROM seen
        WHERE tool_call_id IS NOT NULL
        GROUP BY tool_call_id
    """,
}


# The Responses API's views, by the runs' definitions (store/latest.py): a response's snapshots in
# the one snapshot order, the latest wins, tokens from the latest snapshot with usage, consecutive
# distinct statuses.
VIEWS["responses"] = _latest_view(
    "response_id",
    "response_snapshots",
    RESPONSE_FACTS,
    [
        "conversation_id",
        "previous_response_id",
        "model",
        "background",
        "created_at",
        "status",
        "completed_at",
        "error_code",
        "error_message",
        "incomplete_reason",
    ],
    tokens=RESPONSE_TOKENS,
)
VIEWS["response_transitions"] = f"""
        SELECT response_id, row_number() OVER (PARTITION BY response_id ORDER BY k) AS seq,
               from_status, to_status, observed_at
        FROM ({status_changes(table="response_snapshots", by="response_id")})
"""
# One row per distinct call_id of a `function_call` item seen anywhere. What the call is (its
# response, name, arguments, status) comes from where a response produced it (its JSON output or
# stream; argument deltas accumulated), latest first, else from wherever it was seen (a
# conversation's items); `output` and `output_response_id` from the `function_call_output` item
# that answered it (the latest one sent, and the response it was sent to).
VIEWS["response_function_calls"] = f"""
        WITH items AS (
            SELECT *, source IN ('response', 'sse') AS produced
            FROM {keyed("response_items", "call_id IS NOT NULL")}
        ), calls AS (
            SELECT call_id,
                   arg_max(response_id, k) FILTER (WHERE produced) AS response_id,
                   coalesce(arg_max(name, k) FILTER (WHERE produced), arg_max(name, k)) AS name,
                   coalesce(arg_max(arguments, k) FILTER (WHERE produced), arg_max(arguments, k)) AS arguments,
                   coalesce(arg_max(item_id, k) FILTER (WHERE produced), arg_max(item_id, k)) AS item_id,
                   coalesce(arg_max(status, k) FILTER (WHERE produced), arg_max(status, k)) AS status,
                   min(observed_at) AS first_observed_at
            FROM items WHERE type = 'function_call' GROUP BY call_id
        ), outputs AS (
            SELECT call_id, arg_max(output, k) AS output,
                   arg_max(response_id, k) FILTER (WHERE source IN ('request', 'input_items')) AS output_response_id
            FROM items WHERE type = 'function_call_output' GROUP BY call_id
        )
        SELECT c.response_id, c.call_id, c.name, c.arguments, c.item_id, c.status,
               o.output, o.output_response_id, c.first_observed_at
        FROM calls c LEFT JOIN outputs o USING (call_id)
"""


# In a store file, `run_status_intervals` reads the boundaries its writer keeps (store/derived.py);
# VIEWS' definition (several stores read as one) computes them from the snapshots.
_STORED_VIEWS = {"run_status_intervals": run_status_intervals_sql(boundaries=BOUNDARIES)}


def table_ddl(name: str) -> str:
    """Return the CREATE TABLE IF NOT EXISTS statement for one table."""
    cols = ",\n    ".join(f"{col} {typ}" for col, typ in TABLES[name])
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    {cols}\n)"


def all_ddl() -> list[str]:
    """Return every statement that creates the store: tables, then views, then the version mark."""
    statements = [table_ddl(name) for name in TABLES] + derived_ddl()
    statements += [f"CREATE OR REPLACE VIEW {name} AS {sql}" for name, sql in {**VIEWS, **_STORED_VIEWS}.items()]
    statements.append("CREATE TABLE IF NOT EXISTS runtap_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    statements.append(f"INSERT OR REPLACE INTO runtap_meta VALUES ('schema_version', '{SCHEMA_VERSION}')")
    return statements


def column_names(name: str) -> list[str]:
    """Return the column names of one table, in order."""
    return [col for col, _ in TABLES[name]]


_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(name: str) -> pa.Schema:
    """Return the Arrow schema a frame for one table must have (JSON columns are text)."""
    return pa.schema([(col, _ARROW_TYPES[typ]) for col, typ in TABLES[name]])


def insert_sql(name: str, frame: str) -> str:
    """Return `INSERT INTO name BY NAME SELECT ... FROM frame` for a frame with `arrow_schema`.

    Text in a JSON column that is not JSON (a cut body, say) is kept as a JSON string.
    """
    exprs = [
        f"CASE WHEN json_valid({col}) THEN {col}::JSON ELSE to_json({col}) END AS {col}" if typ == "JSON" else col
        for col, typ in TABLES[name]
    ]
    return f"INSERT INTO {name} BY NAME SELECT {', '.join(exprs)} FROM {frame}"


def upgrade_ddl(existing: dict[str, set[str]]) -> list[str]:
    """Return ALTER TABLE statements adding the columns a store made by an older runtap lacks.

    `existing` maps each table present in the file to its column names.
    """
    return [
        f"ALTER TABLE {name} ADD COLUMN {col} {typ}"
        for name, columns in TABLES.items()
        if name in existing
        for col, typ in columns
        if col not in existing[name]
    ]
