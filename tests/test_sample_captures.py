"""The committed sample captures are real runtap recordings (runs and Responses) and carry no credentials."""

from __future__ import annotations

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
