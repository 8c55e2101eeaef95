"""The reports' per-run reduction: the runs a report covers, with only the facts it reads.

Every report input starts from `run_snapshots` reduced to one row per run (10 rows a run, 10M
rows on the benchmark store), so its cost decides the reports' speed. The facts and the order
that decides "latest" are store.latest's, the same as the `runs` view's; what is particular to
reports is asking only for the facts an input groups or sums by (plus those its filters read):
one shared per-run cube of ten facts, grouped by most of them, made `tokens` 4x slower than
its SQL.
"""

from __future__ import annotations

from runtap.analysis.filters import Filters
from runtap.store.latest import RUN_FACTS, per_object

TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")


def matching_runs(facts: tuple[str, ...], filters: Filters) -> tuple[str, dict]:
    """A CTE `matching`: one row per run passing `filters`, with run_id and `facts` (names in
    store.latest.RUN_FACTS); and its params."""
    needed = [name for name in RUN_FACTS if name in facts or name in filters.run_facts]
    where, params = filters.run_where()
    sql = f"""matching AS (
        SELECT * FROM ({per_object("run_snapshots", "run_id", RUN_FACTS, needed)}) WHERE {where}
    )"""
    return sql, params


def restrict(filters: Filters, column: str = "run_id") -> str:
    """A predicate keeping rows of runs in `matching`; `true` (and `matching` unused) without filters."""
    return f"{column} IN (SELECT run_id FROM matching)" if filters != Filters() else "true"
