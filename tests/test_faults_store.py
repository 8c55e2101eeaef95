"""Store faults under traffic, through a real proxy process: a reader holding the file, the journal
limit, a full disk, SIGTERM. Each asserts the proxy keeps serving and what the store holds
afterwards. SIGKILL of the proxy and of its recorder: tests/test_durability.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections import Counter

import duckdb
import httpx
import pytest

from runtap.addon.journal import SEGMENT_BYTES, journal_bytes, segments
from runtap.demo.harness import SimulatorProcess, start_proxy
from tests.load_clients import Tally, child_pids, drive, store_request_ids, wait_for_log, wait_until_stored

KEY = {"Authorization": "Bearer sk-store-faults"}
# Holds the store's lock until told to let go (a line on stdin): tests release it at a point in
# the work, never after a guessed time.
HOLD_LOCK = """
import sys
from runtap.store.reader import connect_with_retry
con = connect_with_retry(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


@pytest.fixture(scope="module")
def sim():
    """One simulator process for the module (fast runs, frequent polls)."""
    with SimulatorProcess("--seed", "3", "--run-ms", "60", "--poll-after-ms", "40") as s:
        yield s


def _hold_lock(db: str) -> subprocess.Popen:
    """A reader process holding the store's lock; `_release` lets go."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _release(holder: subprocess.Popen) -> None:
    holder.communicate("release\n", timeout=30)


def _wait_for_store(db: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(db) and time.monotonic() < deadline:
        time.sleep(0.05)


def _create_runs(base_url: str, n: int, size: int = 4000) -> list[int]:
    """n createThreadAndRun requests (~3 x `size` bytes of rows each), one at a time; their HTTP statuses."""
    with httpx.Client(base_url=base_url, headers=KEY, timeout=30) as client:
        return [
            client.post("/threads/runs", json={"assistant_id": "asst_x", "instructions": "x" * size}).status_code
            for _ in range(n)
        ]


def _exchange_count(db: str) -> int:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM exchanges").fetchone()[0]
    finally:
        con.close()


def test_reader_holding_the_file_loses_nothing(sim, tmp_path):
    db = str(tmp_path / "held.duckdb")
    proxy = start_proxy(sim.url, db, log_path=str(tmp_path / "proxy.log"))
    _create_runs(proxy.base_url, 1)
    time.sleep(1)  # the first batch makes the file
    holder = _hold_lock(db)
    tally = asyncio.run(drive(proxy.base_url, 20, 3))  # the proxy serves while rows wait
    wait_for_log(proxy, "locked by another process")  # the writer warns after waiting 5 s
    _release(holder)
    code = proxy.stop()
    log = proxy.log_text()
    assert code == 0 and not tally.errors, (tally.errors, log)
    stored = store_request_ids(db)
    assert not tally.request_ids - stored and max(stored.values()) == 1
    assert len(tally.runs) == 20 * 3 and sum(tally.request_ids.values()) >= 3 * 20 * 3


def test_journal_limit_stops_recording_with_one_error_keeps_serving_and_resumes(sim, tmp_path):
    """While the store stays locked the journal grows; past `runtap_journal_limit` new exchanges are
    not recorded (one error line, a count at shutdown), traffic passes, and recording resumes once
    the recorder has caught up."""
    db = str(tmp_path / "limited.duckdb")
    # plain mitmdump + the addon script: the option can be set on the command line
    proxy = start_proxy(
        sim.url,
        db,
        plain_mitmdump=True,
        quiet=False,
        log_path=str(tmp_path / "proxy.log"),
        extra_args=["--set", "runtap_journal_limit=1"],
    )
    assert _create_runs(proxy.base_url, 3, size=40_000) == [200] * 3
    _wait_for_store(db)
    holder = _hold_lock(db)
    statuses = _create_runs(proxy.base_url, 40, size=40_000)  # ~80 KB of journal each: far past 1 MB
    wait_for_log(proxy, "are NOT recorded until it catches up")
    _release(holder)
    wait_for_log(proxy, "recording resumes")
    statuses += _create_runs(proxy.base_url, 3, size=40_000)
    code = proxy.stop()
    log = proxy.log_text()
    assert code == 0 and statuses == [200] * 43, log
    assert log.count("are NOT recorded") == 1, log  # one error per episode
    dropped = int(re.search(r"(\d+) exchanges were not recorded", log).group(1))
    recorded = _exchange_count(db)
    assert dropped > 0 and recorded + dropped == 46  # the count the error points to
    assert recorded > 3 + 3  # the first and last ones, and as many as the limit held


def test_disk_full_logs_a_clear_error_keeps_serving_and_resumes(sim, tmp_path):
    """A file-size limit on the recorder process makes every write fail like a full disk."""
    db = str(tmp_path / "full.duckdb")
    proxy = start_proxy(sim.url, db, log_path=str(tmp_path / "proxy.log"))
    _create_runs(proxy.base_url, 1)
    time.sleep(1)
    (recorder,) = child_pids(proxy.proc.pid)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # No write may reach past 32 KiB: the WAL of a batch and the store file's new blocks fail
    # ("File too large"), the proxy's log (a few lines) is still written.
    resource.prlimit(recorder, resource.RLIMIT_FSIZE, (32 * 1024, hard))
    statuses = _create_runs(proxy.base_url, 150)
    time.sleep(2.5)  # a retry fails too
    full_log = proxy.log_text()
    resource.prlimit(recorder, resource.RLIMIT_FSIZE, (hard, hard))  # space freed
    time.sleep(2.5)  # the next retry succeeds
    statuses += _create_runs(proxy.base_url, 2)
    code = proxy.stop()
    log = proxy.log_text()
    assert statuses == [200] * 152 and code == 0, log
    assert "File too large" in full_log and "recording resumes" in full_log, full_log
    assert "writable again" in log
    assert log.count("cannot write to") == 1  # once per distinct error, not once per retry
    assert _exchange_count(db) == 153  # nothing lost


@pytest.mark.parametrize("plain_mitmdump", [False, True], ids=["runtap proxy", "mitmdump -s addon/script.py"])
def test_sigterm_under_load_flushes_everything_completed(sim, tmp_path, plain_mitmdump):
    """One shutdown for both entry points: the addon drains the exchanges in flight, then flushes."""
    db = str(tmp_path / "term.duckdb")
    proxy = start_proxy(sim.url, db, plain_mitmdump=plain_mitmdump, log_path=str(tmp_path / "proxy.log"))
    _wait_for_store(db)

    # SIGTERM after 150 of the ~600 responses 40 clients x 3 sessions need: load is in flight.
    tally = Tally()
    tally.when_counted(150, lambda: proxy.proc.send_signal(signal.SIGTERM))
    asyncio.run(drive(proxy.base_url, 40, 3, tally=tally))
    code = proxy.proc.wait(60)
    assert code == 0, proxy.log_text()
    assert tally.errors  # clients were cut off by the stop, so the load was really in flight
    stored = store_request_ids(db)
    lost = tally.request_ids - stored
    assert not lost, (
        f"{sum(lost.values())} of {sum(tally.request_ids.values())} completed exchanges lost\n{proxy.log_text()}"
    )
    assert sum(tally.request_ids.values()) >= 150


def test_the_journal_stays_bounded_with_a_reader_holding_the_store_now_and_then(sim, tmp_path):
    """2,000 polls, every other 500 of them while a reader holds the store: the journal grows while
    the store is locked, then shrinks to about one segment once the recorder has caught up.
    (benchmarks/bench_memory.py does the same over 100,000 exchanges.)"""
    db = str(tmp_path / "bounded.duckdb")
    proxy = start_proxy(sim.url, db, log_path=str(tmp_path / "proxy.log"))
    wait_for_log(proxy, "recording to")
    received, largest = Counter(), 0
    with httpx.Client(base_url=proxy.base_url, headers=KEY, timeout=30) as client:
        run = client.post("/threads/runs", json={"assistant_id": "asst_x"}).json()
        path = f"/threads/{run['thread_id']}/runs/{run['id']}"
        for block in range(4):
            holder = _hold_lock(db) if block % 2 else None
            for _ in range(500):
                response = client.get(path)
                assert response.status_code == 200
                received[response.headers["x-request-id"]] += 1
            largest = max(largest, journal_bytes(db + ".journal"))
            if holder is not None:
                _release(holder)
    missing = wait_until_stored(db, received)
    size, numbers = journal_bytes(db + ".journal"), segments(db + ".journal")
    assert proxy.stop() == 0
    assert not missing, f"{missing.total()} of {received.total()} polls not recorded"
    assert numbers[-1] >= 3, numbers  # ~4 MB went through 1 MB segments
    assert largest > SEGMENT_BYTES and size <= 2 * SEGMENT_BYTES, (largest, size)
