"""Each step's state as the writer keeps it (store/derived.py's `step_state`): what the steps
report reads, so a page need not reduce every step snapshot (1.6 s of CPU of each page on the
benchmark store, 1.1M step snapshots and 100k tool call snapshots).

One row per step seen in `step_snapshots` or `tool_call_snapshots`: the facts of `FACTS` by
STEP_FACTS' rules, `max_k` (the order key of its latest snapshot; NULL: tool calls seen, the
step not yet), its distinct tools and tool call ids as sorted lists (`tools`, `call_ids`) and
what the report reads of them: `tool` (the tools joined with "+") and `tool_calls` (how many).

A batch reads the rows of the steps it has rows of (a scan of `step_id` alone, then those rows
by rowid, as for run_state) and combines them with its own rows: facts by `Fact.merged`, tool
lists by union. A step snapshot ordered at or before the step's latest recomputes that step
from all its rows. Recomputing every step the batch touches from all its rows instead scanned
the step and tool call snapshots as well: ~160 ms of CPU a batch on the benchmark store, twice
this.
"""

from __future__ import annotations

import duckdb

from runtap.store.latest import STEP_FACTS, TOKENS, Fact, order_key, per_object

STEP_STATE = "step_state"
FACTS = ("run_id", "type", "status", *TOKENS, "duration_ms")  # what the steps report reads
# Kept to combine batches: whether any snapshot carried usage, the latest snapshot's order key.
_FACTS = {**STEP_FACTS, "max_k": Fact("aggregate", "max(k)", "greatest({old}, {new})")}
_KEPT = (*FACTS, "with_usage", "max_k")

# Temporary tables of one batch's transaction.
_TOUCHED = "runtap_batch_steps"  # the steps the batch has rows of
_OLD = "runtap_old_steps"  # their rows before it
_LATE = "runtap_late_steps"  # recomputed from all their rows


def columns() -> list[tuple[str, str]]:
    """step_state's columns and DuckDB types."""
    from runtap.store.schema import TABLES  # the snapshot columns' types (schema imports derived)

    types = dict(TABLES["step_snapshots"]) | {"duration_ms": "DOUBLE", "with_usage": "BOOLEAN", "max_k": "HUGEINT"}
    return [
        ("step_id", "VARCHAR"),
        *[(name, types[name]) for name in _KEPT],
        ("tools", "VARCHAR[]"),
        ("call_ids", "VARCHAR[]"),
        ("tool", "VARCHAR"),
        ("tool_calls", "BIGINT"),
    ]


def _tool_lists_sql(tool_calls: str, where: str = "true") -> str:
    """Per step of FROM item `tool_calls` (rows passing `where`): its distinct tools (a function's
    name, or code_interpreter / file_search) and tool call ids, sorted."""
    return f"""SELECT step_id, list_sort(list_distinct(list(tool))) AS tools,
            list_sort(list_distinct(list(tool_call_id))) AS call_ids
        FROM (SELECT step_id, tool_call_id,
                     CASE WHEN type = 'function' THEN coalesce(function_name, 'function') ELSE type END AS tool
              FROM {tool_calls} WHERE step_id IS NOT NULL AND tool_call_id IS NOT NULL AND ({where}))
        GROUP BY step_id"""


_SHOWN = "nullif(array_to_string(tools, '+'), '') AS tool, len(call_ids) AS tool_calls"


def state_sql(where: str = "true") -> str:
    """step_state rows computed from every step and tool call snapshot passing `where` (over
    step_id or run_id)."""
    facts = per_object("step_snapshots", "step_id", _FACTS, _KEPT, where)
    return f"""SELECT *, {_SHOWN} FROM ({facts}) FULL JOIN ({_tool_lists_sql("tool_call_snapshots", where)})
        USING (step_id)"""


def extend(con: duckdb.DuckDBPyConnection, steps: str | None, tool_calls: str | None) -> None:
    """Account for the step snapshots (FROM item `steps`) and tool call snapshots (`tool_calls`)
    just inserted in this transaction; None: the batch had none."""
    batch_steps = f"(SELECT * FROM {steps} WHERE step_id IS NOT NULL)" if steps else "(FROM step_snapshots LIMIT 0)"
    batch_calls = tool_calls or "(FROM tool_call_snapshots LIMIT 0)"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS
        SELECT step_id FROM {batch_steps} UNION SELECT step_id FROM {batch_calls} WHERE step_id IS NOT NULL""")
    rows = f"SELECT rowid FROM {STEP_STATE} WHERE step_id IN (SELECT step_id FROM {_TOUCHED})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_OLD} AS SELECT rowid AS state_row, * FROM {STEP_STATE} WHERE rowid IN ({rows})"
    )
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {_LATE} AS SELECT DISTINCT b.step_id
        FROM {batch_steps} b JOIN {_OLD} o USING (step_id) WHERE {order_key("b")} <= o.max_k""")
    con.execute(f"DELETE FROM {STEP_STATE} WHERE rowid IN (SELECT state_row FROM {_OLD})")
    con.execute(f"INSERT INTO {STEP_STATE} BY NAME {_merged_sql(batch_steps, batch_calls)}")
    if con.execute(f"SELECT count(*) FROM {_LATE}").fetchall()[0][0]:
        con.execute(f"INSERT INTO {STEP_STATE} BY NAME {state_sql(f'step_id IN (SELECT step_id FROM {_LATE})')}")


def _merged_sql(batch_steps: str, batch_calls: str) -> str:
    """The new rows of the touched steps that are not late: their old row (o) combined with the
    batch's facts (f) and tool lists (t)."""
    merged = {name: _FACTS[name].merged(f"o.{name}", f"f.{name}", "f.with_usage") for name in _KEPT}
    facts = [f"CASE WHEN f.step_id IS NULL THEN o.{name} ELSE {expr} END AS {name}" for name, expr in merged.items()]
    lists = [
        f"CASE WHEN o.{c} IS NULL THEN t.{c} WHEN t.{c} IS NULL THEN o.{c}"
        f" ELSE list_sort(list_distinct(list_concat(o.{c}, t.{c}))) END AS {c}"
        for c in ("tools", "call_ids")
    ]
    return f"""SELECT *, {_SHOWN} FROM (
            SELECT step_id, {", ".join(facts)}, {", ".join(lists)}
            FROM (SELECT step_id FROM {_TOUCHED} WHERE step_id NOT IN (SELECT step_id FROM {_LATE}))
            LEFT JOIN {_OLD} o USING (step_id)
            LEFT JOIN ({per_object(batch_steps, "step_id", _FACTS, _KEPT)}) f USING (step_id)
            LEFT JOIN ({_tool_lists_sql(batch_calls)}) t USING (step_id)
        )"""


def source(where: str, stored: bool) -> str:
    """A FROM item of the steps with step snapshots whose rows pass `where` (over run_id): from
    step_state when `stored` (it is current), else computed from the snapshots."""
    return f"(SELECT * FROM {STEP_STATE if stored else f'({state_sql(where)})'} WHERE max_k IS NOT NULL AND ({where}))"
