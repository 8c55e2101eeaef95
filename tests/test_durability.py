"""Lose nothing a client received, whatever is SIGKILLed: the proxy, its recorder process, or both.

Twenty trials through real processes, one after the other on one store: concurrent SDK clients
(polled runs, streams, tool calls) drive `runtap proxy`, and its target is SIGKILLed when the
clients have received a seeded pseudo-random number of responses (a point in the work, never a
guessed time). Then:

- recorder only: the proxy goes on; it restarts the recorder, which takes what the dead one had
  not written from the journal. Without restarting the proxy, the store gets every exchange the
  clients completed, before and after the kill.
- proxy, or both: the store opens cleanly; a new proxy on the same store applies what the
  journal holds beyond the store, and says how many exchanges it recovered (exactly the
  difference it made to the store). It serves the next trial.

After each trial every exchange a client received a complete response for, in this trial and
all before, is in the store exactly once, counted by x-request-id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter

import pytest

from runtap.demo.harness import RUNTAP, SimulatorProcess, start_proxy
from runtap.store.reader import connect_with_retry
from tests.load_clients import Tally, child_pids, drive, store_request_ids, wait_for_log, wait_until_stored

TRIALS = 20
TARGETS = ("recorder", "proxy", "both")
READY = "recording to"


@pytest.fixture(scope="module")
def sim():
    """One simulator for all trials (fast runs, frequent polls)."""
    with SimulatorProcess("--seed", "5", "--run-ms", "60", "--poll-after-ms", "40") as s:
        yield s


def _exchanges(db: str, *, read_only: bool = False) -> int:
    """Exchanges in the store. Read-write by default: a clean open replays (or discards) the
    killed writer's WAL; read-only while a proxy records into it."""
    con = connect_with_retry(db, read_only=read_only)
    try:
        return con.execute("SELECT count(*) FROM exchanges").fetchone()[0]
    finally:
        con.close()


def _wait_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), f"process {pid} still running after {timeout}s"


def _start(sim, db: str, log: str):
    proxy = start_proxy(sim.url, db, log_path=log)
    wait_for_log(proxy, READY)
    (recorder,) = child_pids(proxy.proc.pid)
    return proxy, recorder


@pytest.mark.timeout(900)
def test_sigkill_loses_no_exchange_a_client_received(sim, tmp_path):
    db = str(tmp_path / "kill.duckdb")
    received = Counter()
    proxy, recorder = _start(sim, db, str(tmp_path / "proxy-0.log"))
    try:
        for trial in range(TRIALS):
            proxy, recorder = _trial(sim, db, tmp_path, trial, proxy, recorder, received)
        assert proxy.stop() == 0
    finally:  # a failed trial leaves no process behind to write into the next run's files
        if proxy.proc.poll() is None:
            proxy.stop(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(recorder, signal.SIGKILL)
    assert not [n for n in os.listdir(db + ".journal") if n.endswith(".seg")], "applied segments are deleted"


def _trial(sim, db: str, tmp_path, trial: int, proxy, recorder: int, received: Counter):
    """One kill and what must hold after it; returns the proxy and recorder that serve on."""
    rng = random.Random(trial)
    target = TARGETS[trial % len(TARGETS)]
    kill_at = rng.randint(5, 45)  # of the ~55 responses the load gets
    victims = {"recorder": [recorder], "proxy": [proxy.proc.pid], "both": [proxy.proc.pid, recorder]}[target]
    tally = Tally()
    tally.when_counted(kill_at, lambda: [os.kill(pid, signal.SIGKILL) for pid in victims])
    asyncio.run(drive(proxy.base_url, 6, 2, tally=tally))
    what = f"trial {trial}: {target} killed after {kill_at} responses"
    assert tally.request_ids.total() >= kill_at, f"{what}: the load ended before the kill"
    received += tally.request_ids

    if target == "recorder":
        assert not tally.errors, (what, tally.errors)  # traffic never depended on the recorder
        missing = wait_until_stored(db, received)  # the same proxy, still running, records them
        log = proxy.log_text()
        assert not missing, f"{what}: {missing.total()} exchanges missing\n{log[-3000:]}"
        assert "exited unexpectedly (killed by SIGKILL); restarting it now" in log, log[-3000:]
        (recorder,) = child_pids(proxy.proc.pid)
    else:
        proxy.proc.wait(30)
        # An orphaned recorder applies what was journaled, then exits; a killed one may still be
        # exiting (and holding the store's lock) under load.
        _wait_gone(recorder)
        before = _exchanges(db)
        left = [n for n in os.listdir(db + ".journal") if n.endswith(".seg")]
        proxy, recorder = _start(sim, db, str(tmp_path / f"proxy-{trial + 1}.log"))
        if left:  # the new recorder says what it recovered once that is in the store
            wait_for_log(proxy, "recovered")
        found = re.search(r"recovered (\d+) exchanges from the journal", proxy.log_text())
        recovered = int(found.group(1)) if found else 0
        assert _exchanges(db, read_only=True) - before == recovered, (what, left, proxy.log_text()[-3000:])

    stored = store_request_ids(db)
    lost = received - stored
    assert not lost, f"{what}: {lost.total()} of {received.total()} exchanges lost"
    assert max(stored.values()) == 1, f"{what}: an exchange was stored twice"
    return proxy, recorder


def test_recover_applies_what_a_crash_left_once_and_refuses_while_a_proxy_records(sim, tmp_path):
    db = str(tmp_path / "recover.duckdb")
    proxy, recorder = _start(sim, db, str(tmp_path / "proxy.log"))
    tally = Tally()
    tally.when_counted(25, lambda: [os.kill(pid, signal.SIGKILL) for pid in (proxy.proc.pid, recorder)])
    asyncio.run(drive(proxy.base_url, 6, 2, tally=tally))
    proxy.proc.wait(30)
    before = _exchanges(db)

    done = subprocess.run([*RUNTAP, "recover", "--db", db], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    recovered = int(re.fullmatch(rf"recovered (\d+) exchanges from {re.escape(db)}.journal into .*\n", done.stdout)[1])
    assert recovered > 0 and _exchanges(db) - before == recovered
    stored = store_request_ids(db)
    assert not tally.request_ids - stored and max(stored.values()) == 1
    again = subprocess.run([*RUNTAP, "recover", "--db", db], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.startswith("nothing to recover"), again.stdout

    proxy, recorder = _start(sim, db, str(tmp_path / "again.log"))
    try:
        busy = subprocess.run([*RUNTAP, "recover", "--db", db], capture_output=True, text=True, timeout=120)
    finally:
        assert proxy.stop() == 0
    lines = busy.stderr.strip().splitlines()
    assert busy.returncode == 2 and len(lines) == 1 and "a runtap proxy is recording to" in lines[0], busy.stderr


def test_fsync_mode_records_everything_and_survives_sigkill(sim, tmp_path):
    """--fsync: Content-Length responses are buffered until their record is synced, streams end
    after it (addon/recorder.py): the same guarantee under SIGKILL."""
    db = str(tmp_path / "fsync.duckdb")
    proxy = start_proxy(sim.url, db, log_path=str(tmp_path / "proxy.log"), extra_args=["--fsync"])
    wait_for_log(proxy, READY)
    (recorder,) = child_pids(proxy.proc.pid)
    tally = Tally()
    tally.when_counted(30, lambda: [os.kill(pid, signal.SIGKILL) for pid in (proxy.proc.pid, recorder)])
    asyncio.run(drive(proxy.base_url, 6, 2, tally=tally))
    proxy.proc.wait(30)
    again = start_proxy(sim.url, db, log_path=str(tmp_path / "again.log"), extra_args=["--fsync"])
    wait_for_log(again, READY)
    clean = asyncio.run(drive(again.base_url, 4, 1))
    assert again.stop() == 0
    assert not clean.errors, clean.errors
    stored = store_request_ids(db)
    received = tally.request_ids + clean.request_ids
    assert not received - stored and max(stored.values()) == 1
