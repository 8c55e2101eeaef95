"""The reports' per-run reduction: the runs a report covers, with only the facts it reads.

Every report input starts from `run_snapshots` reduced to one row per run (10 rows a run, 10M
rows on the benchmark store), so its cost decides the reports' speed. The facts and the order
that decides "latest" are store.latest's, the same as the `runs` view's; what is particular to
reports is asking only for the facts an input groups or sums by (plus those its filters read):
one shared per-run cube of ten facts, grouped by most of them, made `tokens` 4x slower than
its SQL.
"""

from __future__ import annotations

import duckdb

from runtap.analysis.filters import Filters
from runtap.store.intervals import stay_totals_sql
from runtap.store.latest import RUN_FACTS, per_object

TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
# Per-run stay totals, made once per connection when a page reads them for several inputs.
SHARED_STAY_TOTALS = "shared_stay_totals"


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


def stay_totals(con: duckdb.DuckDBPyConnection, filters: Filters) -> str:
    """A FROM item of per-run stay totals (store.intervals.stay_totals_sql) of the runs in the
    CTE `matching`: the connection's shared table when `share_stay_totals` made one."""
    shared = con.sql(
        f"SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '{SHARED_STAY_TOTALS}'"
    ).fetchall()[0][0]
    return SHARED_STAY_TOTALS if shared else f"({stay_totals_sql(restrict(filters))})"


def share_stay_totals(con: duckdb.DuckDBPyConnection, filters: Filters) -> None:
    """Compute the per-run stay totals of the runs `filters` keep once, as a temporary table on
    `con` that every later input on this connection reads (durations, the page's timelines):
    the window over every snapshot is the dearest part of each."""
    cte, params = matching_runs((), filters)
    sql = f"CREATE TEMP TABLE {SHARED_STAY_TOTALS} AS WITH {cte} {stay_totals_sql(restrict(filters))}"
    con.execute(sql, params or None)
