"""Shared fixtures: one recording of the demo workload through a real proxy, reused by modules."""

from __future__ import annotations

import os

import duckdb
import pytest
from hypothesis import settings

from runtap.demo.harness import start_proxy
from runtap.demo.workload import ASSISTANTS, run_workload
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator

DEMO_KEY = "sk-e2e-secret-value-0123456789"

# CI runs the property tests on a fixed sequence of examples, so a landing never hinges on luck;
# local runs explore new examples every time (and hypothesis keeps the failures it finds).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def recording(tmp_path_factory):
    """Record the demo workload through a real `runtap proxy` in front of the simulator.

    Yields (read-only connection, simulator ground truth, client view, proxy exit code, proxy
    log, store path).
    """
    db = str(tmp_path_factory.mktemp("e2e") / "store.duckdb")
    with start_simulator(SimConfig(seed=11, assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(sim.url, db)
        try:
            client_view = run_workload(proxy.base_url, api_key=DEMO_KEY)
        finally:
            code = proxy.stop()
        truth = sim.ground_truth()
    con = duckdb.connect(db, read_only=True)
    yield con, truth, client_view, code, proxy.log_text(), db
    con.close()
