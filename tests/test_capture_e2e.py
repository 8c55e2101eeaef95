"""End to end: simulator + real `runtap proxy` process + the official openai SDK.

What the store recorded must equal what the simulator says it served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import defaultdict

import duckdb
import httpx

from runtap.demo.harness import start_proxy
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.conftest import DEMO_KEY as KEY


def _truth_runs(truth) -> dict:
    return {run["id"]: run for run in truth["runs"]}


def test_proxy_exits_cleanly(recording):
    _, _, _, code, log, _ = recording
    assert code == 0, log


def test_every_served_run_is_recorded_with_its_final_status(recording):
    con, truth, client_view, *_ = recording
    recorded = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    expected = {rid: run["status"] for rid, run in _truth_runs(truth).items()}
    assert recorded == expected
    assert {rid: r["status"] for rid, r in client_view.runs.items()} == {rid: expected[rid] for rid in client_view.runs}
    # The workload covers the life cycles that matter.
    assert {"completed", "cancelled", "failed", "incomplete"} <= set(recorded.values())


def test_token_sums_per_model_equal_ground_truth(recording):
    con, truth, *_ = recording
    recorded = {
        model: (p, c, t)
        for model, p, c, t in con.execute(
            """SELECT model, sum(prompt_tokens), sum(completion_tokens), sum(total_tokens)
               FROM runs GROUP BY model"""
        ).fetchall()
    }
    expected = defaultdict(lambda: [0, 0, 0])
    models = set()
    for run in truth["runs"]:
        models.add(run["model"])
        if run["usage"]:
            for i, key in enumerate(("prompt_tokens", "completion_tokens", "total_tokens")):
                expected[run["model"]][i] += run["usage"][key]
    assert set(recorded) == models
    for model in models:
        got = tuple(0 if v is None else int(v) for v in recorded[model])
        assert got == tuple(expected[model]), model
    assert len(models) >= 3


def test_status_sequences_equal_what_was_served(recording):
    con, truth, *_ = recording
    first = dict(
        con.execute(
            """SELECT run_id, arg_min(status, (observed_at, request_started_at, exchange_id, seq))
           FROM run_snapshots GROUP BY run_id"""
        ).fetchall()
    )
    sequences = {rid: [status] for rid, status in first.items()}
    for rid, to_status in con.execute("SELECT run_id, to_status FROM run_transitions ORDER BY run_id, seq").fetchall():
        sequences[rid].append(to_status)
    expected = {rid: run["served_statuses"] for rid, run in _truth_runs(truth).items()}
    assert sequences == expected
    # requires_action -> queued after tool outputs is kept.
    assert any("requires_action" in s and s[s.index("requires_action") + 1] == "queued" for s in sequences.values())


def test_steps_equal_ground_truth(recording):
    con, truth, *_ = recording
    recorded = {
        step_id: (run_id, typ, status, total)
        for step_id, run_id, typ, status, total in con.execute(
            "SELECT step_id, run_id, type, status, total_tokens FROM run_steps"
        ).fetchall()
    }
    expected = {
        step["id"]: (run["id"], step["type"], step["status"], step["usage"]["total_tokens"] if step["usage"] else None)
        for run in truth["runs"]
        for step in run["steps"]
    }
    assert recorded == expected
    assert {"tool_calls", "message_creation"} <= {v[1] for v in recorded.values()}


def test_tool_calls_equal_ground_truth(recording):
    con, truth, *_ = recording
    recorded = {
        call_id: (run_id, name, json.loads(args))
        for call_id, run_id, name, args in con.execute(
            "SELECT tool_call_id, run_id, function_name, arguments FROM tool_calls"
        ).fetchall()
    }
    expected = {
        call["id"]: (run["id"], call["function_name"], json.loads(call["arguments"]))
        for run in truth["runs"]
        for call in run["tool_calls"]
    }
    assert recorded == expected
    assert len(expected) >= 2
    # Calls seen in a step carry its id.
    steps = dict(con.execute("SELECT tool_call_id, step_id FROM tool_calls").fetchall())
    assert all(steps.values())


def test_the_api_key_never_reaches_the_store(recording):
    con, *_ = recording
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE data_type IN ('VARCHAR', 'JSON')"
    ).fetchall():
        hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::VARCHAR LIKE ?', [f"%{KEY}%"]).fetchone()[
            0
        ]
        assert hits == 0, (table, column)


HOLD_LOCK = """
import sys, time, duckdb
from runtap.store.reader import connect_with_retry
con = connect_with_retry(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM exchanges").fetchone()[0], flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_readers_share_the_file_and_sigterm_flushes_everything(tmp_path):
    """A reader holds the file while traffic flows; reports work; after SIGTERM nothing is lost."""
    db = str(tmp_path / "shared.duckdb")
    with start_simulator(SimConfig(seed=3, run_ms=50)) as sim:
        proxy = start_proxy(sim.url, db)
        completed = 0
        stop = threading.Event()
        reader_outputs: list[str] = []

        def read_repeatedly():
            while not stop.is_set():
                out = subprocess.run(
                    [sys.executable, "-c", HOLD_LOCK, db, "0.8"], capture_output=True, text=True, timeout=60
                )
                reader_outputs.append(out.stdout.strip() or out.stderr.strip().splitlines()[-1])

        reader = threading.Thread(target=read_repeatedly)
        with httpx.Client(base_url=proxy.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
            thread_id = client.post("/threads", json={}).json()["id"]
            completed += 1
            time.sleep(0.8)  # the first batch lands, so readers see a store
            reader.start()
            for i in range(60):
                run = client.post(f"/threads/{thread_id}/runs", json={"assistant_id": "asst_x"}).json()
                completed += 1
                while run["status"] not in ("completed", "failed", "incomplete", "expired", "requires_action"):
                    time.sleep(0.02)
                    run = client.get(f"/threads/{thread_id}/runs/{run['id']}").json()
                    completed += 1
                if i % 20 == 0:
                    report = subprocess.run(
                        [sys.executable, "-m", "runtap", "report", "summary", "--db", db, "--format", "json"],
                        capture_output=True,
                        text=True,
                        timeout=60,
                    )
                    assert report.returncode == 0, report.stderr
        stop.set()
        reader.join()
        code = proxy.stop()  # right after the last response: the flush must catch everything
    assert code == 0, proxy.log_text()
    assert reader_outputs and all(o.isdigit() for o in reader_outputs), reader_outputs
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == completed
    con.close()
