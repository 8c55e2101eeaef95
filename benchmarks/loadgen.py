"""Shared by the proxy benchmarks: a simulator process, a recorded run to hit, and load generators.

The simulator runs in its own process (`runtap simulate`) so it never competes for the GIL with
the load generator or the proxy. Load comes from `wrk` when it is installed (a C load generator
that is not the bottleneck at these rates); otherwise from a Python fallback of keep-alive
connections in worker processes, which is slower and says so in its output.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from http.client import HTTPConnection
from urllib.parse import urlsplit

import httpx

AUTH = {"Authorization": "Bearer sk-bench-not-a-secret"}


@dataclass
class LoadResult:
    """What one load run measured: throughput and latency percentiles (milliseconds)."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


def completed_run_path(base: str) -> str:
    """Create a thread and a run on the simulator at `base`; return the run's getRun path."""
    with httpx.Client(base_url=base + "/v1", headers=AUTH, timeout=10) as client:
        thread = client.post("/threads", json={}).json()["id"]
        run = client.post(
            f"/threads/{thread}/runs", json={"assistant_id": "asst_bench", "metadata": {"sim_outcome": "completed"}}
        ).json()
        while run["status"] not in ("completed", "failed", "incomplete", "expired"):
            time.sleep(0.05)
            run = client.get(f"/threads/{thread}/runs/{run['id']}").json()
    return f"/v1/threads/{thread}/runs/{run['id']}"


def have_wrk() -> bool:
    """Whether the `wrk` load generator is on PATH."""
    return shutil.which("wrk") is not None


def load(url: str, seconds: float, connections: int, wrk_script: str | None = None) -> LoadResult:
    """Send GETs to `url` on `connections` keep-alive connections for `seconds`.

    `wrk_script` (Lua) shapes the requests when wrk is used; the Python fallback sends GETs.
    """
    if have_wrk():
        return _wrk(url, seconds, connections, wrk_script)
    return _python_load(url, seconds, connections)


def _wrk(url: str, seconds: float, connections: int, script: str | None) -> LoadResult:
    threads = min(2, connections)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script or "")
        lua.flush()
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--latency",
                "-H",
                f"Authorization: {AUTH['Authorization']}",
                *(["-s", lua.name] if script else []),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return LoadResult(
        total,
        seconds,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _wrk_ms(out, "50%"),
        _wrk_ms(out, "99%"),
        errors,
        "wrk",
    )


def _wrk_ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"^\s*{pct}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _python_load(url: str, seconds: float, connections: int) -> LoadResult:
    # One process per connection: a single Python process would be the bottleneck.
    with multiprocessing.get_context("spawn").Pool(connections) as pool:
        parts = pool.starmap(_python_worker, [(url, seconds)] * connections)
    latencies = sorted(lat for lats, _ in parts for lat in lats)
    errors = sum(err for _, err in parts)
    if not latencies:
        return LoadResult(0, seconds, 0.0, float("nan"), float("nan"), errors, "python")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return LoadResult(
        len(latencies),
        seconds,
        len(latencies) / seconds,
        statistics.median(latencies),
        p99,
        errors,
        "python (slower than wrk)",
    )


def _python_worker(url: str, seconds: float) -> tuple[list[float], int]:
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    while (start := time.perf_counter()) < deadline:
        try:
            conn.request("GET", parts.path, headers=AUTH)
            resp = conn.getresponse()
            resp.read()
            latencies.append((time.perf_counter() - start) * 1000)
            errors += resp.status >= 400
        except OSError:
            errors += 1
            conn.close()
            conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.close()
    return latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process `pid` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its direct children (the proxy and its recorder process)."""
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            children += [int(c) for c in fh.read().split()]
    return [pid, *children]


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
