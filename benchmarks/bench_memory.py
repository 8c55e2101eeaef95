"""Memory: RSS of `runtap proxy` (and its recorder process) across 100,000 recorded exchanges.

Load: `wrk` with 4 connections, nine getRun polls for every streamed createRun (SSE through the
stream tap), in slices of `--slice` seconds; after each slice it prints the exchanges sent so
far and both processes' RSS. Flat means no growth proportional to traffic: the proxy keeps no
per-flow state after a flow ends, and the recorder's queue drains. At the end it checks the
store holds every exchange. Without wrk the Python fallback sends getRun only (and is slower).

    .venv/bin/python benchmarks/bench_memory.py [--exchanges 100000] [--slice 15]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import duckdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loadgen import AUTH, completed_run_path, load, process_tree, rss_kib
from runtap.demo.harness import SimulatorProcess, start_proxy

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
        samples = [(0, rss_kib(proxy_pid), sum(rss_kib(c) for c in children))]
        print(f"{'exchanges':>10s} {'proxy RSS MiB':>14s} {'recorder RSS MiB':>17s} {'req/s':>7s}", flush=True)
        _row(samples[-1], 0.0)
        sent = 0
        try:
            while sent < args.exchanges:
                result = load(proxy.url + get, args.slice, 4, wrk_script=script)
                sent += result.requests
                samples.append((sent, rss_kib(proxy_pid), sum(rss_kib(c) for c in children)))
                _row(samples[-1], result.rps)
        finally:
            proxy.stop()
        recorded = duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM exchanges").fetchone()[0]
    _summary(samples, recorded, sent)


def _row(sample: tuple[int, int, int], rps: float) -> None:
    sent, proxy, recorder = sample
    print(f"{sent:10d} {proxy / 1024:14.1f} {recorder / 1024:17.1f} {rps:7.0f}", flush=True)


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
