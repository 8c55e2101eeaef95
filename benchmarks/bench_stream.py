"""Streaming: time to the first SSE event of a streamed createRun, directly vs through the proxies.

Each request POSTs `stream: true` on a keep-alive connection and stops the clock at the first
`data:` line; the rest of the stream is read to its end before the next request. Targets are
interleaved request by request, so machine noise hits them alike:

- direct: the simulator itself;
- relay: a bare asyncio TCP relay (one extra hop, no HTTP): the floor for any proxy;
- mitmdump: plain mitmdump streaming every response (`stream_large_bodies=1`), no addon:
  what mitmproxy itself adds;
- runtap: `runtap proxy` (streams runs routes through its tap, journals each exchange).

`--first-event-ms 40` (the default) makes the upstream answer 40 ms after the request
(`runtap simulate --latency 40`), so every process on the path has gone idle by then, as with
a real model. Afterwards the runtap requests are split into where their time went, from the
client's clock and the timestamps runtap recorded (one clock: all on this machine):

    client -> proxy      request sent .. request_started_at (the proxy has read the request)
    proxy -> upstream    request_started_at .. response_started_at (response headers read),
                         minus the direct time to the response headers: what the proxy adds on
                         the way there and for the headers on the way back
    headers -> tap       response_started_at .. first_byte_at (the first chunk passes the tap),
                         minus the direct gap between headers and first event (the simulator's)
    tap -> client        first_byte_at .. the client has the first event

Target (issue 16): runtap adds at most 2 ms at p50 over direct.

    .venv/bin/python benchmarks/bench_stream.py [--requests 300] [--first-event-ms 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection
from urllib.parse import urlsplit

import duckdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loadgen import AUTH
from runtap.demo.harness import SimulatorProcess, free_port, start_proxy, wait_for_port

TARGETS = ("direct", "relay", "mitmdump", "runtap")
BODY = b'{"assistant_id": "asst_bench", "stream": true, "metadata": {"sim_outcome": "completed"}}'


def _first_event(conn: HTTPConnection, path: str) -> tuple[float, float, float, str]:
    """(sent at, headers at, first event at) on the wall clock, and the x-request-id."""
    sent = time.time()
    conn.request("POST", path, body=BODY, headers={**AUTH, "Content-Type": "application/json"})
    resp = conn.getresponse()
    headers = time.time()
    while not resp.readline().startswith(b"data:"):
        pass
    first = time.time()
    resp.read()  # the rest of the stream
    return sent, headers, first, resp.getheader("x-request-id", "")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _relay(listen: int, target: int) -> None:
    """A bare TCP relay: every connection to `listen` piped to `target` (run in its own process)."""

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
        finally:
            writer.close()

    async def handle(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    """Measure and print p50/p90/p99 time to first event per target, and runtap's breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="streamed runs per target")
    parser.add_argument("--first-event-ms", type=int, default=40, help="upstream latency before the response")
    parser.add_argument("--relay", nargs=2, type=int, metavar=("LISTEN", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        _relay(*args.relay)
        return
    sim_args = ("--run-ms", "40", "--event-gap-ms", "2", "--latency", str(args.first_event_ms))
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(*sim_args) as sim:
        db = os.path.join(tmp, "stream.duckdb")
        relay_port = free_port()
        relay = subprocess.Popen([sys.executable, __file__, "--relay", str(relay_port), str(sim.port)])
        wait_for_port("127.0.0.1", relay_port, 30)
        streaming = ["--set", "stream_large_bodies=1"]
        proxies = {
            "mitmdump": start_proxy(sim.url, None, plain_mitmdump=True, extra_args=streaming),
            "runtap": start_proxy(sim.url, db),
        }
        time.sleep(3)  # runtap's recorder process starts once the proxy listens
        try:
            bases = {"direct": sim.url, "relay": f"http://127.0.0.1:{relay_port}"}
            bases |= {name: p.url for name, p in proxies.items()}
            conns = {t: HTTPConnection(urlsplit(b).hostname, urlsplit(b).port, timeout=10) for t, b in bases.items()}
            conns["direct"].request("POST", "/v1/threads", body=b"{}", headers=AUTH)
            thread = json.loads(conns["direct"].getresponse().read())["id"]
            path = f"/v1/threads/{thread}/runs"
            runs: dict[str, list[tuple[float, float, float, str]]] = {t: [] for t in TARGETS}
            for t in TARGETS:  # warm-up
                _first_event(conns[t], path)
            for _ in range(args.requests):
                for t in TARGETS:
                    runs[t].append(_first_event(conns[t], path))
        finally:
            for proxy in proxies.values():
                proxy.stop()
            relay.kill()
            relay.wait()
        con = duckdb.connect(db, read_only=True)
        stamps = {
            rid: times
            for rid, *times in con.execute(
                "SELECT x_request_id, epoch(request_started_at), epoch(response_started_at), epoch(first_byte_at) "
                "FROM exchanges WHERE streamed"
            ).fetchall()
        }
        recorded = con.execute("SELECT count(*), sum(sse_events) FROM exchanges WHERE streamed").fetchone()
        con.close()
    _report(args, runs, stamps, recorded)


def _report(args, runs: dict, stamps: dict, recorded: tuple) -> None:
    first = {t: [(f - s) * 1000 for s, _, f, _ in runs[t]] for t in TARGETS}
    print(
        f"time to first SSE event, {args.requests} streamed runs per target, upstream answers after "
        f"{args.first_event_ms} ms ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})"
    )
    print(f"{'target':10s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'p50 added':>10s}")
    direct = statistics.median(first["direct"])
    for t in TARGETS:
        p50 = statistics.median(first[t])
        print(f"{t:10s} {p50:8.2f} {_pct(first[t], 0.9):8.2f} {_pct(first[t], 0.99):8.2f} {p50 - direct:+10.2f}")
    added = statistics.median(first["runtap"]) - direct
    print(f"\nruntap p50 added over direct: {added:+.2f} ms (target <= +2 ms)  {'OK' if added <= 2 else 'MISSED'}")

    # Where runtap's milliseconds go (p50 of each part; parts need not add up to the total's p50).
    direct_headers = statistics.median((h - s) * 1000 for s, h, _, _ in runs["direct"])
    direct_gap = statistics.median((f - h) * 1000 for _, h, f, _ in runs["direct"])
    parts: dict[str, list[float]] = {"client -> proxy": [], "proxy -> upstream": [], "headers -> tap": []}
    parts["tap -> client"] = []
    for sent, _, got, rid in runs["runtap"]:
        if rid not in stamps or None in stamps[rid]:
            continue
        request, headers, tapped = stamps[rid]
        parts["client -> proxy"].append((request - sent) * 1000)
        parts["proxy -> upstream"].append((headers - request) * 1000 - direct_headers)
        parts["headers -> tap"].append((tapped - headers) * 1000 - direct_gap)
        parts["tap -> client"].append((got - tapped) * 1000)
    print("\nwhere runtap's added time goes (p50 ms; 'proxy -> upstream' and 'headers -> tap' net of direct):")
    for name, values in parts.items():
        print(f"  {name:18s} {statistics.median(values):6.2f}")
    print(
        f"\nruntap recorded {recorded[0]} streamed exchanges with {recorded[1]} SSE events "
        f"({args.requests + 1} streams sent)"
    )


if __name__ == "__main__":
    main()
