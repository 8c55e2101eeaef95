"""Streaming: time to the first SSE event of a streamed createRun, directly vs through the proxies.

Each request POSTs `stream: true` on a keep-alive connection and stops the clock at the first
`data:` line; the rest of the stream is read to its end before the next request. Targets are
interleaved request by request, so noise hits them alike. Target (issue 7): runtap adds at most
5 ms at p50 over the direct figure.

    .venv/bin/python benchmarks/bench_stream.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from http.client import HTTPConnection
from urllib.parse import urlsplit

import duckdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loadgen import AUTH
from runtap.demo.harness import SimulatorProcess, start_proxy

TARGETS = ("direct", "mitmdump", "runtap")
BODY = b'{"assistant_id": "asst_bench", "stream": true, "metadata": {"sim_outcome": "completed"}}'


def _first_event_ms(conn: HTTPConnection, path: str) -> float:
    start = time.perf_counter()
    conn.request("POST", path, body=BODY, headers={**AUTH, "Content-Type": "application/json"})
    resp = conn.getresponse()
    while not resp.readline().startswith(b"data:"):
        pass
    elapsed = (time.perf_counter() - start) * 1000
    resp.read()  # the rest of the stream
    return elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    """Measure and print p50/p99 time to first event per target and the added p50."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="streamed runs per target")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess("--run-ms", "40", "--event-gap-ms", "2") as sim:
        db = os.path.join(tmp, "stream.duckdb")
        proxies = {"mitmdump": start_proxy(sim.url, None, plain_mitmdump=True), "runtap": start_proxy(sim.url, db)}
        try:
            bases = {"direct": sim.url, **{name: p.url for name, p in proxies.items()}}
            conns = {t: HTTPConnection(urlsplit(b).hostname, urlsplit(b).port, timeout=10) for t, b in bases.items()}
            conns["direct"].request("POST", "/v1/threads", body=b"{}", headers=AUTH)
            thread = __import__("json").loads(conns["direct"].getresponse().read())["id"]
            path = f"/v1/threads/{thread}/runs"
            times: dict[str, list[float]] = {t: [] for t in TARGETS}
            for t in TARGETS:  # warm-up
                _first_event_ms(conns[t], path)
            for _ in range(args.requests):
                for t in TARGETS:
                    times[t].append(_first_event_ms(conns[t], path))
        finally:
            for proxy in proxies.values():
                proxy.stop()
        recorded = (
            duckdb.connect(db, read_only=True)
            .execute("SELECT count(*), sum(sse_events) FROM exchanges WHERE streamed")
            .fetchone()
        )
    print(f"time to first SSE event, {args.requests} streamed runs per target ({os.cpu_count()} CPUs)")
    print(f"{'target':10s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s}")
    for t in TARGETS:
        print(f"{t:10s} {statistics.median(times[t]):8.2f} {_pct(times[t], 0.9):8.2f} {_pct(times[t], 0.99):8.2f}")
    added = statistics.median(times["runtap"]) - statistics.median(times["direct"])
    print(f"\nruntap p50 added over direct: {added:+.2f} ms (target <= +5 ms)  {'OK' if added <= 5 else 'MISSED'}")
    print("(plain mitmdump buffers a response until it ends: its figure is the whole stream)")
    print(
        f"runtap p50 added over plain mitmdump: "
        f"{statistics.median(times['runtap']) - statistics.median(times['mitmdump']):+.2f} ms"
    )
    print(
        f"runtap recorded {recorded[0]} streamed exchanges with {recorded[1]} SSE events "
        f"({args.requests + 1} streams sent)"
    )


if __name__ == "__main__":
    main()
