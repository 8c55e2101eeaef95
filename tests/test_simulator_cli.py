"""`runtap simulate`: help, option validation, and a real process serving the SDK."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

from runtap.cli import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RUNTAP = str(Path(sys.executable).with_name("runtap"))


def test_help_documents_options_and_fault_syntax():
    result = CliRunner().invoke(cli, ["simulate", "--help"])
    assert result.exit_code == 0
    for text in (
        "--seed",
        "--run-ms",
        "--event-gap-ms",
        "--strict-assistants",
        "--assistants",
        "--fault",
        "--ground-truth",
        "status=429|500|503",
        "rename=OLD:NEW",
        "sim_outcome",
        "createResponse",
        "function_call_output",
    ):
        assert text in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "status=418"], "status must be one of"),
        (["--fault", "cut=2,op=nope"], "unknown operation"),
        (["--outcome-weights", "completed=x"], "bad outcome weight"),
        (["--assistants", "/nonexistent/assistants.json"], "cannot read assistants file"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, message):
    result = CliRunner().invoke(cli, ["simulate", *args])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_simulate_process_serves_sdk_and_writes_ground_truth_on_sigterm(tmp_path):
    assistants = tmp_path / "assistants.json"
    assistants.write_text(json.dumps([{"id": "asst_rec", "model": "gpt-4o-mini", "instructions": "Hi", "tools": []}]))
    truth = tmp_path / "truth.json"
    process = subprocess.Popen(
        [
            RUNTAP,
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--run-ms",
            "20",
            "--strict-assistants",
            "--assistants",
            str(assistants),
            "--ground-truth",
            str(truth),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        assert "listening on http://127.0.0.1:" in line
        client = openai.OpenAI(base_url=line.split()[-1], api_key="k", max_retries=0)
        run = client.beta.threads.create_and_run_poll(
            assistant_id="asst_rec", thread={"messages": [{"role": "user", "content": "Hello [complete]"}]}
        )
        assert run.status == "completed" and run.model == "gpt-4o-mini"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stderr.close()
    runs = json.loads(truth.read_text())["runs"]
    assert [(r["id"], r["status"]) for r in runs] == [(run.id, "completed")]
