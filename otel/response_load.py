"""The Responses API's part of the one query `load.session_sql` runs: responses, their function
calls and status changes, and the session key of each response.

A response's session (trace) is its conversation (`conversation:<id>`) when it has one, else its
chain of `previous_response_id` (`chain:<first id>`, the first response of the chain, followed
back through the store; a chain whose first response was never recorded is named after the id the
earliest recorded one points to). A standalone response is a chain of one. The key depends only on
the response and the responses before it, so a response keeps its trace as the chain grows (and
`runtap proxy --otlp` sends it with the ids a later `runtap export` gives).

Rows (times in ns, as in `load`):
- response: the `responses` view's facts, the create request's start (`first_request_at`), the
  first terminal sighting (`ended_at`), the first status seen, the model the request named, and
  with content the create request's body and the latest response object;
- call: one per `response_function_calls` row whose response (else the response its output went
  to) is loaded: from its first sighting to the first request that carried its
  `function_call_output` (`answered_at`), with the producing response's end for calls never answered;
- response_transition: `response_transitions`.
"""

from __future__ import annotations

from runtap.analysis.filters import Filters
from runtap.analysis.response_facts import RESPONSE_TERMINAL, matching_responses
from runtap.store.latest import ORDER_KEY

# Parts of the session query, after the runs' five (load._PARTS).
PARTS = ("response", "call", "response_transition")
MAX_CHAIN = 100_000  # a guard against a cycle of previous_response_id (the API cannot make one)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def response_ctes(filters: Filters, *, include_content: bool, only: bool) -> tuple[str, dict]:
    """CTEs `matching_responses`, `response_keys` (response_id, key), `response_seen`, `answers`,
    `loaded_calls`; and their params. `only`: the responses in `$only_responses` (and the calls
    they produced or answered), whatever the filters."""
    if only:
        matching = (
            "matching_responses AS (SELECT DISTINCT response_id FROM response_snapshots"
            " WHERE list_contains($only_responses::VARCHAR[], response_id))"
        )
        params: dict = {}
    elif filters.assistants or filters.threads:  # they select runs: no response matches
        matching, params = "matching_responses AS (SELECT NULL::VARCHAR AS response_id WHERE false)", {}
    else:
        matching, params = matching_responses((), filters)
    content = f", arg_max(raw, {ORDER_KEY}) AS raw" if include_content else ", NULL::VARCHAR AS raw"
    sql = f"""{matching},
    loaded_calls AS (
        SELECT * FROM response_function_calls
        WHERE response_id IN (SELECT response_id FROM matching_responses)
           OR (response_id IS NULL AND output_response_id IN (SELECT response_id FROM matching_responses))
           {"OR output_response_id IN (SELECT response_id FROM matching_responses)" if only else ""}
    ),
    response_links AS (
        SELECT response_id, max(previous_response_id) AS prev, max(conversation_id) AS conv
        FROM response_snapshots WHERE previous_response_id IS NOT NULL OR conversation_id IS NOT NULL
        GROUP BY response_id
    ),
    walk(origin, node, conv, depth) AS (
        SELECT response_id, response_id, NULL::VARCHAR, 0 FROM (
            SELECT response_id FROM matching_responses
            UNION SELECT response_id FROM loaded_calls WHERE response_id IS NOT NULL
            UNION SELECT output_response_id FROM loaded_calls WHERE output_response_id IS NOT NULL
        )
        UNION ALL
        SELECT w.origin, l.prev, l.conv, w.depth + 1 FROM walk w JOIN response_links l ON l.response_id = w.node
        WHERE w.conv IS NULL AND w.node IS NOT NULL AND w.depth < {MAX_CHAIN}
    ),
    response_keys AS (
        SELECT origin AS response_id,
               CASE WHEN max(conv) IS NOT NULL THEN 'conversation:' || max(conv)
                    ELSE 'chain:' || arg_max(node, depth) FILTER (WHERE node IS NOT NULL) END AS key
        FROM walk GROUP BY origin
    ),
    response_seen AS (
        SELECT response_id, min(request_started_at) AS first_request_at,
               min(observed_at) FILTER (WHERE status IN ({_quoted(RESPONSE_TERMINAL)})) AS ended_at,
               max(observed_at) AS last_seen_at,
               arg_min(status, {ORDER_KEY}) FILTER (WHERE status IS NOT NULL) AS first_status {content}
        FROM response_snapshots
        WHERE response_id IN (SELECT response_id FROM response_keys) GROUP BY response_id
    ),
    response_requests AS (
        SELECT response_id, max(request_model) AS request_model, bool_or(streamed) AS streamed,
               {"arg_min(request_body, request_started_at)" if include_content else "NULL::VARCHAR"} AS request_body
        FROM exchanges
        WHERE operation = 'createResponse' AND response_id IN (SELECT response_id FROM matching_responses)
        GROUP BY response_id
    ),
    answers AS (  -- a function call ends when a request carries its output
        SELECT call_id, min(observed_at) AS answered_at FROM response_items
        WHERE type = 'function_call_output' AND source = 'request' AND call_id IN (SELECT call_id FROM loaded_calls)
        GROUP BY call_id
    )"""
    return sql, params


def response_selects(struct, ns, include_content: bool) -> str:
    """The three UNION ALL parts (part numbers 5, 6, 7) with the session key; `struct`/`ns` build rows."""
    response = struct(
        [
            "response_id",
            "conversation_id",
            "previous_response_id",
            "model",
            "status",
            "background",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "error_code",
            "error_message",
            "incomplete_reason",
            "first_status",
            "request_model",
            "streamed",
            "request_body",
            "raw",
            *ns("created_at", "first_observed_at", "last_observed_at", "first_request_at", "ended_at"),
        ]
    )
    call = struct(
        [
            "call_id",
            "output_response_id",
            "name",
            "status",
            "item_id",
            f"arguments := {'arguments' if include_content else 'NULL::VARCHAR'}",
            f"output := {'output' if include_content else 'NULL::VARCHAR'}",
            "response_id := c.response_id",
            "response_ended_at := epoch_ns(coalesce(s.ended_at, s.last_seen_at))",
            *ns("first_observed_at", "answered_at"),
        ]
    )
    transition = struct(["response_id", "seq", "from_status", "to_status", *ns("observed_at")])
    return f"""
    SELECT k.key, 5 AS part, to_json({response}) AS row
        FROM (SELECT * FROM responses WHERE response_id IN (SELECT response_id FROM matching_responses))
        JOIN response_keys k USING (response_id) JOIN response_seen USING (response_id)
        LEFT JOIN response_requests USING (response_id)
        WHERE hash(k.key) % $passes = $pass
    UNION ALL
    SELECT k.key, 6 AS part, to_json({call}) AS row
        FROM loaded_calls c JOIN response_keys k ON k.response_id = coalesce(c.response_id, c.output_response_id)
        LEFT JOIN answers USING (call_id) LEFT JOIN response_seen s ON s.response_id = c.response_id
        WHERE hash(k.key) % $passes = $pass
    UNION ALL
    SELECT k.key, 7 AS part, to_json({transition}) AS row
        FROM (SELECT * FROM response_transitions WHERE response_id IN (SELECT response_id FROM matching_responses))
        JOIN response_keys k USING (response_id)
        WHERE hash(k.key) % $passes = $pass"""
