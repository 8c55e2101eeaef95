"""Acceptance: a plain `mitmdump -w` recording (and a HAR made from it) ingests to the same
runs, steps, transitions, tool calls and token sums as the live addon recorded, and the same
responses, response transitions and function calls (the demo's Responses workload too).

The official openai SDK drives the demo workload through two real mitmdump processes:
plain `mitmdump -w FILE` in front (what a user records with), then `mitmdump -s addon/script.py`
(the live runtap addon) in front of the simulator. Why not one mitmdump doing both: the addon
streams runs responses, and mitmproxy saves a streamed body only when the response ends
cleanly; the SDK closes a stream as soon as it reads `[DONE]`, often before the upstream's last
chunk, and the flow is then written without its body (1 of the 2 streams in our first try).
"""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest
from click.testing import CliRunner

from runtap.cli import cli
from runtap.demo.harness import start_proxy
from runtap.demo.response_workload import run_responses_workload
from runtap.demo.workload import ASSISTANTS, run_workload
from runtap.ingest import ingest_files
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator

MUST_BE_EQUAL = {
    "runs": "SELECT run_id, thread_id, assistant_id, model, status, created_at, started_at, completed_at, "
    "prompt_tokens, completion_tokens, total_tokens FROM runs ORDER BY run_id",
    "run_steps": "SELECT step_id, run_id, type, status, prompt_tokens, completion_tokens, total_tokens "
    "FROM run_steps ORDER BY step_id",
    # observed_at of SSE events is an arrival time live, the response end in a file: not compared.
    "run_transitions": "SELECT run_id, seq, from_status, to_status FROM run_transitions ORDER BY run_id, seq",
    "tool_calls": "SELECT run_id, step_id, tool_call_id, type, function_name FROM tool_calls ORDER BY tool_call_id",
    "tokens": "SELECT model, count(*), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens) "
    "FROM runs GROUP BY model ORDER BY model",
    "operations": "SELECT operation, status_code, count(*), count(sse_events), sum(sse_events) "
    "FROM exchanges GROUP BY ALL ORDER BY ALL",
    "snapshots": "SELECT (SELECT count(*) FROM run_snapshots), (SELECT count(*) FROM step_snapshots), "
    "(SELECT count(*) FROM tool_call_snapshots), (SELECT count(*) FROM response_snapshots), "
    "(SELECT count(*) FROM response_items)",
    "responses": "SELECT response_id, conversation_id, previous_response_id, model, status, background, input_tokens, "
    "output_tokens, total_tokens, cached_tokens, reasoning_tokens FROM responses ORDER BY response_id",
    "response_transitions": "SELECT response_id, seq, from_status, to_status FROM response_transitions ORDER BY ALL",
    "response_function_calls": "SELECT response_id, call_id, name, arguments, output, output_response_id "
    "FROM response_function_calls ORDER BY call_id",
}


def figures(db: str) -> dict[str, list]:
    """Everything that must be equal between a live recording and an ingest of the same traffic."""
    con = duckdb.connect(db, read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in MUST_BE_EQUAL.items()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(live store, flow file, HAR file) of one run of the demo workload."""
    tmp = tmp_path_factory.mktemp("recording")
    live, flows, har = str(tmp / "live.duckdb"), str(tmp / "traffic.flows"), str(tmp / "traffic.har")
    with start_simulator(SimConfig(seed=21, assistants=ASSISTANTS, run_ms=100)) as sim:
        addon = start_proxy(sim.url, live, plain_mitmdump=True, log_path=str(tmp / "addon.log"))
        try:
            plain = start_proxy(
                addon.url, "", plain_mitmdump=True, extra_args=["-w", flows], log_path=str(tmp / "plain.log")
            )
            try:
                result = run_workload(plain.base_url)
                responses = run_responses_workload(plain.base_url)
            finally:
                assert plain.stop() == 0
        finally:
            assert addon.stop() == 0
    mitmdump = os.path.join(os.path.dirname(sys.executable), "mitmdump")
    subprocess.run([mitmdump, "-n", "-q", "-r", flows, "--set", f"hardump={har}"], check=True, timeout=60)
    assert len(result.runs) == 6 and len(responses.responses) == 8
    return live, flows, har


def test_flow_file_ingests_to_the_live_figures(recording, tmp_path):
    live, flows, _ = recording
    db = str(tmp_path / "ingested.duckdb")
    report = ingest_files([flows], db)
    assert report.files[0].stored == report.files[0].flows_read > 40
    expected = figures(live)
    assert expected["run_transitions"] and expected["tool_calls"] and any(r[3] for r in expected["operations"])
    assert expected["response_transitions"] and expected["response_function_calls"]
    assert figures(db) == expected


def test_har_exported_by_mitmproxy_ingests_to_the_live_figures(recording, tmp_path):
    live, _, har = recording
    db = str(tmp_path / "from-har.duckdb")
    result = CliRunner().invoke(cli, ["ingest", har, "--db", db])
    assert result.exit_code == 0, result.output
    assert figures(db) == figures(live)


def test_reingesting_the_recording_changes_nothing(recording, tmp_path):
    _, flows, har = recording
    db = str(tmp_path / "twice.duckdb")
    ingest_files([flows, har], db)
    once = figures(db)
    again = ingest_files([har, flows], db)
    assert again.total("stored") == 0 and again.total("duplicates") == again.total("flows_read")
    assert figures(db) == once
