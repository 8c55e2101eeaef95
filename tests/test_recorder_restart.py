"""A recorder process that keeps dying on the same exchange: the proxy restarts it, backs off, finds
the exchange by applying records one at a time, moves it aside, and records everything else --
never stopping silently, never blocking what comes after it.

The poison is made with a `sitecustomize` on PYTHONPATH that, in the recorder process only,
crashes it (SIGSEGV) when it normalizes an exchange whose URL contains "poison".
"""

from __future__ import annotations

import os
import re
import textwrap
from collections import Counter

import httpx
import pytest

from runtap.addon.journal import QUARANTINE, decode_payload, parse
from runtap.demo.harness import SimulatorProcess, start_proxy
from tests.load_clients import store_request_ids, wait_for_log, wait_until_stored

POISON = """
import sys

if "runtap.addon.worker" in sys.orig_argv:
    import os
    import signal

    import runtap.addon.normalize as module

    _normalize = module.normalize

    def normalize(exchange, **kwargs):
        if "poison" in exchange.url:
            os.kill(os.getpid(), signal.SIGSEGV)
        return _normalize(exchange, **kwargs)

    module.normalize = normalize
"""


@pytest.fixture
def poisoned_recorder(tmp_path, monkeypatch):
    """Recorder processes started from now on crash on exchanges with "poison" in their URL."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(POISON))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))


def _create_runs(client: httpx.Client, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        response = client.post("/threads/runs", json={"assistant_id": "asst_x"})
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
    return ids


def test_an_exchange_that_crashes_the_recorder_is_moved_aside_and_recording_goes_on(poisoned_recorder, tmp_path):
    db = str(tmp_path / "poison.duckdb")
    with SimulatorProcess("--run-ms", "60") as sim:
        proxy = start_proxy(sim.url, db, log_path=str(tmp_path / "proxy.log"))
        wait_for_log(proxy, "recording to")
        with httpx.Client(base_url=proxy.base_url, headers={"Authorization": "Bearer sk-x"}, timeout=30) as client:
            before = _create_runs(client, 5)
            poison = client.get("/threads/thread_poison/runs/run_poison")  # a runs route: journaled
            assert poison.status_code == 404  # the simulator does not know it; traffic is unaffected
            wait_for_log(proxy, "exited unexpectedly (killed by SIGSEGV); restarting it now")
            during = _create_runs(client, 5)  # journaled while the recorder keeps dying
        wait_for_log(proxy, "moved it aside", timeout=120)
        expected = Counter(before + during)
        missing = wait_until_stored(db, expected)
        code = proxy.stop()
    log = proxy.log_text()
    assert code == 0 and not missing, log[-4000:]
    assert re.search(r"died again \(killed by SIGSEGV; 2 times in a row without writing anything\); next attempt", log)
    assert "apply them one at a time to find the one that crashes it" in log
    assert "on the exchange at journal position" in log  # named after the third death
    stored = store_request_ids(db)
    assert all(stored[rid] == 1 for rid in expected)
    assert poison.headers["x-request-id"] not in stored  # moved aside, not recorded
    with open(os.path.join(db + ".journal", QUARANTINE), "rb") as fh:
        aside, _, _ = parse(fh.read())
    assert len(aside) == 1 and "run_poison" in decode_payload(aside[0][2])[3]  # kept, intact, for a look
