"""Soak: 200 concurrent SDK clients through a real `runtap proxy`, then an exact store check.

Clients mix polled and streamed runs with tool calls (and plain completed/failed runs) against
the simulator in its own process, RUNTAP_SOAK_SESSIONS sessions each (default 2; set e.g. 50 for
a long soak): a fixed amount of work, however fast the machine. Afterwards every response a
client received on a recorded route is in the store exactly once (by x-request-id), and every
run a client finished has the same final status and tokens.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from runtap.demo.harness import SimulatorProcess, start_proxy
from tests.load_clients import check_runs, drive, store_request_ids

SESSIONS = int(os.environ.get("RUNTAP_SOAK_SESSIONS", "2"))
CLIENTS = int(os.environ.get("RUNTAP_SOAK_CLIENTS", "200"))


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    """Run the soak once; yield the client tally, the store path, the proxy exit code and log."""
    tmp = tmp_path_factory.mktemp("soak")
    db = str(tmp / "soak.duckdb")
    # Polls every 250 ms (the SDK honours openai-poll-after-ms): 200 clients keep the proxy busy.
    with SimulatorProcess("--seed", "7", "--run-ms", "150", "--poll-after-ms", "250") as sim:
        proxy = start_proxy(sim.url, db, log_path=str(tmp / "proxy.log"))
        try:
            tally = asyncio.run(drive(proxy.base_url, CLIENTS, SESSIONS))
        finally:
            code = proxy.stop(timeout=120)
    yield tally, db, code, proxy.log_text()


@pytest.mark.timeout(300 + 30 * SESSIONS)
def test_soak_clients_finished_runs_of_every_kind(soak):
    tally, *_ = soak
    assert not tally.errors, tally.errors
    statuses = {r["status"] for r in tally.runs.values()}
    assert {"completed", "failed"} <= statuses
    assert len(tally.runs) == CLIENTS * SESSIONS  # every client finished every session


def test_soak_loses_and_duplicates_nothing(soak):
    tally, db, code, log = soak
    assert code == 0, log
    stored = store_request_ids(db)
    lost = tally.request_ids - stored
    duplicated = {rid: n for rid, n in stored.items() if n > tally.request_ids.get(rid, 0)}
    assert not lost, f"{sum(lost.values())} exchanges lost, e.g. {list(lost)[:3]}"
    assert not duplicated, f"{len(duplicated)} exchanges recorded twice or unexpected"
    assert sum(stored.values()) == sum(tally.request_ids.values()) >= 3 * CLIENTS * SESSIONS


def test_soak_runs_have_the_final_status_and_tokens_clients_saw(soak):
    tally, db, *_ = soak
    assert check_runs(db, tally.runs) == []


def test_soak_proxy_log_is_clean(soak):
    *_, log = soak
    assert "Traceback" not in log and "dropping" not in log, log[-2000:]
