"""Store faults under traffic, through a real proxy process: a reader holding the file, the queue
limit, a full disk, SIGTERM and SIGKILL. Each asserts the proxy keeps serving and what the store
holds afterwards.
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

import duckdb
import httpx
import pytest

from runtap.demo.harness import SimulatorProcess, start_proxy
from tests.load_clients import Tally, child_pids, drive, store_request_ids

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


def _wait_for_log(proxy, text: str, timeout: float = 60) -> None:
    """Wait until the proxy has logged `text` (the writer's warnings come after its own waits)."""
    deadline = time.monotonic() + timeout
    while text not in proxy.log_text():
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s:\n{proxy.log_text()[-2000:]}"
        time.sleep(0.1)


def _wait_for_store(db: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(db) and time.monotonic() < deadline:
        time.sleep(0.05)


def _create_runs(base_url: str, n: int) -> list[int]:
    """n createThreadAndRun requests (~12 KB of rows each), one at a time; their HTTP statuses."""
    with httpx.Client(base_url=base_url, headers=KEY, timeout=30) as client:
        return [
            client.post("/threads/runs", json={"assistant_id": "asst_x", "instructions": "x" * 4000}).status_code
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
    _wait_for_log(proxy, "locked by another process")  # the writer warns after waiting 5 s
    _release(holder)
    code = proxy.stop()
    log = proxy.log_text()
    assert code == 0 and not tally.errors, (tally.errors, log)
    stored = store_request_ids(db)
    assert not tally.request_ids - stored and max(stored.values()) == 1
    assert len(tally.runs) == 20 * 3 and sum(tally.request_ids.values()) >= 3 * 20 * 3


def test_queue_limit_drops_with_one_warning_and_keeps_serving(sim, tmp_path):
    db = str(tmp_path / "limited.duckdb")
    # plain mitmdump + the addon script: the option can be set on the command line
    proxy = start_proxy(
        sim.url,
        db,
        plain_mitmdump=True,
        quiet=False,
        log_path=str(tmp_path / "proxy.log"),
        extra_args=["--set", "runtap_max_queued_rows=40"],
    )
    assert _create_runs(proxy.base_url, 3) == [200] * 3
    time.sleep(1)
    holder = _hold_lock(db)
    statuses = _create_runs(proxy.base_url, 60)  # ~3 rows each: far past 40
    _release(holder)
    statuses += _create_runs(proxy.base_url, 3)  # room again after the lock
    code = proxy.stop()
    log = proxy.log_text()
    assert code == 0 and statuses == [200] * 63, log
    assert log.count("is dropping rows") == 1, log  # one warning per episode
    assert "40 rows are waiting to be written (queue limit)" in log
    dropped = int(re.search(r"runtap recorder: \d+ exchanges seen, \d+ rows written, (\d+) dropped", log).group(1))
    assert dropped > 0  # the count the warning points to
    recorded = _exchange_count(db)
    assert 3 + 3 < recorded < 66  # the first and last ones, and as many as fitted in between


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


@pytest.mark.parametrize("kill_recorder", [False, True], ids=["proxy", "proxy+recorder"])
def test_sigkill_loses_at_most_one_batch_window_and_the_file_opens(sim, tmp_path, kill_recorder):
    """SIGKILL of the proxy alone: its recorder writes everything handed over, then exits.
    SIGKILL of both: at most the writer's batch window (0.5 s) plus one write is lost.

    A first load runs to its end and the proxy idles for longer than the window; a second load
    is killed after a fixed number of responses. Everything of the first load must be stored."""
    db = str(tmp_path / "kill.duckdb")
    proxy = start_proxy(sim.url, db, log_path=str(tmp_path / "proxy.log"))
    _wait_for_store(db)
    (recorder,) = child_pids(proxy.proc.pid)
    before = asyncio.run(drive(proxy.base_url, 10, 2))
    assert not before.errors and len(before.runs) == 20
    time.sleep(1.5)  # longer than the batch window plus one write

    def kill():
        for pid in [proxy.proc.pid] + ([recorder] if kill_recorder else []):
            os.kill(pid, signal.SIGKILL)

    during = Tally()
    during.when_counted(60, kill)
    asyncio.run(drive(proxy.base_url, 10, 3, tally=during))
    proxy.proc.wait(10)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{recorder}") and time.monotonic() < deadline:
        time.sleep(0.05)  # the recorder finishes on its own after losing the proxy
    con = duckdb.connect(db)  # read-write: a clean open replays or discards the WAL
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    con.close()
    stored = store_request_ids(db)
    missing = set(before.request_ids) - set(stored)
    assert not missing, f"{len(missing)} of {len(before.request_ids)} exchanges of the first load are missing"
    assert during.errors and max(stored.values()) == 1  # the kill cut the second load; no duplicates
