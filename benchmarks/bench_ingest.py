"""Benchmark `runtap ingest` against the bare `mitmproxy.io.FlowReader` read of the same file.

Builds a flow file (default 20,000 flows) of realistic runs traffic with mitmproxy's own flow
classes: sessions of createRun, getRun polls (`X-Stainless-Poll-Helper`), listRunSteps,
getRunStep and listRuns, a quarter of them streamed (SSE, ~15 events with message deltas),
plus non-runs traffic (GET /v1/assistants/...) that ingest must skip. Then, in the same run,
each phase in its own child process (so each gets its own peak RSS; ingest's worker process is
reported apart): the bare read (iterate `FlowReader(fo).stream()`), and `ingest_files` into a
fresh store. Phases alternate `--repeat`
times (the machine is shared: load changes between runs); prints every run's flows/s and peak
RSS, and the ratio of the median times (target >= 0.8).

    .venv/bin/python benchmarks/bench_ingest.py [--flows N] [--file PATH] [--keep] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from mitmproxy import http
from mitmproxy.io import FlowReader, FlowWriter
from mitmproxy.test import tflow

BASE_URL = "https://api.openai.com/v1"
T0 = 1_760_000_000.0
HEADERS_OUT = [
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk-bench"),
    (b"openai-beta", b"assistants=v2"),
    (b"user-agent", b"OpenAI/Python 3.54.0"),
]


def _run(run_id: str, thread_id: str, status: str, t: int, usage: bool) -> dict:
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": t,
        "assistant_id": "asst_bench",
        "thread_id": thread_id,
        "status": status,
        "started_at": t + 1 if status != "queued" else None,
        "expires_at": t + 600,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": t + 3 if status == "completed" else None,
        "required_action": None,
        "last_error": None,
        "model": "gpt-4o" if t % 2 else "gpt-4o-mini",
        "instructions": "You are a helpful assistant. " * 4,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "incomplete_details": None,
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160} if usage else None,
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def _step(step_id: str, run_id: str, thread_id: str, status: str, t: int) -> dict:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": t,
        "run_id": run_id,
        "assistant_id": "asst_bench",
        "thread_id": thread_id,
        "type": "message_creation",
        "status": status,
        "cancelled_at": None,
        "completed_at": t + 2 if status == "completed" else None,
        "expires_at": None,
        "failed_at": None,
        "last_error": None,
        "metadata": {},
        "step_details": {"type": "message_creation", "message_creation": {"message_id": f"msg_{step_id}"}},
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}
        if status == "completed"
        else None,
    }


def _sse(run_id: str, thread_id: str, step_id: str, t: int) -> bytes:
    events = [
        ("thread.run.created", _run(run_id, thread_id, "queued", t, False)),
        ("thread.run.queued", _run(run_id, thread_id, "queued", t, False)),
        ("thread.run.in_progress", _run(run_id, thread_id, "in_progress", t, False)),
        ("thread.run.step.created", _step(step_id, run_id, thread_id, "in_progress", t)),
    ]
    for i in range(8):
        events.append(
            (
                "thread.message.delta",
                {
                    "id": f"msg_{step_id}",
                    "object": "thread.message.delta",
                    "delta": {"content": [{"index": 0, "type": "text", "text": {"value": f"word{i} "}}]},
                },
            )
        )
    events += [
        ("thread.run.step.completed", _step(step_id, run_id, thread_id, "completed", t)),
        ("thread.run.completed", _run(run_id, thread_id, "completed", t, True)),
    ]
    text = "".join(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n" for name, data in events)
    return (text + "event: done\ndata: [DONE]\n\n").encode()


def _flow(
    clock: list[float],
    method: str,
    path: str,
    body: bytes,
    status: int,
    response: bytes,
    content_type: bytes = b"application/json",
    poll: bool = False,
) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    headers = HEADERS_OUT + ([(b"x-stainless-poll-helper", b"true")] if poll else [])
    flow.request = http.Request.make(method, BASE_URL + path, body, headers)
    flow.response = http.Response.make(
        status,
        response,
        [(b"content-type", content_type), (b"x-request-id", b"req_bench"), (b"openai-processing-ms", b"42")],
    )
    start = clock[0]
    flow.request.timestamp_start, flow.request.timestamp_end = start, start + 0.001
    flow.response.timestamp_start, flow.response.timestamp_end = start + 0.05, start + 0.06
    clock[0] += 0.1
    return flow


def _session(i: int, clock: list[float]) -> list[http.HTTPFlow]:
    """Ten flows around one run: 1 in 4 runs is streamed."""
    thread, run, step, t = f"thread_{i:08d}", f"run_{i:08d}", f"step_{i:08d}", int(T0) + i
    base = f"/threads/{thread}/runs"
    dumps = lambda obj: json.dumps(obj, indent=2).encode()  # noqa: E731 - the API pretty-prints JSON
    flows = []
    if i % 4 == 0:
        flows.append(
            _flow(
                clock,
                "POST",
                base,
                b'{"assistant_id":"asst_bench","stream":true}',
                200,
                _sse(run, thread, step, t),
                b"text/event-stream; charset=utf-8",
            )
        )
        flows += [
            _flow(clock, "GET", f"{base}/{run}", b"", 200, dumps(_run(run, thread, "completed", t, True)))
            for _ in range(2)
        ]
    else:
        flows.append(
            _flow(
                clock, "POST", base, b'{"assistant_id":"asst_bench"}', 200, dumps(_run(run, thread, "queued", t, False))
            )
        )
        flows += [
            _flow(clock, "GET", f"{base}/{run}", b"", 200, dumps(_run(run, thread, s, t, s == "completed")), poll=True)
            for s in ("queued", "in_progress")
        ]
    flows.append(
        _flow(clock, "GET", f"{base}/{run}", b"", 200, dumps(_run(run, thread, "completed", t, True)), poll=True)
    )
    flows.append(
        _flow(
            clock,
            "GET",
            f"{base}/{run}/steps",
            b"",
            200,
            dumps(
                {
                    "object": "list",
                    "data": [_step(step, run, thread, "completed", t)],
                    "first_id": step,
                    "last_id": step,
                    "has_more": False,
                }
            ),
        )
    )
    flows.append(
        _flow(clock, "GET", f"{base}/{run}/steps/{step}", b"", 200, dumps(_step(step, run, thread, "completed", t)))
    )
    flows.append(
        _flow(
            clock,
            "GET",
            f"{base}?limit=1",
            b"",
            200,
            dumps(
                {
                    "object": "list",
                    "data": [_run(run, thread, "completed", t, True)],
                    "first_id": run,
                    "last_id": run,
                    "has_more": False,
                }
            ),
        )
    )
    flows.append(_flow(clock, "GET", "/assistants/asst_bench", b"", 200, b'{"id":"asst_bench","object":"assistant"}'))
    flows.append(_flow(clock, "GET", "/models", b"", 200, b'{"object":"list","data":[]}'))
    while len(flows) < 10:
        flows.append(
            _flow(clock, "GET", f"{base}/{run}", b"", 200, dumps(_run(run, thread, "completed", t, True)), poll=True)
        )
    return flows


def write_flow_file(path: str, n: int) -> None:
    """Write `n` flows of the mix above to `path` with `mitmproxy.io.FlowWriter`."""
    clock = [T0]
    with open(path, "wb") as fh:
        writer = FlowWriter(fh)
        written, i = 0, 0
        while written < n:
            for flow in _session(i, clock)[: n - written]:
                writer.add(flow)
                written += 1
            i += 1


def _phase(name: str, path: str) -> None:
    """Child process: run one phase and print its figures (time, peak RSS) as JSON."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if name == "read":
        with open(path, "rb") as fh:
            flows = sum(1 for _ in FlowReader(fh).stream())
        extra = {}
    else:
        from runtap.ingest import ingest_files

        db = os.path.join(tempfile.mkdtemp(prefix="runtap-bench-"), "ingest.duckdb")
        report = ingest_files([path], db)
        flows = report.total("flows_read")
        extra = {
            "stored": report.total("stored"),
            "skipped": report.total("skipped"),
            "rows": report.rows_written,
            "db_bytes": os.path.getsize(db),
            "store_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "store_cpu": _cpu(resource.RUSAGE_CHILDREN),
        }
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "flows": flows, "rss_mb": rss, **extra}))


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _run_phase(name: str, path: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--file", path], stdout=subprocess.PIPE, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    """Parse options, build the file, time both phases and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=20_000, help="flows in the generated file")
    parser.add_argument("--file", help="flow file to use (generated when missing)")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each phase, alternated")
    parser.add_argument("--phase", choices=["read", "ingest"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        return _phase(args.phase, args.file)
    path = args.file or os.path.join(tempfile.mkdtemp(prefix="runtap-bench-"), "bench.mitm")
    if not os.path.exists(path):
        started = time.perf_counter()
        write_flow_file(path, args.flows)
        print(
            f"wrote {args.flows:,} flows ({os.path.getsize(path) / 1e6:.1f} MB) to {path} "
            f"in {time.perf_counter() - started:.1f}s"
        )
    # Alternate the phases: on a shared machine, load changes between runs; compare medians.
    reads, ingests = [], []
    for _ in range(args.repeat):
        reads.append(_run_phase("read", path))
        ingests.append(_run_phase("ingest", path))
    for name, runs in (("FlowReader read", reads), ("runtap ingest", ingests)):
        for r in runs:
            store = (
                f" + worker process {r['store_rss_mb']:.0f} MB, {r['store_cpu']:.1f} s CPU"
                if "store_rss_mb" in r
                else ""
            )
            print(
                f"{name:16} {r['flows']:>7,} flows in {r['seconds']:6.2f}s = {r['flows'] / r['seconds']:7,.0f} flows/s;"
                f" {r['cpu']:.1f} s CPU, peak RSS {r['rss_mb']:.0f} MB{store}"
            )
    ingest = ingests[0]
    print(
        f"ingest stored {ingest['stored']:,} exchanges ({ingest['rows']:,} rows, "
        f"store {ingest['db_bytes'] / 1e6:.1f} MB),"
        f" skipped {ingest['skipped']:,}"
    )
    ratio = statistics.median(r["seconds"] for r in reads) / statistics.median(r["seconds"] for r in ingests)
    print(f"ingest throughput / bare read throughput (medians of {args.repeat}) = {ratio:.2f}x (target >= 0.80x)")
    # With a free core for each process, ingest takes as long as its busier process.
    busiest = statistics.median(max(r["cpu"], r["store_cpu"]) for r in ingests)
    print(
        f"CPU-bound estimate with 2 free cores: read CPU / busier ingest process CPU = "
        f"{statistics.median(r['cpu'] for r in reads) / busiest:.2f}x; load average now {os.getloadavg()[0]:.1f}"
    )
    if not args.keep and not args.file:
        os.remove(path)


if __name__ == "__main__":
    main()
