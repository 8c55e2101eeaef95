"""`runtap demo` end to end, as a user runs it: a real process, a fresh store, a summary."""

from __future__ import annotations

import re
import subprocess
import sys

import duckdb


def test_demo_records_and_summarizes(tmp_path):
    db = tmp_path / "demo.duckdb"
    result = subprocess.run(
        [sys.executable, "-m", "runtap", "demo", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for word in ("gpt-4o", "o3-mini", "cancelled", "failed", "incomplete", "cost_usd", "responses", "cached_tokens"):
        assert word in result.stdout
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 6
    assert con.execute("SELECT count(*) FROM responses").fetchone()[0] == 8
    assert con.execute("SELECT count(*) FROM response_function_calls WHERE output IS NOT NULL").fetchone()[0] >= 1
    assert con.execute("SELECT count(*) FROM captures").fetchone()[0] == 1
    con.close()
    # A second demo appends a new capture and summarizes only its own runs.
    again = subprocess.run(
        [sys.executable, "-m", "runtap", "demo", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    # api, model, count, completed: this capture's two gpt-4o runs, not the store's four
    assert re.search(r"│ runs\s+│ gpt-4o\s+│\s+2 │\s+2 │", again.stdout), again.stdout
    assert re.search(r"│ responses\s+│ gpt-4o-mini\s+│\s+4 │\s+3 │", again.stdout), again.stdout
