"""Instructions on the way to the first SSE event (callgrind), per phase: runtap proxy vs mitmdump.

bench_stream.py's times move with the machine's load; instruction counts do not. This runs each
proxy under callgrind with collection on only while a streamed createRun is on its way to its
first event (the same simulator settings as bench_stream.py), in three phases:

    A  request received -> request head and body written to the upstream
    B  -> the upstream's response head received: the proxy waits for the upstream here, so
          what it does meanwhile is off the path (except reading the response)
    C  -> first SSE event written to the client

The proxy process switches collection itself: `--inside` runs the proxy with two mitmproxy
methods wrapped (`ConnectionHandler.server_event` sees what arrives, `StreamWriter.write` what
leaves) and calls callgrind's client requests through a 4-line C helper compiled with `cc`
(needs valgrind's callgrind.h). About a minute per target; `--streams` after 10 warm-ups.
`--python` runs `runtap proxy` from another checkout (its `.venv/bin/python`), to compare
versions on one machine.

    .venv/bin/python benchmarks/bench_first_event.py [--streams 40] [--targets runtap,mitmdump] [--python PATH]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from http.client import HTTPConnection

WARM = 10
BODY_MARK = b'"assistant_id": "asst_bench"'  # in bench_stream.py's request body
PHASES = ("A", "B", "C")
HELPER = """#include <valgrind/callgrind.h>
void rt_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void rt_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void rt_zero(void) { CALLGRIND_ZERO_STATS; }
void rt_dump(const char *phase) { CALLGRIND_DUMP_STATS_AT(phase); }
"""


def _inside(lib_path: str, kind: str, args: list[str]) -> None:
    """In the proxy process: switch collection at the phase boundaries, then run the proxy."""
    import asyncio
    import ctypes

    from mitmproxy.proxy import events, server

    lib = ctypes.CDLL(lib_path)
    state = {"window": -1, "phase": None}  # phase: index in PHASES while a window is open

    def boundary(phase: int) -> None:
        if state["phase"] != phase:
            return
        measured = state["window"] >= WARM
        if measured:
            lib.rt_dump(PHASES[phase].encode())
        if phase == len(PHASES) - 1:
            state["phase"] = None
            if measured:
                lib.rt_toggle()
        else:
            state["phase"] = phase + 1

    server_event = server.ConnectionHandler.server_event

    async def watched_event(self, event):
        if isinstance(event, events.DataReceived):
            data = event.data
            if event.connection is self.client and state["phase"] is None and data.startswith(b"POST "):
                state["window"] += 1
                if state["window"] == 0:
                    lib.rt_start()  # instrumented from the first stream on; collecting from WARM on
                elif state["window"] >= WARM:
                    lib.rt_zero()
                    lib.rt_toggle()
                state["phase"] = 0
            elif event.connection is not self.client and data.startswith(b"HTTP/1.1"):
                boundary(1)
        await server_event(self, event)

    write = asyncio.StreamWriter.write

    def watched_write(self, data) -> None:
        write(self, data)
        if BODY_MARK in data:
            boundary(0)
        elif b"event: thread.run.created" in data[:64]:
            boundary(2)

    server.ConnectionHandler.server_event = watched_event
    asyncio.StreamWriter.write = watched_write
    if kind == "mitmdump":
        from mitmproxy.tools.main import mitmdump

        sys.argv = ["mitmdump", *args]
        mitmdump()
    else:
        from runtap.__main__ import main

        sys.argv = ["runtap", *args]
        main()


def _measure(kind: str, python: str, lib: str, upstream: str, streams: int, tmp: str) -> dict[str, float]:
    """Mean M instructions per phase over `streams` streamed createRuns through one proxy."""
    from benchmarks.bench_stream import _first_event
    from benchmarks.loadgen import AUTH
    from runtap.demo.harness import ChildProcess, free_port

    port = free_port()
    out = os.path.join(tmp, f"callgrind.{kind}")
    if kind == "mitmdump":
        args = ["--mode", f"reverse:{upstream}", "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port)]
        args += ["--set", "stream_large_bodies=1"]
    else:
        args = ["proxy", "--upstream", upstream, "--listen", f"127.0.0.1:{port}", "--db", os.path.join(tmp, "i.duckdb")]
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no"]
    child = ChildProcess(
        f"callgrind {kind}",
        [*valgrind, f"--callgrind-out-file={out}", python, os.path.abspath(__file__), "--inside", lib, kind, *args],
    )
    try:
        child.wait_for_port("127.0.0.1", port, 300)
        conn = HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/v1/threads", body=b"{}", headers=AUTH)
        path = f"/v1/threads/{json.loads(conn.getresponse().read())['id']}/runs"
        for _ in range(WARM + streams):
            _first_event(conn, path)
    finally:
        child.proc.send_signal(signal.SIGINT)
        child.proc.wait(300)
    counts: dict[str, list[int]] = {p: [] for p in PHASES}
    for name in glob.glob(out + ".*"):
        with open(name) as fh:
            text = fh.read()
        phase = re.search(r"^desc: Trigger: Client Request: (\w)", text, re.M)
        if phase:
            counts[phase.group(1)].append(int(re.search(r"^summary:\s+(\d+)", text, re.M).group(1)))
    if any(len(v) != streams for v in counts.values()):
        sys.exit(f"{kind}: expected {streams} windows per phase, got { {p: len(v) for p, v in counts.items()} }")
    return {p: statistics.mean(v) / 1e6 for p, v in counts.items()}


def main() -> None:
    """Print M instructions per phase and target on the way to the first SSE event."""
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        _inside(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=40, help="measured streamed createRuns per target")
    parser.add_argument("--targets", default="runtap,mitmdump", help="comma-separated: runtap, mitmdump")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the checkout to run runtap from")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from runtap.demo.harness import SimulatorProcess

    if not (shutil.which("valgrind") and shutil.which("cc")):
        sys.exit("needs valgrind and cc (apt-get install valgrind gcc)")
    sim_args = ("--run-ms", "40", "--event-gap-ms", "2", "--latency", "40")
    with tempfile.TemporaryDirectory() as tmp, SimulatorProcess(*sim_args) as sim:
        lib = os.path.join(tmp, "cgtoggle.so")
        with open(os.path.join(tmp, "cgtoggle.c"), "w") as fh:
            fh.write(HELPER)
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", lib, fh.name], check=True)
        results = {}
        for kind in args.targets.split(","):
            python = args.python if kind == "runtap" else sys.executable
            results[kind] = _measure(kind, python, lib, sim.url, args.streams, tmp)
    print(f"M instructions on the way to the first SSE event ({args.streams} streamed createRuns, mean)")
    print(f"{'target':10s} {'A req->upstream':>16s} {'B wait->head':>13s} {'C head->event':>14s} {'A+C':>6s}")
    for kind, r in results.items():
        print(f"{kind:10s} {r['A']:16.3f} {r['B']:13.3f} {r['C']:14.3f} {r['A'] + r['C']:6.3f}")


if __name__ == "__main__":
    main()
