"""`runtap demo`: simulator + real proxy process + official SDK workload (the Assistants runs API
and the Responses API), then what was recorded."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from runtap.analysis import Filters, ReportResult, run_report
from runtap.demo.harness import start_proxy
from runtap.demo.response_workload import ResponsesResult, run_responses_workload
from runtap.demo.workload import ASSISTANTS, WorkloadResult, run_workload
from runtap.errors import RuntapError
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from runtap.store.reader import open_store

# What the demo shows afterwards: how runs and responses ended per model, and what they cost.
REPORTS = (("summary", "models"), ("tokens", "tokens"))
API = "all"


@dataclass
class DemoResult:
    """What the demo did and recorded: the client's view, timings, and this run's reports."""

    workload: WorkloadResult
    responses: ResponsesResult
    seconds: float
    capture_id: str
    exchanges: int
    reports: list[ReportResult]


def run_demo(db: str, *, seed: int = 0, progress=lambda message: None) -> DemoResult:
    """Run the demo end to end; report on what this run recorded (the store may hold earlier ones)."""
    started = time.monotonic()
    progress("starting the simulator")
    with start_simulator(SimConfig(seed=seed, assistants=ASSISTANTS)) as sim:
        progress(f"simulator on {sim.url}; starting `runtap proxy` recording to {db}")
        proxy = start_proxy(sim.url, db)
        try:
            progress(f"driving the openai SDK through {proxy.base_url}")
            workload = run_workload(proxy.base_url)
            responses = run_responses_workload(proxy.base_url)
        finally:
            progress("stopping the proxy (SIGTERM: flushes the store)")
            code = proxy.stop()
    if code != 0:
        raise RuntapError(proxy.failure("stopped with an error"))
    with open_store(db) as con:
        capture, exchanges = con.execute(
            """SELECT c.capture_id, count(e.exchange_id) FROM captures c
               LEFT JOIN exchanges e USING (capture_id)
               GROUP BY c.capture_id, c.started_at ORDER BY c.started_at DESC LIMIT 1"""
        ).fetchone()
    filters = Filters(captures=(capture,))
    reports = []
    for name, section in REPORTS:
        result = run_report(db, name, filters, api=API)
        reports.append(replace(result, sections={section: result.sections[section]}))
    return DemoResult(workload, responses, time.monotonic() - started, capture, exchanges, reports)
