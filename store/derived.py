"""What the writer derives from each batch, so reports need not derive it from every snapshot:
each run's status boundaries and state (its facts and its stay totals), each step's state, each
run's polls.

Reports reduce 10 snapshots a run to one row per run (store/latest.py's facts) and find every
status boundary with a window over the snapshots (store/intervals.py); on the 1M-run benchmark
store (10M snapshots) that is several seconds of CPU in every report. The writer therefore keeps,
in the same transaction as the snapshots they come from:

- `run_status_boundaries`: `status_boundaries_sql`'s rows, one per visit of a run to a status;
- `run_state`: one row per run with every fact of `RUN_FACTS` (what the `runs` view shows), the
  accumulators of its stay totals (`stay_accumulators_sql`), its last observation with a status
  (`tail_*`: the status, its order key's fields, how many observations with a status so far)
  and `max_k`, the order key of its latest snapshot.

A batch's snapshots of a run that all come after the run's latest snapshot (`max_k`) continue
it: the window runs over the run's tail and the new snapshots only, the boundaries it finds are
appended, and the run's facts and accumulators combine with those of the new snapshots
(`Fact.merged`; sums add, the first visit stays, the last moves). Those are exactly what a
computation over all the run's snapshots gives, because a boundary depends on its own snapshot,
its exchange (written in the same batch: the worker puts an exchange's rows together) and the
observation just before, and every fact is the latest value or an aggregate that combines. A
batch that brings a snapshot ordered at or before the run's latest (a poll answered during a
stream that ended later, say) recomputes that run from all its snapshots.

Likewise for the steps report and the polls per run (the steps' facts took 1.6 s of CPU of each
page on the benchmark store, 1.1M step snapshots; the polls ~0.2 s over 5.75M exchanges):

- `step_state`: one row per step with what the steps report reads (store/step_state.py).
- `run_polls`: each run's getRun exchanges. A batch adds its own: an exchange row is inserted once
  (the journal position commits with it), so the counts add up exactly.

`runtap_meta` key `derived_cover` holds the tables' VERSION and the row counts of `COUNTED`
(run, step and tool call snapshots, exchanges) they account for.
Readers use them only when those equal the tables' counts (`current`), and compute from the
snapshots otherwise: a store written by an older runtap, rows inserted by hand, several stores
read as one (store/multi.py: a run seen by two proxies has observations in both). The writer
rebuilds stale tables when it opens the store (`refresh`).

Cost per batch: one read of `run_state` for the batch's runs (their rows by run_id, then only
those rows' columns by rowid), a delete and insert of those rows, and the window over a few
rows per run: ~75 ms of CPU a batch on a small store, most of it DuckDB planning a dozen
statements; ~130 ms on the 1M-run benchmark store (load 1, batches of 300 snapshots). The steps
and polls add ~85 ms and ~25 ms of the writer thread's CPU there (batches of 500 run, 100 step
and 50 tool call snapshots, 100 exchanges; load 2.5), mostly one scan of each table's ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import duckdb

from runtap.store import step_state
from runtap.store.intervals import (
    OBSERVATION_COLUMNS,
    STAY_STATUSES,
    status_boundaries_sql,
    stay_accumulators_sql,
)
from runtap.store.latest import RUN_FACTS, keyed, order_key, per_object
from runtap.store.step_state import STEP_STATE

if TYPE_CHECKING:
    import pyarrow as pa

BOUNDARIES = "run_status_boundaries"
RUN_STATE = "run_state"
RUN_POLLS = "run_polls"
COVER_KEY = "derived_cover"  # runtap_meta: "VERSION:COUNT:...", the rows of COUNTED the tables account for
VERSION = 2  # of what the tables hold and how: a store with another is rebuilt
# kept by the writer; exports and multi-store reads recompute them
DERIVED = (BOUNDARIES, RUN_STATE, STEP_STATE, RUN_POLLS)
COUNTED = ("run_snapshots", "step_snapshots", "tool_call_snapshots", "exchanges")  # what the tables derive from

_ACCUMULATORS = [
    ("first_status", "VARCHAR"),
    ("first_at", "BIGINT"),
    ("first_u", "DOUBLE"),
    ("last_status", "VARCHAR"),
    ("last_at", "BIGINT"),
    ("last_u", "DOUBLE"),
    *[
        (f"{s}_{part}", t)
        for s in STAY_STATUSES
        for part, t in (("net", "HUGEINT"), ("left", "BIGINT"), ("u", "DOUBLE"))
    ],
]
_TAIL = [
    ("tail_status", "VARCHAR"),
    ("tail_observed_at", "TIMESTAMPTZ"),
    ("tail_request_started_at", "TIMESTAMPTZ"),
    ("tail_seq", "INTEGER"),
    ("tail_n", "BIGINT"),  # observations with a status so far, the tail included
]


def _fact_types() -> list[tuple[str, str]]:
    from runtap.store.schema import TABLES  # the snapshot columns' types (schema imports this module)

    types = dict(TABLES["run_snapshots"])
    special = {
        "ended_at": "TIMESTAMPTZ",
        "with_usage": "BOOLEAN",
        "first_observed_at": "TIMESTAMPTZ",
        "last_observed_at": "TIMESTAMPTZ",
        "snapshots": "BIGINT",
        "last_exchange_id": "VARCHAR",
    }
    return [(name, special.get(name) or types[name]) for name in RUN_FACTS]


def derived_tables() -> dict[str, list[tuple[str, str]]]:
    """The derived tables' columns and DuckDB types."""
    return {
        BOUNDARIES: [
            ("run_id", "VARCHAR"),
            ("n", "BIGINT"),
            ("status", "VARCHAR"),
            ("from_status", "VARCHAR"),
            ("evidence", "VARCHAR"),
            ("lo_us", "BIGINT"),
            ("hi_us", "BIGINT"),
            ("at_us", "BIGINT"),
            ("uncertainty_ms", "DOUBLE"),
        ],
        RUN_STATE: [("run_id", "VARCHAR"), *_fact_types(), *_ACCUMULATORS, *_TAIL, ("max_k", "HUGEINT")],
        STEP_STATE: step_state.columns(),
        RUN_POLLS: [("run_id", "VARCHAR"), ("polls", "BIGINT")],
    }


def derived_ddl() -> list[str]:
    """CREATE TABLE IF NOT EXISTS for the derived tables."""
    return [
        f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c} {t}' for c, t in columns)})"
        for name, columns in derived_tables().items()
    ]


_BOUNDARY_COLUMNS = "run_id, n, status, from_status, evidence, lo_us, hi_us, at_us, uncertainty_ms"
_SET_COVER = f"INSERT OR REPLACE INTO runtap_meta VALUES ('{COVER_KEY}', ?)"
_COUNTS = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in COUNTED)
# Temporary tables of one batch's transaction.
_BATCH = "runtap_batch_snapshots"  # the batch's run snapshots, keyed
_OLD = "runtap_old_state"  # run_state of the batch's runs before it
_LATE = "runtap_late_runs"  # runs recomputed from all their snapshots
_FOUND = "runtap_new_boundaries"
_NEW_STATE = "runtap_new_state"
_POLLS = "runtap_batch_polls"  # the batch's poll counts per run
_OLD_POLLS = "runtap_old_polls"  # those runs' counts before it


def _tails_sql(snapshots: str) -> str:
    """Per run of FROM item `snapshots`: its last observation with a status."""
    # arg_max_null: the last observation's fields as they are, NULLs included (its key is theirs)
    return f"""SELECT run_id, arg_max_null(status, k) AS tail_status, arg_max_null(observed_at, k) AS tail_observed_at,
            arg_max_null(request_started_at, k) AS tail_request_started_at, arg_max_null(seq, k) AS tail_seq,
            count(*) AS tail_n
        FROM {keyed(snapshots, "run_id IS NOT NULL AND status IS NOT NULL")} GROUP BY run_id"""


def _facts_sql(snapshots: str) -> str:
    """Per run of FROM item `snapshots`: every RUN_FACTS fact, and max_k."""
    return f"""SELECT * FROM ({per_object(snapshots, "run_id", RUN_FACTS)})
        JOIN (SELECT run_id, max(k) AS max_k FROM {keyed(snapshots, "run_id IS NOT NULL")} GROUP BY run_id)
        USING (run_id)"""


def state_sql(snapshots: str, boundaries: str) -> str:
    """run_state rows computed from scratch: FROM item `snapshots` (every snapshot of the runs)
    and `boundaries` (every boundary of them)."""
    return f"""SELECT * FROM ({_facts_sql(snapshots)})
        LEFT JOIN ({stay_accumulators_sql(boundaries)}) USING (run_id)
        LEFT JOIN ({_tails_sql(snapshots)}) USING (run_id)"""


def polls_sql(exchanges: str = "exchanges") -> str:
    """Per run: `polls`, its getRun exchanges in FROM item `exchanges`."""
    polled = "operation = 'getRun' AND run_id IS NOT NULL"
    return f"SELECT run_id, count(*) AS polls FROM {exchanges} WHERE {polled} GROUP BY run_id"


def _cover(con: duckdb.DuckDBPyConnection) -> tuple[int, ...] | None:
    """The row counts of COUNTED the tables account for; None: no tables of this VERSION."""
    found = con.execute("SELECT value FROM runtap_meta WHERE key = ?", [COVER_KEY]).fetchall()
    version, *counts = found[0][0].split(":") if found else [""]
    return tuple(map(int, counts)) if version == str(VERSION) and len(counts) == len(COUNTED) else None


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    return tuple(con.execute(_COUNTS).fetchall()[0])


def _set_cover(con: duckdb.DuckDBPyConnection, counts: tuple[int, ...]) -> None:
    con.execute(_SET_COVER, [":".join(map(str, (VERSION, *counts)))])


def refresh(con: duckdb.DuckDBPyConnection) -> bool:
    """Rebuild the derived tables from every snapshot and exchange unless they already cover
    them all; True when it rebuilt. `con` writes (the writer at start-up; the benchmark after a
    bulk load)."""
    if _cover(con) is None:  # a table of another VERSION may have other columns
        for name in DERIVED:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    for statement in derived_ddl():
        con.execute(statement)
    con.execute("SET enable_progress_bar = false")  # a rebuild takes a while; the recorder's stdout is a pipe
    counts = _counts(con)
    if _cover(con) == counts:
        return False
    con.execute("BEGIN")
    for name in DERIVED:
        con.execute(f"DELETE FROM {name}")
    con.execute(f"INSERT INTO {BOUNDARIES} BY NAME SELECT {_BOUNDARY_COLUMNS} FROM ({status_boundaries_sql()})")
    con.execute(f"INSERT INTO {RUN_STATE} BY NAME {state_sql('run_snapshots', BOUNDARIES)}")
    con.execute(f"INSERT INTO {STEP_STATE} BY NAME {step_state.state_sql()}")
    con.execute(f"INSERT INTO {RUN_POLLS} BY NAME {polls_sql()}")
    _set_cover(con, counts)
    con.execute("COMMIT")
    return True


def extend(con: duckdb.DuckDBPyConnection, frames: Mapping[str, pa.Table]) -> None:
    """Account for the rows of `frames` (table -> Arrow frame) just inserted in this transaction."""
    counted = {table: frames[table].num_rows for table in COUNTED if table in frames}
    cover = _cover(con) if counted else None
    if cover is None:  # nothing they derive from; or the writer's start-up refresh makes the tables
        return
    for table in ("run_snapshots", "step_snapshots", "tool_call_snapshots", "exchanges"):
        if table in frames:
            con.register(f"runtap_{table}_frame", frames[table])
    exchanges = "runtap_exchanges_frame" if "exchanges" in frames else None
    if "run_snapshots" in frames:
        _extend_runs(con, "runtap_run_snapshots_frame", exchanges)
    if "step_snapshots" in frames or "tool_call_snapshots" in frames:
        step_state.extend(
            con,
            "runtap_step_snapshots_frame" if "step_snapshots" in frames else None,
            "runtap_tool_call_snapshots_frame" if "tool_call_snapshots" in frames else None,
        )
    if exchanges:
        _extend_polls(con, exchanges)
    _set_cover(con, tuple(count + counted.get(table, 0) for table, count in zip(COUNTED, cover, strict=True)))


def _extend_polls(con: duckdb.DuckDBPyConnection, exchanges: str) -> None:
    """Add the getRun exchanges of FROM item `exchanges` (inserted once: the journal position
    commits with them) to their runs' poll counts."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_POLLS} AS {polls_sql(exchanges)}")
    # The polled runs' rows: one scan of run_id, then those rows by rowid (as for run_state).
    rows = f"SELECT rowid FROM {RUN_POLLS} WHERE run_id IN (SELECT run_id FROM {_POLLS})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_OLD_POLLS} AS SELECT rowid AS row, * FROM {RUN_POLLS} WHERE rowid IN ({rows})"
    )
    con.execute(f"DELETE FROM {RUN_POLLS} WHERE rowid IN (SELECT row FROM {_OLD_POLLS})")
    con.execute(f"""INSERT INTO {RUN_POLLS} BY NAME SELECT run_id, coalesce(o.polls, 0) + n.polls AS polls
        FROM {_POLLS} n LEFT JOIN {_OLD_POLLS} o USING (run_id)""")


def _extend_runs(con: duckdb.DuckDBPyConnection, snapshots: str, exchanges: str | None) -> None:
    """Account for the run snapshots just inserted (FROM item `snapshots`, this transaction) whose
    exchanges' rows are in FROM item `exchanges` (None: the batch had none)."""
    json_facts = [name for name, t in _fact_types() if t == "JSON"]  # text in the batch's frame, as in insert_sql
    json_cast = ", ".join(f"CASE WHEN json_valid({c}) THEN {c}::JSON ELSE to_json({c}) END AS {c}" for c in json_facts)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_BATCH} AS
        SELECT * REPLACE ({json_cast}) FROM {snapshots} WHERE run_id IS NOT NULL""")
    # The one read of run_state: the batch's runs as they were, without the facts the batch
    # replaces anyway (the latest values: reading every run's JSON cost ~0.8 s at 1M runs).
    kept = [c for c, _ in derived_tables()[RUN_STATE] if c not in RUN_FACTS or RUN_FACTS[c].kind != "latest"]
    # Their rows first (a scan of run_id alone), then only those rows' other columns.
    rows = f"SELECT rowid FROM {RUN_STATE} WHERE run_id IN (SELECT run_id FROM {_BATCH})"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_OLD} AS
        SELECT rowid AS state_row, {", ".join(kept)} FROM {RUN_STATE} WHERE rowid IN ({rows})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_LATE} AS SELECT DISTINCT b.run_id
        FROM {_BATCH} b JOIN {_OLD} o USING (run_id) WHERE {order_key("b")} <= o.max_k""")
    on_time = f"run_id NOT IN (SELECT run_id FROM {_LATE})"
    # The runs that continue: the window over their tails and their new observations.
    observations = f"""(
        SELECT run_id, tail_status AS status, tail_observed_at AS observed_at,
               tail_request_started_at AS request_started_at, tail_seq AS seq, NULL::VARCHAR AS exchange_id,
               false AS sse, NULL::BIGINT AS api_us, tail_n - 1 AS n_base, true AS tail
        FROM {_OLD} WHERE tail_status IS NOT NULL AND {on_time}
        UNION ALL BY NAME
        SELECT b.*, coalesce(o.tail_n - 1, 0) AS n_base, false AS tail
        FROM (SELECT {OBSERVATION_COLUMNS} FROM {_BATCH} WHERE status IS NOT NULL AND {on_time}) b
        LEFT JOIN (SELECT run_id, tail_n FROM {_OLD}) o USING (run_id))"""
    found = status_boundaries_sql(observations=observations, exchanges=exchanges or "(FROM exchanges LIMIT 0)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FOUND} AS SELECT {_BOUNDARY_COLUMNS} FROM ({found})")
    con.execute(f"INSERT INTO {BOUNDARIES} BY NAME FROM {_FOUND}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW_STATE} AS {_merged_sql(on_time)}")
    if con.execute(f"SELECT count(*) FROM {_LATE}").fetchall()[0][0]:
        in_late = f"run_id IN (SELECT run_id FROM {_LATE})"
        con.execute(f"DELETE FROM {BOUNDARIES} WHERE {in_late}")
        con.execute(
            f"INSERT INTO {BOUNDARIES} BY NAME SELECT {_BOUNDARY_COLUMNS} FROM ({status_boundaries_sql(in_late)})"
        )
        late_snapshots = f"(SELECT * FROM run_snapshots WHERE {in_late})"
        late_boundaries = f"(SELECT * FROM {BOUNDARIES} WHERE {in_late})"
        con.execute(f"INSERT INTO {_NEW_STATE} BY NAME {state_sql(late_snapshots, late_boundaries)}")
    con.execute(f"DELETE FROM {RUN_STATE} WHERE rowid IN (SELECT state_row FROM {_OLD})")
    con.execute(f"INSERT INTO {RUN_STATE} BY NAME FROM {_NEW_STATE}")


def _merged_sql(on_time: str) -> str:
    """The on-time runs' new state: their old state (o) combined with the batch's facts (f),
    accumulators (a: of the boundaries just found) and tails (t)."""
    facts = [f"{fact.merged(f'o.{name}', f'f.{name}', 'f.with_usage')} AS {name}" for name, fact in RUN_FACTS.items()]
    first = "o.first_status IS NOT NULL"  # the run had a visit before this batch
    last = "a.last_status IS NOT NULL"  # and one in it
    accumulators = [
        *[f"CASE WHEN {first} THEN o.{c} ELSE a.{c} END AS {c}" for c in ("first_status", "first_at", "first_u")],
        *[f"CASE WHEN {last} THEN a.{c} ELSE o.{c} END AS {c}" for c in ("last_status", "last_at", "last_u")],
        *[
            f"CASE WHEN o.{c} IS NULL THEN a.{c} WHEN a.{c} IS NULL THEN o.{c} ELSE o.{c} + a.{c} END AS {c}"
            for s in STAY_STATUSES
            for c in (f"{s}_net", f"{s}_left", f"{s}_u")
        ],
    ]
    moved = "t.run_id IS NOT NULL"  # the batch observed a status of the run (its seq may be NULL)
    tail = [f"CASE WHEN {moved} THEN t.{c} ELSE o.{c} END AS {c}" for c, _ in _TAIL if c != "tail_n"]
    tail.append("nullif(coalesce(o.tail_n, 0) + coalesce(t.tail_n, 0), 0) AS tail_n")  # NULL: no status seen yet
    batch = f"(SELECT * FROM {_BATCH} WHERE {on_time})"
    return f"""SELECT f.run_id, {", ".join(facts)}, {", ".join(accumulators)}, {", ".join(tail)},
            f.max_k AS max_k
        FROM ({_facts_sql(batch)}) f
        LEFT JOIN {_OLD} o USING (run_id)
        LEFT JOIN ({stay_accumulators_sql(_FOUND)}) a USING (run_id)
        LEFT JOIN ({_tails_sql(batch)}) t USING (run_id)"""


def current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store on `con` holds derived tables that account for every row they derive from."""
    try:
        tables = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name IN $names AND database_name = current_database()",
            {"names": list(DERIVED)},
        ).fetchall()[0][0]
        return tables == len(DERIVED) and _cover(con) == _counts(con)
    except duckdb.Error:  # no runtap_meta (several stores read as one)
        return False


def boundaries_source(con: duckdb.DuckDBPyConnection, where: str = "true") -> str:
    """A FROM item of `status_boundaries_sql`'s rows for the runs passing `where` (over run_id):
    the stored table when it is current, else computed from the snapshots."""
    if current(con):
        return f"(SELECT * FROM {BOUNDARIES} WHERE {where})"
    return f"({status_boundaries_sql(where)})"


def accumulators_source(con: duckdb.DuckDBPyConnection, where: str = "true", boundaries: str | None = None) -> str:
    """A FROM item of `stay_accumulators_sql`'s rows for the runs passing `where` (over run_id):
    from run_state when it is current, else from FROM item `boundaries` (those runs' boundaries;
    default: `boundaries_source`)."""
    if current(con):
        return f"(SELECT * FROM {RUN_STATE} WHERE first_status IS NOT NULL AND ({where}))"
    return f"({stay_accumulators_sql(boundaries or boundaries_source(con, where))})"
