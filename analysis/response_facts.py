"""The reports' per-response reduction: the responses a report covers, with only the facts it
reads. The facts and the order that decides "latest" are store.latest's (`RESPONSE_FACTS`), the
same as the `responses` view's, as analysis/facts.py does for runs.
"""

from __future__ import annotations

from runtap.analysis.filters import Filters
from runtap.store.latest import RESPONSE_FACTS, per_object

# Statuses a response ends in (the Responses API has no `expired`).
RESPONSE_TERMINAL = ("completed", "failed", "cancelled", "incomplete")


def matching_responses(facts: tuple[str, ...], filters: Filters) -> tuple[str, dict]:
    """A CTE `matching_responses`: one row per response passing `filters`, with response_id and
    `facts` (names in store.latest.RESPONSE_FACTS); and its params."""
    needed = [name for name in RESPONSE_FACTS if name in facts or name in filters.response_facts]
    where, params = filters.response_where()
    sql = f"""matching_responses AS (
        SELECT * FROM ({per_object("response_snapshots", "response_id", RESPONSE_FACTS, needed)}) WHERE {where}
    )"""
    return sql, params


def restrict_responses(filters: Filters) -> str:
    """A predicate keeping rows of responses in `matching_responses`; `true` without filters."""
    return "response_id IN (SELECT response_id FROM matching_responses)" if filters != Filters() else "true"
