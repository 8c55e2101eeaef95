"""Keep replay results in the store, so they can be reported on later.

Replay owns three tables, created here with CREATE TABLE IF NOT EXISTS: `replays` (one row per
`runtap replay`), `replay_sessions` (one per session) and `replay_differences` (one per
difference). The store is opened read-write only for the write, retrying while a recording
proxy holds the lock.
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
)


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
    ]
    con = connect_with_retry(db, read_only=False)
    try:
        for statement in DDL:
            con.execute(statement)
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO replays VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                report.replay_id,
                report.target,
                report.started_at,
                report.finished_at,
                len(report.sessions),
                report.passed,
                report.failed,
            ],
        )
        _insert(con, "replay_sessions", sessions)
        _insert(con, "replay_differences", differences)
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
