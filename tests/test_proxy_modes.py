"""`runtap proxy --mode regular`: an explicit HTTP proxy that records the same way."""

from __future__ import annotations

import duckdb
import httpx

from runtap.demo.harness import start_proxy
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator


def test_regular_mode_records_runs_traffic_sent_through_an_explicit_proxy(tmp_path):
    db = str(tmp_path / "regular.duckdb")
    with start_simulator(SimConfig(seed=1, run_ms=50)) as sim:
        proxy = start_proxy("https://unused.invalid", db, extra_args=["--mode", "regular"])
        try:
            with httpx.Client(
                proxy=proxy.url, base_url=sim.base_url, timeout=10, headers={"Authorization": "Bearer sk-regular-mode"}
            ) as client:
                thread = client.post("/threads", json={}).json()
                run = client.post(f"/threads/{thread['id']}/runs", json={"assistant_id": "asst_r"}).json()
                assert client.get("/models").status_code in (200, 404)  # passes through, unrecorded
        finally:
            code = proxy.stop()
    assert code == 0, proxy.log_text()
    con = duckdb.connect(db, read_only=True)
    ops = sorted(op for (op,) in con.execute("SELECT operation FROM exchanges").fetchall())
    mode = con.execute("SELECT mode FROM captures").fetchone()[0]
    run_ids = [r for (r,) in con.execute("SELECT run_id FROM runs").fetchall()]
    con.close()
    assert ops == ["createRun", "createThread"]
    assert mode == "regular"
    assert run_ids == [run["id"]]
