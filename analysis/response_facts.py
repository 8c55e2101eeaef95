"""Per-response facts as DuckDB SQL: the `responses` view's "latest snapshot wins" reduction of
`response_snapshots`, with only the facts a report needs (as analysis/facts.py does for runs,
with the same order key, so runs and responses are reduced by one definition of "latest").
"""

from __future__ import annotations

from runtap.analysis.facts import ORDER_KEY
from runtap.analysis.filters import Filters
from runtap.store.schema import RESPONSE_USAGE

# Statuses a response ends in (the Responses API has no `expired`).
RESPONSE_TERMINAL = ("completed", "failed", "cancelled", "incomplete")
_USAGE = "{" + ", ".join(f"'{c}': {c}" for c in RESPONSE_USAGE) + "}"

# Each fact's aggregate over one response's snapshots (`k` is ORDER_KEY). Identity columns fall
# back to the latest snapshot that has them; `usage` is the token counts of the latest snapshot
# carrying usage, NULL when none did.
RESPONSE_FACTS: dict[str, str] = {
    "model": "arg_max(model, k)",
    "conversation_id": "arg_max(conversation_id, k)",
    "background": "arg_max(background, k)",
    "created_at": "arg_max(created_at, k)",
    "status": "arg_max_null(status, k)",
    "completed_at": "arg_max_null(completed_at, k)",
    "error_code": "arg_max_null(error_code, k)",
    "incomplete_reason": "arg_max_null(incomplete_reason, k)",
    "usage": f"arg_max_null({_USAGE}, k) FILTER (WHERE has_usage)",
    "first_observed_at": "min(observed_at)",
}


def matching_responses(facts: tuple[str, ...], filters: Filters) -> tuple[str, dict]:
    """A CTE `matching_responses`: one row per response passing `filters`, with response_id and
    `facts`; and its params."""
    needed = [name for name in RESPONSE_FACTS if name in facts or name in filters.response_facts]
    columns = "".join(f", {RESPONSE_FACTS[name]} AS {name}" for name in needed)
    where, params = filters.response_where()
    sql = f"""matching_responses AS (
        SELECT * FROM (
            SELECT response_id{columns}
            FROM (SELECT *, {ORDER_KEY} AS k FROM response_snapshots WHERE response_id IS NOT NULL)
            GROUP BY response_id
        ) WHERE {where}
    )"""
    return sql, params


def restrict_responses(filters: Filters) -> str:
    """A predicate keeping rows of responses in `matching_responses`; `true` without filters."""
    return "response_id IN (SELECT response_id FROM matching_responses)" if filters != Filters() else "true"
