"""StoreWriter against real DuckDB files, with a real second process holding the lock."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import duckdb
import pytest

from runtap.errors import RuntapError
from runtap.store.reader import open_store
from runtap.store.writer import StoreWriter
from tests.store_fixtures import capture, exchange, run_snapshot, step_snapshot

# Holds the file until told to let go (a line on stdin).
HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("locked", flush=True)
sys.stdin.readline()
con.close()
"""


def count(path, table: str) -> int:
    with open_store(str(path)) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def snapshots(n: int, run_id: str = "run_1") -> list[dict]:
    return [run_snapshot(run_id, "in_progress", i / 1000, seq=i) for i in range(n)]


def writer_logs(caplog, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "runtap.store" and r.levelno == level]


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "store.duckdb")


def test_rows_put_are_all_in_the_file_after_close(path):
    writer = StoreWriter(path)
    writer.start()
    capture_id = writer.write_capture(capture(capture_id="cap_x"))
    assert writer.put({"exchanges": [exchange()], "run_snapshots": snapshots(3), "step_snapshots": [step_snapshot()]})
    writer.close()
    assert capture_id == "cap_x"
    assert [count(path, t) for t in ("captures", "exchanges", "run_snapshots", "step_snapshots")] == [1, 1, 3, 1]
    stats = writer.stats()
    assert stats.rows_written["run_snapshots"] == 3 and stats.queued == 0 and stats.dropped == 0


def test_values_are_typed_by_the_schema(path):
    writer = StoreWriter(path)
    writer.start()
    writer.put(
        {
            "run_snapshots": [
                run_snapshot(
                    created_at=1718035200,
                    observed_at="2026-01-01T00:00:01+00:00",
                    raw="not json: a cut body",
                    required_action={"type": "x"},
                )
            ]
        }
    )
    writer.close()
    with open_store(path) as con:
        row = con.execute(
            "SELECT epoch(created_at), epoch(observed_at), raw::VARCHAR, required_action->>'$.type' FROM run_snapshots"
        ).fetchone()
    assert row == (1718035200.0, 1767225601.0, '"not json: a cut body"', "x")


def test_bad_rows_are_rejected_and_counted_the_rest_written(path, caplog):
    writer = StoreWriter(path)
    writer.start()
    assert writer.put(
        {
            "run_snapshots": [*snapshots(2), run_snapshot(no_such_column=1)],
            "exchanges": [exchange(status_code="not a number")],
            "no_such_table": [{}],
        }
    )
    writer.close()
    assert count(path, "run_snapshots") == 2 and count(path, "exchanges") == 0
    assert writer.stats().rejected == 3
    errors = " ".join(r.getMessage() for r in writer_logs(caplog, logging.ERROR))
    assert "no_such_column" in errors and "no_such_table" in errors and "not a number" not in errors


def test_many_rows_go_in_few_batches(path):
    writer = StoreWriter(path, batch_rows=500, batch_seconds=5)
    writer.start()
    for row in snapshots(5000):
        writer.put({"run_snapshots": [row]})
    writer.flush(timeout=30)
    assert count(path, "run_snapshots") == 5000
    assert writer.stats().batches <= 11
    writer.close()


def test_batch_seconds_writes_a_small_batch_without_flush(path):
    writer = StoreWriter(path, batch_rows=500, batch_seconds=0.1)
    writer.start()
    writer.put({"run_snapshots": snapshots(3)})
    deadline = time.monotonic() + 10
    while writer.stats().rows_written["run_snapshots"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count(path, "run_snapshots") == 3
    writer.close()


def test_a_reader_process_holding_the_file_loses_nothing(path):
    writer = StoreWriter(path, batch_rows=100, batch_seconds=0.05)
    writer.start()
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "locked"
        for i in range(20):  # all accepted while the file is still held: put never waits for it
            assert writer.put({"run_snapshots": snapshots(50, f"run_{i}")})
        assert reader.poll() is None and writer.stats().rows_written["run_snapshots"] == 0
        while writer.stats().retries == 0:  # the writer tried, met the lock, and keeps the rows
            time.sleep(0.01)
    finally:
        reader.communicate("release\n", timeout=20)
    writer.flush(timeout=20)
    writer.close()
    stats = writer.stats()
    assert count(path, "run_snapshots") == 1000
    assert stats.retries > 0 and stats.dropped == 0


def test_close_flushes_many_queued_rows(path):
    writer = StoreWriter(path, batch_rows=10**6, batch_seconds=60)
    writer.start()
    for i in range(200):
        writer.put({"run_snapshots": snapshots(100, f"run_{i}")})
    assert writer.stats().rows_written["run_snapshots"] == 0
    writer.close(timeout=30)
    assert count(path, "run_snapshots") == 20_000


def test_queue_limit_warns_once_and_counts_drops(path, caplog):
    caplog.set_level(logging.INFO, logger="runtap.store")
    writer = StoreWriter(path, batch_rows=10**6, batch_seconds=60, max_queued_rows=100)
    writer.start()
    accepted = [writer.put({"run_snapshots": [row]}) for row in snapshots(150)]
    assert accepted.count(True) == 100 and accepted.count(False) == 50
    assert writer.stats().dropped == 50
    warnings = writer_logs(caplog, logging.WARNING)
    assert len(warnings) == 1 and "queue limit" in warnings[0].getMessage()
    writer.close()
    assert count(path, "run_snapshots") == 100
    assert writer.put({"run_snapshots": snapshots(1)}) is False  # closed: dropped, not raised


def test_blocking_put_waits_for_room_instead_of_dropping(path):
    writer = StoreWriter(path, batch_rows=50, batch_seconds=0.05, max_queued_rows=100)
    writer.start()
    for i in range(40):
        assert writer.put({"run_snapshots": snapshots(50, f"run_{i}")}, block=True)
    writer.close()
    assert count(path, "run_snapshots") == 2000 and writer.stats().dropped == 0


def test_unwritable_file_logs_one_error_and_put_never_raises(path, caplog):
    writer = StoreWriter(path, batch_rows=10, batch_seconds=0.02, error_retry_seconds=0.05)
    writer.start()
    os.rename(path, path + ".moved")
    os.mkdir(path)  # the store path is now a directory: every open fails with an I/O error
    try:
        for i in range(5):
            assert writer.put({"run_snapshots": snapshots(10, f"run_{i}")})
        with pytest.raises(RuntapError, match="Is a directory"):
            writer.flush(timeout=0.5)
        assert writer.stats().retries >= 3
    finally:
        os.rmdir(path)
        os.rename(path + ".moved", path)
    writer.flush(timeout=10)  # writable again: the kept rows are written
    writer.close()
    errors = writer_logs(caplog, logging.ERROR)
    assert len(errors) == 1 and "cannot write" in errors[0].getMessage()
    assert count(path, "run_snapshots") == 50


def test_close_gives_up_after_timeout_and_counts_unwritten(path, caplog):
    writer = StoreWriter(path, batch_rows=10, batch_seconds=0.02, error_retry_seconds=0.05)
    writer.start()
    os.remove(path)
    os.mkdir(path)
    writer.put({"run_snapshots": snapshots(7)})
    writer.close(timeout=0.3)
    assert writer.stats().unwritten == 7
    assert any("7 rows not written" in r.getMessage() for r in writer_logs(caplog, logging.ERROR))


def test_a_file_that_is_not_a_runtap_store_fails_at_start(tmp_path):
    other = str(tmp_path / "other.duckdb")
    con = duckdb.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    with pytest.raises(RuntapError, match="not a runtap store"):
        StoreWriter(other).start()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    with pytest.raises(RuntapError, match="not a readable DuckDB file"):
        StoreWriter(str(text)).start()
    with pytest.raises(RuntapError, match="does not exist"):
        StoreWriter(str(tmp_path / "missing" / "s.duckdb")).start()


def test_an_older_store_gains_new_columns_at_start(path):
    con = duckdb.connect(path)
    con.execute("CREATE TABLE runtap_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("CREATE TABLE sse_events (exchange_id VARCHAR, seq INTEGER)")
    con.close()
    writer = StoreWriter(path)
    writer.start()
    writer.put({"sse_events": [{"exchange_id": "e", "seq": 0, "event": "done", "data_bytes": 6}]})
    writer.close()
    with open_store(path) as con:
        assert con.execute("SELECT event, data_bytes FROM sse_events").fetchall() == [("done", 6)]
