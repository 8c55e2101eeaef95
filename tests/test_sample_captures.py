"""The committed sample captures are real runtap recordings (runs and Responses) and carry no credentials;
the real-world-shaped one holds the quirks of hosted traffic and regenerates the same."""

from __future__ import annotations

import importlib.util
import json
import os

from mitmproxy import io

from runtap.store.reader import open_store

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_captures")


def test_sample_store_holds_the_demo_workload():
    with open_store(os.path.join(HERE, "demo.duckdb")) as con:
        statuses = {s for (s,) in con.execute("SELECT DISTINCT status FROM runs").fetchall()}
        calls = con.execute("SELECT count(*) FROM tool_calls").fetchone()[0]
        leaked = con.execute(
            "SELECT count(*) FROM exchanges WHERE request_headers::VARCHAR ILIKE '%sk-sample%'"
        ).fetchone()[0]
        responses = {s for (s,) in con.execute("SELECT DISTINCT status FROM responses").fetchall()}
        background = con.execute("SELECT count(*) FROM responses WHERE background").fetchone()[0]
        answered = con.execute(
            "SELECT count(*) FROM response_function_calls WHERE output_response_id IS NOT NULL"
        ).fetchone()[0]
        conversations = con.execute("SELECT count(DISTINCT conversation_id) FROM responses").fetchone()[0]
        streamed = con.execute("SELECT count(*) FROM exchanges WHERE operation = 'createResponse' AND streamed")
        streamed = streamed.fetchone()[0]
    assert {"completed", "cancelled", "failed", "incomplete"} <= statuses
    assert calls >= 2
    assert leaked == 0
    # the Responses workload: polled background, streamed function calls answered, a conversation
    assert {"completed", "cancelled", "failed", "incomplete"} <= responses
    assert background >= 2 and answered >= 1 and conversations == 1 and streamed >= 2


def test_sample_flow_file_is_scrubbed():
    with open(os.path.join(HERE, "demo.flows"), "rb") as fh:
        flows = list(io.FlowReader(fh).stream())
    assert len(flows) > 20
    for flow in flows:
        assert "authorization" not in flow.request.headers
    with open(os.path.join(HERE, "demo.flows"), "rb") as fh:
        assert b"sk-sample" not in fh.read()


def _realworld_module():
    spec = importlib.util.spec_from_file_location("realworld", os.path.join(HERE, "realworld.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exchanges(db: str) -> list[tuple]:
    with open_store(db) as con:
        return con.execute(
            """SELECT operation, method, regexp_replace(url, '^http://[^/]+', ''), thread_id, status_code, streamed
               FROM exchanges ORDER BY request_started_at"""
        ).fetchall()


def test_real_world_sample_holds_the_quirks_of_hosted_traffic():
    db = os.path.join(HERE, "realworld.duckdb")
    with open_store(db) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        statuses = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
        completed_event = con.execute(
            "SELECT status FROM run_snapshots WHERE event = 'thread.run.completed' AND run_id = 'run_rwIncomplete'"
        ).fetchall()
        skipped = con.execute(
            "SELECT from_status, to_status FROM run_transitions WHERE run_id = 'run_rwPolledV1'"
        ).fetchall()
        v1 = json.loads(
            con.execute("SELECT raw FROM run_snapshots WHERE run_id = 'run_rwPolledV1' LIMIT 1").fetchone()[0]
        )
        headers = con.execute("SELECT response_headers FROM exchanges LIMIT 1").fetchone()[0]
        urls = [u for (u,) in con.execute("SELECT url FROM exchanges").fetchall()]
        first_events = [
            e
            for (e,) in con.execute(
                """SELECT s.event FROM sse_events s JOIN exchanges x USING (exchange_id)
                   WHERE s.seq = 0 ORDER BY x.request_started_at"""
            ).fetchall()
        ]
    assert not any(t.startswith("replay") for t in tables)  # nobody replayed into the committed file
    assert statuses["run_rwIncomplete"] == "incomplete" and completed_event == [("incomplete",)]
    assert statuses["run_rwExpired"] == "expired"
    assert skipped == [("queued", "completed")]
    assert "usage" not in v1 and "required_action" not in v1 and v1["file_ids"] == ["file-abc123"]
    assert '"Openai-Processing-Ms"' in headers and '"X-Request-ID"' in headers and '"gzip"' in headers
    assert any(u.endswith("?") for u in urls) and any(
        "include%5B%5D=step_details.tool_calls%5B%2A%5D" in u for u in urls
    )
    assert first_events == ["thread.created", "thread.run.created", "thread.run.step.completed"]


def test_real_world_sample_regenerates_the_same_traffic(tmp_path):
    db = str(tmp_path / "realworld.duckdb")
    assert _realworld_module().record(db) == 21
    assert _exchanges(db) == _exchanges(os.path.join(HERE, "realworld.duckdb"))
