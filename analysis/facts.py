"""The reports' per-run reduction: the runs a report covers, with only the facts it reads.

Every report input starts from the runs, one row each with the facts it reads. A store file
keeps them (store/derived.py: `run_state`, and the status boundaries and stay sums beside them),
and inputs read that when it covers every snapshot; otherwise (several stores read as one, a
store an older runtap wrote) `run_snapshots` is reduced to one row per run (10 rows a run, 10M
rows on the benchmark store). The facts and the order that decides "latest" are store.latest's,
the same as the `runs` view's; what is particular to reports is asking only for the facts an
input groups or sums by (plus those its filters read): one shared per-run cube of ten facts,
grouped by most of them, made `tokens` 4x slower than its SQL.

A page that reads many inputs at once (`report html`) from a store that does not keep them is
the exception: it reduces the runs once, with every fact its inputs read, into a temporary table
on its connection (`share_run_facts`), and every input given that connection reads it instead of
the snapshots (a store that keeps run_state needs no such table: every input reads it there,
each the columns it needs, the stay totals beside them: `runs_with_stays`); likewise the per-run
stay totals (`share_stay_totals`), which durations and the page's timelines both read, and the
status boundaries under them, whose visits are the
transitions the transitions report counts. The table holds the runs of the page's filters: inputs with other
filters must not share the connection.
"""

from __future__ import annotations

import duckdb

from runtap.analysis.filters import Filters
from runtap.store import derived
from runtap.store.intervals import stay_totals_sql
from runtap.store.latest import RUN_FACTS, per_object

TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
# Per-run facts and stay totals, made once per connection when a page reads them for several inputs.
SHARED_RUN_FACTS = "shared_run_facts"
SHARED_STAY_TOTALS = "shared_stay_totals"
SHARED_BOUNDARIES = "shared_status_boundaries"


def _matching_sql(needed: list[str], filters: Filters, con: duckdb.DuckDBPyConnection | None) -> tuple[str, dict]:
    where, params = filters.run_where()
    if con is not None and derived.current(con):  # each run's facts as the writer keeps them
        return f"SELECT run_id{''.join(', ' + n for n in needed)} FROM {derived.RUN_STATE} WHERE {where}", params
    return f"SELECT * FROM ({per_object('run_snapshots', 'run_id', RUN_FACTS, needed)}) WHERE {where}", params


def _shared_columns(con: duckdb.DuckDBPyConnection | None, table: str) -> set[str] | None:
    """The columns of temporary table `table` on `con`, None when there is none (or no `con`)."""
    if con is None:
        return None
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'temp' AND table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows} or None


def matching_runs(
    facts: tuple[str, ...], filters: Filters, con: duckdb.DuckDBPyConnection | None = None
) -> tuple[str, dict]:
    """A CTE `matching`: one row per run passing `filters`, with run_id and `facts` (names in
    store.latest.RUN_FACTS); and its params. Given `con`, the page's shared per-run table when it
    holds those facts (`share_run_facts`)."""
    needed = [name for name in RUN_FACTS if name in facts or name in filters.run_facts]
    shared = _shared_columns(con, SHARED_RUN_FACTS)
    if shared is not None and set(needed) <= shared:
        return f"matching AS (SELECT * FROM {SHARED_RUN_FACTS})", {}
    sql, params = _matching_sql(needed, filters, con)
    return f"matching AS ({sql})", params


def share_run_facts(con: duckdb.DuckDBPyConnection, facts: tuple[str, ...], filters: Filters) -> None:
    """Reduce the runs `filters` keep to one row each with `facts` once, as a temporary table on
    `con` that `matching_runs(..., con)` then reads for every input asking for some of them.
    Nothing to do when the store keeps each run's facts (store/derived.py): the inputs read them
    there, each only the columns it needs (1M runs: copying the page's facts into the table cost
    more CPU than every input's reads of run_state together)."""
    if derived.current(con):
        return
    needed = [name for name in RUN_FACTS if name in facts or name in filters.run_facts]
    sql, params = _matching_sql(needed, filters, con)
    con.execute(f"CREATE TEMP TABLE {SHARED_RUN_FACTS} AS {sql}", params or None)


def runs_with_stays(
    facts: tuple[str, ...], filters: Filters, con: duckdb.DuckDBPyConnection | None = None
) -> tuple[str, dict]:
    """CTEs `matching` (see `matching_runs`) and `matching_stays`: each of those runs with its
    stay totals' columns (`stay_totals`; NULL for a run without any); and their params."""
    cte, params = matching_runs(facts, filters, con)
    if con is not None and derived.current(con):
        # run_state holds each run's facts beside its stay accumulators: one scan, no join of
        # facts and totals over every run (1M runs: ~0.4 s of CPU). A run without stays has no
        # accumulators (NULL), so NULL totals, as from the join.
        needed = [name for name in RUN_FACTS if name in facts or name in filters.run_facts]
        where, where_params = filters.run_where()
        params = params | where_params
        source = f"(SELECT * FROM {derived.RUN_STATE} WHERE {where})"
        stays = stay_totals_sql(accumulators=source, columns=", ".join(["run_id", *needed]))
    else:
        stays = f"SELECT * FROM matching LEFT JOIN {stay_totals(con, filters)} USING (run_id)"
    return f"{cte}, matching_stays AS ({stays})", params


def restrict(filters: Filters, column: str = "run_id") -> str:
    """A predicate keeping rows of runs in `matching`; `true` (and `matching` unused) without filters."""
    return f"{column} IN (SELECT run_id FROM matching)" if filters != Filters() else "true"


def stay_totals(con: duckdb.DuckDBPyConnection, filters: Filters) -> str:
    """A FROM item of per-run stay totals (store.intervals.stay_totals_sql) of the runs in the
    CTE `matching`: the connection's shared table when `share_stay_totals` made one."""
    if _shared_columns(con, SHARED_STAY_TOTALS) is not None:
        return SHARED_STAY_TOTALS
    return f"({stay_totals_sql(accumulators=derived.accumulators_source(con, restrict(filters)))})"


def share_stay_totals(con: duckdb.DuckDBPyConnection, filters: Filters) -> None:
    """Compute the status boundaries and per-run stay totals of the runs `filters` keep once, as
    temporary tables on `con` that later inputs on this connection read (durations, transitions,
    the page's timelines): the window over every snapshot is the dearest part of each. Nothing
    to do when the store keeps them (store/derived.py): the inputs read its tables."""
    if derived.current(con):
        return
    cte, params = matching_runs((), filters, con)
    boundaries = derived.boundaries_source(con, restrict(filters))
    con.execute(f"CREATE TEMP TABLE {SHARED_BOUNDARIES} AS WITH {cte} SELECT * FROM {boundaries}", params or None)
    totals = stay_totals_sql(accumulators=derived.accumulators_source(con, restrict(filters), SHARED_BOUNDARIES))
    con.execute(f"CREATE TEMP TABLE {SHARED_STAY_TOTALS} AS WITH {cte} {totals}", params or None)


def transitions_of(con: duckdb.DuckDBPyConnection, filters: Filters) -> str:
    """A FROM item of the transitions (from_status, to_status) of the runs in the CTE `matching`:
    the visits that have a from_status, from the shared boundaries when `share_stay_totals` made
    them, else from store.derived.boundaries_source (the store's table, or computed)."""
    shared = _shared_columns(con, SHARED_BOUNDARIES) is not None
    boundaries = SHARED_BOUNDARIES if shared else derived.boundaries_source(con, restrict(filters))
    return f"(SELECT from_status, status AS to_status FROM {boundaries} WHERE from_status IS NOT NULL)"
