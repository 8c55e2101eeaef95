"""Memory and journal: RSS of `runtap proxy` and its recorder, and the journal's size, over 100,000 exchanges.

Load: `wrk` with 4 connections, nine getRun polls for every streamed createRun (SSE through the
stream tap), in slices of `--slice` seconds; during every other slice a reader process holds
the store (as `runtap report` would, for the whole slice), so the journal grows while the
recorder waits. After each slice it prints the exchanges sent so far, both processes' RSS and
the journal's size. Flat RSS means no growth proportional to traffic: the proxy keeps no
per-flow state after a flow ends, and the recorder reads the journal no faster than it writes.
At the end it waits until the recorder has caught up and prints the journal's size then (the
issue-16 bound: a few MB), and checks the store holds every exchange. Without wrk the Python
fallback sends getRun only (and is slower).

    .venv/bin/python benchmarks/bench_memory.py [--exchanges 100000] [--slice 15] [--no-hold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import duckdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loadgen import AUTH, completed_run_path, load, process_tree, rss_kib
from runtap.addon.journal import journal_bytes
from runtap.demo.harness import SimulatorProcess, start_proxy
from runtap.store.reader import connect_with_retry

# A reader holding the store until told to let go (a line on stdin).
HOLD = """
import sys
from runtap.store.reader import connect_with_retry
con = connect_with_retry(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""

# Every 10th request on a connection is a streamed createRun on the same thread.
LUA = """
local n = 0
request = function()
  n = n + 1
  if n %% 10 == 0 then
    return wrk.format("POST", "%(runs)s", {["Content-Type"] = "application/json",
                      ["Authorization"] = "%(auth)s"}, '%(body)s')
  end
  return wrk.format("GET", "%(get)s")
end
"""
BODY = {"assistant_id": "asst_bench", "stream": True, "metadata": {"sim_outcome": "completed"}}


def main() -> None:
    """Drive the exchanges and print an RSS table, growth per 10,000 exchanges, and the count check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=100_000, help="exchanges to record")
    parser.add_argument("--slice", type=float, default=15.0, help="seconds of load between RSS samples")
    parser.add_argument("--no-hold", action="store_true", help="no reader holding the store every other slice")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess("--run-ms", "20", "--event-gap-ms", "1") as sim:
        get = completed_run_path(sim.url)
        script = LUA % {
            "runs": get.rsplit("/", 1)[0],
            "get": get,
            "auth": AUTH["Authorization"],
            "body": json.dumps(BODY),
        }
        db = os.path.join(tmp, "memory.duckdb")
        proxy = start_proxy(sim.url, db)
        time.sleep(2)  # the recorder process starts once the proxy listens
        proxy_pid, *children = process_tree(proxy.proc.pid)
        journal = db + ".journal"
        samples = [(0, rss_kib(proxy_pid), sum(rss_kib(c) for c in children))]
        print(
            f"{'exchanges':>10s} {'proxy RSS MiB':>14s} {'recorder RSS MiB':>17s} {'journal MiB':>12s} "
            f"{'req/s':>7s}  reader",
            flush=True,
        )
        _row(samples[-1], journal_bytes(journal), 0.0, False)
        sent, slices, largest = 0, 0, 0
        try:
            while sent < args.exchanges:
                holding = not args.no_hold and slices % 2 == 1
                holder = _hold(db) if holding else None
                result = load(proxy.url + get, args.slice, 4, wrk_script=script)
                size = journal_bytes(journal)
                if holder is not None:
                    holder.communicate("release\n", timeout=60)
                sent, slices, largest = sent + result.requests, slices + 1, max(largest, size)
                children = process_tree(proxy.proc.pid)[1:]  # the recorder, should it have been restarted
                samples.append((sent, rss_kib(proxy_pid), sum(rss_kib(c) for c in children)))
                _row(samples[-1], size, result.rps, holding)
            caught_up = _wait_caught_up(db, sent)
            after = journal_bytes(journal)
        finally:
            proxy.stop()
        recorded = duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM exchanges").fetchone()[0]
    _summary(samples, recorded, sent)
    print(
        f"journal: largest {largest / 2**20:.1f} MiB (a slice with the store held), "
        f"{after / 2**20:.2f} MiB once the recorder caught up"
        + ("" if caught_up else " (it had NOT caught up after 5 minutes)")
    )


def _hold(db: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _wait_caught_up(db: str, sent: int, timeout: float = 300.0) -> bool:
    """Until the store holds at least what wrk counted (the recorder has applied the journal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        con = connect_with_retry(db, read_only=True)
        try:
            if con.execute("SELECT count(*) FROM exchanges").fetchone()[0] >= sent:
                return True
        finally:
            con.close()
        time.sleep(1)
    return False


def _row(sample: tuple[int, int, int], journal: int, rps: float, holding: bool) -> None:
    sent, proxy, recorder = sample
    print(
        f"{sent:10d} {proxy / 1024:14.1f} {recorder / 1024:17.1f} {journal / 2**20:12.1f} {rps:7.0f}  "
        f"{'held the store' if holding else ''}",
        flush=True,
    )


def _summary(samples: list[tuple[int, int, int]], recorded: int, sent: int) -> None:
    # Growth is judged after warm-up (the first slice fills caches, pools and DuckDB's buffers).
    (n0, p0, r0), (n1, p1, r1) = samples[1], samples[-1]
    per = 10_000 / max(n1 - n0, 1)
    print(
        f"\ngrowth from {n0} to {n1} exchanges: proxy {(p1 - p0) / 1024 * per:+.2f} MiB, "
        f"recorder {(r1 - r0) / 1024 * per:+.2f} MiB per 10,000 exchanges"
    )
    print(
        f"store holds {recorded} exchanges; wrk counted {sent} answered requests "
        "(requests cut at the end of a slice may be recorded without being counted)"
    )


if __name__ == "__main__":
    main()
