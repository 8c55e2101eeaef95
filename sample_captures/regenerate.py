"""Regenerate the sample captures: the demo workloads (runs and Responses) through a real proxy, then scrubbed.

    .venv/bin/python sample_captures/regenerate.py

Writes `demo.duckdb` (recorded by the runtap addon inside plain `mitmdump`) and `demo.flows`
(the same traffic as a mitmproxy flow file, written by the same mitmdump with `-w`), then
removes credentials from the flow file. The DuckDB store never holds credentials (the addon
redacts them before anything is queued); the flow file is mitmproxy's own and keeps every
header, so it is rewritten without them.
"""

from __future__ import annotations

import os
import sys

from mitmproxy import io

from runtap.demo.harness import start_proxy
from runtap.demo.response_workload import run_responses_workload
from runtap.demo.workload import ASSISTANTS, run_workload
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from runtap.store.reader import open_store

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET_HEADERS = ("authorization", "api-key", "openai-organization", "openai-project", "cookie", "set-cookie")


def scrub_flow_file(path: str) -> int:
    """Rewrite a flow file without credential headers; return how many flows it holds."""
    with open(path, "rb") as fh:
        flows = list(io.FlowReader(fh).stream())
    for flow in flows:
        for message in (flow.request, flow.response):
            if message is None:
                continue
            for name in SECRET_HEADERS:
                message.headers.pop(name, None)
    with open(path, "wb") as fh:
        writer = io.FlowWriter(fh)
        for flow in flows:
            writer.add(flow)
    return len(flows)


def main() -> int:
    """Record the workload once, with a fixed seed, into sample_captures/."""
    db = os.path.join(HERE, "demo.duckdb")
    flows = os.path.join(HERE, "demo.flows")
    for path in (db, db + ".wal", flows):
        if os.path.exists(path):
            os.remove(path)
    with start_simulator(SimConfig(seed=0, assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(
            sim.url,
            db,
            plain_mitmdump=True,
            extra_args=["-w", flows, "--set", "store_streamed_bodies=true"],
        )
        try:
            run_workload(proxy.base_url, api_key="sk-sample-not-a-real-key")
            run_responses_workload(proxy.base_url, api_key="sk-sample-not-a-real-key")
        finally:
            code = proxy.stop()
    if code != 0:
        print(f"mitmdump exited with {code}", file=sys.stderr)
        return 1
    count = scrub_flow_file(flows)
    with open_store(db) as con:
        runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        responses = con.execute("SELECT count(*) FROM responses").fetchone()[0]
        exchanges = con.execute("SELECT count(*) FROM exchanges").fetchone()[0]
    print(f"wrote {db} ({exchanges} exchanges, {runs} runs, {responses} responses) and {flows} ({count} flows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
