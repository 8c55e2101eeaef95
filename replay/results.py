"""Keep replay results in the store, so they can be reported on later.

Replay owns four tables, created here with CREATE TABLE IF NOT EXISTS: `replays` (one row per
`runtap replay`, with the API it spoke), `replay_sessions` (one per session; a skipped one has
its reason), `replay_differences` (one per difference; what a migration could not compare is a
row of severity `not comparable`) and `replay_costs` (a migration's tokens and cost per model,
old and new). Columns added since a table was made are added to it first. The store is opened
read-write only for the write, retrying while a recording proxy holds the lock.
"""

from __future__ import annotations

import json

import polars as pl

from runtap.replay.runner import ReplayReport
from runtap.store.reader import connect_with_retry

DDL = (
    """CREATE TABLE IF NOT EXISTS replays (
        replay_id VARCHAR, target VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        sessions INTEGER, passed INTEGER, failed INTEGER)""",
    """CREATE TABLE IF NOT EXISTS replay_sessions (
        replay_id VARCHAR, thread_id VARCHAR, replayed_thread_id VARCHAR, passed BOOLEAN,
        steps INTEGER, failures INTEGER, warnings INTEGER, duration_ms DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS replay_differences (
        replay_id VARCHAR, thread_id VARCHAR, step_index INTEGER, step_name VARCHAR,
        path VARCHAR, severity VARCHAR, message VARCHAR, recorded JSON, replayed JSON)""",
    """CREATE TABLE IF NOT EXISTS replay_costs (
        replay_id VARCHAR, model VARCHAR, runs INTEGER, responses INTEGER,
        old_input_tokens BIGINT, new_input_tokens BIGINT, old_output_tokens BIGINT, new_output_tokens BIGINT,
        new_cached_tokens BIGINT, old_cost_usd DOUBLE, new_cost_usd DOUBLE, cost_change DOUBLE,
        runs_without_usage INTEGER, responses_without_usage INTEGER)""",
    "ALTER TABLE replays ADD COLUMN IF NOT EXISTS api VARCHAR",
    "ALTER TABLE replays ADD COLUMN IF NOT EXISTS skipped INTEGER",
    "ALTER TABLE replay_sessions ADD COLUMN IF NOT EXISTS skipped VARCHAR",
    "ALTER TABLE replay_sessions ADD COLUMN IF NOT EXISTS not_comparable INTEGER",
)
NOT_COMPARABLE = "not comparable"


def save_report(db: str | None, report: ReplayReport) -> None:
    """Append one replay's results to the store's replay tables (nothing when `db` is None)."""
    if db is None:
        return
    sessions = [
        {
            "replay_id": report.replay_id,
            "thread_id": s.thread_id,
            "replayed_thread_id": s.replayed_thread_id,
            "passed": s.passed,
            "steps": len(s.steps),
            "failures": sum(d.severity == "failure" for d in s.all_differences()),
            "warnings": sum(d.severity == "warning" for d in s.all_differences()),
            "duration_ms": s.duration_ms,
            "skipped": s.skipped,
            "not_comparable": len(s.not_comparable),
        }
        for s in report.sessions
    ]
    differences = [
        {
            "replay_id": report.replay_id,
            "thread_id": s.thread_id,
            "step_index": index,
            "step_name": name,
            "path": d.path,
            "severity": d.severity,
            "message": d.message,
            "recorded": json.dumps(d.recorded, default=str),
            "replayed": json.dumps(d.replayed, default=str),
        }
        for s in report.sessions
        for index, name, diffs in [(r.step.index, r.step.name, r.differences) for r in s.steps]
        + [(None, "session", s.differences)]
        for d in diffs
    ] + [
        {
            "replay_id": report.replay_id,
            "thread_id": s.thread_id,
            "step_index": n.step_index,
            "step_name": n.operation,
            "path": f"$.operations.{n.operation}",
            "severity": NOT_COMPARABLE,
            "message": n.reason,
        }
        for s in report.sessions
        for n in s.not_comparable
    ]
    replay = {
        "replay_id": report.replay_id,
        "target": report.target,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "sessions": len(report.sessions),
        "passed": report.passed,
        "failed": report.failed,
        "api": report.api,
        "skipped": report.skipped,
    }
    con = connect_with_retry(db, read_only=False)
    try:
        for statement in DDL:
            con.execute(statement)
        con.execute("BEGIN")
        _insert(con, "replays", [replay])
        _insert(con, "replay_sessions", sessions)
        _insert(con, "replay_differences", differences)
        _insert(con, "replay_costs", [{"replay_id": report.replay_id, **row} for row in report.costs])
        con.execute("COMMIT")
    finally:
        con.close()


def _insert(con, table: str, rows: list[dict]) -> None:
    """Insert rows by name in one statement (never row by row)."""
    if not rows:
        return
    con.register("replay_rows", pl.DataFrame(rows, infer_schema_length=None).to_arrow())
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM replay_rows")
    finally:
        con.unregister("replay_rows")
