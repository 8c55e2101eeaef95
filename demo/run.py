"""`runtap demo`: simulator + real proxy process + official SDK workload, then what was recorded."""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtap.demo.harness import start_proxy
from runtap.demo.workload import ASSISTANTS, WorkloadResult, run_workload
from runtap.errors import RuntapError
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from runtap.store.reader import open_store


@dataclass
class DemoResult:
    """What the demo did: the client's view, the proxy's exit code, timings, recorded rows."""

    workload: WorkloadResult
    proxy_exit_code: int
    seconds: float
    runs_by_model_status: list[tuple]
    exchanges: int
    capture_id: str


def run_demo(db: str, *, seed: int = 0, progress=lambda message: None) -> DemoResult:
    """Run the demo end to end and return what the store holds afterwards."""
    started = time.monotonic()
    progress("starting the simulator")
    with start_simulator(SimConfig(seed=seed, assistants=ASSISTANTS)) as sim:
        progress(f"simulator on {sim.url}; starting `runtap proxy` recording to {db}")
        proxy = start_proxy(sim.url, db)
        try:
            progress(f"driving the openai SDK through {proxy.base_url}")
            workload = run_workload(proxy.base_url)
        finally:
            progress("stopping the proxy (SIGTERM: flushes the store)")
            code = proxy.stop()
    if code != 0:
        raise RuntapError(proxy.failure("stopped with an error"))
    with open_store(db) as con:
        # Only this demo's capture: the store may hold earlier recordings too.
        capture = con.execute("SELECT capture_id FROM captures ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        by_model = con.execute(
            """SELECT r.model, r.status, count(*) AS runs, sum(r.total_tokens) AS total_tokens
               FROM runs r JOIN exchanges e ON e.exchange_id = r.last_exchange_id
               WHERE e.capture_id = ? GROUP BY ALL ORDER BY r.model, r.status""",
            [capture],
        ).fetchall()
        exchanges = con.execute("SELECT count(*) FROM exchanges WHERE capture_id = ?", [capture]).fetchone()[0]
    return DemoResult(workload, code, time.monotonic() - started, by_model, exchanges, capture)
