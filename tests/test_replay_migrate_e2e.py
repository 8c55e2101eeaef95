"""End to end: a migration replay (`runtap replay --api responses`) of the demo recording.

The demo workloads (Assistants runs, and native Responses traffic) are recorded through a real
`runtap proxy` process with the official openai SDK; the recording is replayed, translated to the
Responses API by runtap's own HTTP client, against a fresh simulator (new ids, other timing), then
against simulators told to misbehave in one way at a time: exactly the affected session fails,
naming the change. A real-world-shaped capture from `sample_captures/` replays without a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from runtap.cli import cli
from runtap.demo.harness import start_proxy
from runtap.demo.response_workload import run_responses_workload
from runtap.demo.workload import ASSISTANTS, run_workload
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from runtap.store.reader import open_store

pytestmark = pytest.mark.timeout(120)

# The Assistants sessions, in the order `run_workload` records them (WorkloadResult.threads).
POLLED_TOOLS, STREAMED_TOOLS, CANCELLED, FAILED, INCOMPLETE, CREATE_AND_RUN = range(6)
SEED = 0  # the recording's seed: the same requests get the same behaviour (ids are fresh anyway)
SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_captures")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A store holding the demo workloads (runs and Responses), recorded through the real proxy."""
    tmp = tmp_path_factory.mktemp("migrate-e2e")
    db = str(tmp / "recorded.duckdb")
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20)) as sim:
        with start_proxy(sim.url, db, log_path=str(tmp / "proxy.log")) as proxy:
            workload = run_workload(proxy.base_url)
            native = run_responses_workload(proxy.base_url)
        assert proxy.proc.returncode == 0, proxy.log_text()
    assert len(native.responses) >= 6
    return db, workload.threads


def migrate(db: str, sim_url: str, *extra: str, env: dict | None = None) -> tuple[int, dict]:
    result = CliRunner().invoke(
        cli,
        ["replay", "--api", "responses", "--target", sim_url, "--db", db, "--format", "json", "--concurrency", "6"]
        + ["--timeout", "20", *extra],
        env=env if env is not None else {"OPENAI_API_KEY": "sk-migrate-key"},
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def replayed(report: dict) -> list[dict]:
    return [s for s in report["details"] if s["skipped"] is None]


def failures(session: dict) -> list[str]:
    found = [d["message"] for step in session["steps"] for d in step["differences"] if d["severity"] == "failure"]
    return found + [d["message"] for d in session["differences"] if d["severity"] == "failure"]


def test_the_demo_recording_passes_against_a_fresh_responses_target(recording, tmp_path):
    db, threads = recording
    config = SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=150, poll_after_ms=30)
    with start_simulator(config) as sim:
        code, report = migrate(db, sim.url, "--junit", str(tmp_path / "migrate.xml"))
        truth = sim.ground_truth()
    assert code == 0, json.dumps(report)[:4000]
    sessions = replayed(report)
    assert [s["thread_id"] for s in sessions] == threads
    assert all(s["passed"] for s in sessions), [failures(s) for s in sessions]
    assert (report["api"], report["passed"], report["failed"]) == ("responses", 6, 0)
    # every session became a conversation on the target; no Assistants object was made there
    assert all(s["replayed_thread_id"].startswith("conv_") for s in sessions)
    assert truth["runs"] == [] and len(truth["conversations"]) == 6
    sent = {step["operation"]: step["sent"] for s in sessions for step in s["steps"]}
    assert sent["createThread"] == "POST /v1/conversations"
    assert sent["createMessage"] == "POST /v1/conversations/{id}/items"
    assert sent["cancelRun"] == "POST /v1/responses/{id}/cancel"
    assert sent["getRun"] == "GET /v1/responses/{id} (polled)"
    assert {s["sent"] for d in sessions for s in d["steps"] if s["operation"] == "createRun"} == {
        "POST /v1/responses (background)",
        "POST /v1/responses (stream)",
    }
    # not comparable: listed with the reason, never a failure
    listed = {(n["operation"], n["reason"]) for s in sessions for n in s["not_comparable"]}
    assert {op for op, _ in listed} == {"listRuns", "listRunSteps", "getRunStep", "modifyRun"}
    assert all(reason for _, reason in listed)
    # the native Responses traffic is skipped, each group with its reason
    skipped = [s for s in report["details"] if s["skipped"] is not None]
    assert report["skipped"] == len(skipped) == 6
    assert all("native Responses API traffic" in s["skipped"] for s in skipped)
    assert sum(s["thread_id"].startswith("conv_") for s in skipped) == 1  # the conversation, as one session
    # the same tokens on both sides (the simulator's responses choose what its runs chose)
    costs = {row["model"]: row for row in report["costs"]}
    assert set(costs) == {"gpt-4o", "gpt-4o-mini", "gpt-4-turbo", "o3-mini", "all"}
    for row in costs.values():
        assert (row["old_input_tokens"], row["old_output_tokens"]) == (
            row["new_input_tokens"],
            row["new_output_tokens"],
        )
    assert costs["gpt-4o"]["runs"] == 2 and costs["gpt-4o"]["responses"] == 4  # a tool turn and a final turn each
    assert costs["gpt-4o"]["old_cost_usd"] > 0 and costs["gpt-4o"]["new_cost_usd"] > 0
    # JUnit: the skipped sessions and the not-comparable steps are skipped test cases
    suites = ET.parse(tmp_path / "migrate.xml").getroot()
    assert len(suites.findall("testsuite")) == 12
    assert not suites.findall(".//failure")
    assert len(suites.findall(".//skipped")) == 6 + len([n for s in sessions for n in s["not_comparable"]])
    # results are stored next to the recording
    with open_store(db) as con:
        row = con.execute("SELECT api, sessions, passed, failed, skipped FROM replays").fetchall()[-1]
        assert row == ("responses", 12, 6, 0, 6)
        stored = con.execute("SELECT count(*) FROM replay_differences WHERE severity = 'not comparable'").fetchone()
        assert stored[0] == sum(len(s["not_comparable"]) for s in sessions)
        assert con.execute("SELECT count(*) FROM replay_costs").fetchone()[0] == 5


@pytest.mark.parametrize(
    ("fault", "affected", "words"),
    [
        ("outcome=failed,match=Paris", POLLED_TOOLS, "status: the run was requires_action, the response is failed"),
        (
            "rename=get_current_weather:get_weather,match=Tokyo",
            STREAMED_TOOLS,
            "tool function renamed: recorded get_current_weather(), replayed get_weather()",
        ),
        ("tokens=3,match=French", CREATE_AND_RUN, "total_tokens: recorded 151, replayed 453 (3.00x"),
        ("status=500,op=createResponse,match=slow", CANCELLED, "HTTP status 200 recorded, 500 replayed"),
        ("cut=5,op=createResponse", STREAMED_TOOLS, "stream events differ at #3: the run streamed completed"),
    ],
    ids=["response-now-fails", "function-renamed", "tokens-tripled", "500-on-create", "stream-cut-short"],
)
def test_each_change_fails_exactly_the_affected_session(recording, fault, affected, words):
    db, threads = recording
    config = SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20, faults=[fault])
    with start_simulator(config) as sim:
        code, report = migrate(db, sim.url)
    assert code == 1
    failed = [s for s in replayed(report) if not s["passed"]]
    assert [s["thread_id"] for s in failed] == [threads[affected]]
    assert report["failed"] == 1 and report["skipped"] == 6
    found = failures(failed[0])
    assert any(words in m for m in found), found


def test_tokens_tripled_show_in_the_cost_table(recording):
    db, threads = recording
    config = SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20, faults=["tokens=3,match=French"])
    with start_simulator(config) as sim:
        _, report = migrate(db, sim.url, "--thread", threads[CREATE_AND_RUN])
    assert report["skipped"] == 0  # a --thread filter names threads: native traffic is not listed
    (row, total) = report["costs"]
    assert row["model"] == "gpt-4o-mini" and total["model"] == "all"
    assert row["new_input_tokens"] == 3 * row["old_input_tokens"]
    assert row["cost_change"] == pytest.approx(3.0, rel=0.01)


def test_credentials_come_from_the_environment_or_a_header(recording):
    db, threads = recording
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20)) as sim:
        refused = CliRunner().invoke(
            cli, ["replay", "--api", "responses", "--target", sim.url, "--db", db], env={"OPENAI_API_KEY": ""}
        )
        code, report = migrate(
            db,
            sim.url,
            "--thread",
            threads[FAILED],
            "--header",
            "Authorization: Bearer sk-from-header",
            env={"OPENAI_API_KEY": ""},
        )
    assert refused.exit_code == 2, refused.output
    assert "OPENAI_API_KEY" in refused.output and "Traceback" not in refused.output
    assert (code, report["passed"]) == (0, 1)


def test_a_real_world_shaped_capture_replays_with_a_clear_not_comparable_list(tmp_path):
    db = str(tmp_path / "realworld.duckdb")
    shutil.copy(os.path.join(SAMPLES, "realworld.duckdb"), db)  # replay stores its results in the store
    with start_simulator(SimConfig(seed=SEED, run_ms=60, poll_after_ms=20)) as sim:
        code, report = migrate(db, sim.url)
    by_thread = {s["thread_id"]: s for s in report["details"]}
    notes = {t: [(n["operation"], n["reason"]) for n in s["not_comparable"]] for t, s in by_thread.items()}
    assert report["sessions"] == 6 and report["skipped"] == 1
    assert (
        by_thread["thread_rwSeenLate"]["skipped"] == "nothing in it has a Responses counterpart (listRuns, getRunStep)"
    )
    assert ("createRun", "tool not sent: tool type 'retrieval' has no Responses counterpart") in notes[
        "thread_rwPolledV1"
    ]
    assert any(op == "listRunSteps" for op, _ in notes["thread_rwPolledV1"])  # include[] percent-encoded: read
    [(op, reason)] = notes["thread_rwExpired"]
    assert op == "getRun" and reason.startswith("run status expired: responses cannot expire")
    # every translatable step was sent and answered; what differs is said, nothing crashed
    sent = [step for s in report["details"] for step in s["steps"]]
    assert {step["operation"] for step in sent} >= {"createThread", "createThreadAndRun", "createRun", "getRun"}
    assert code in (0, 1) and all(step["replayed_status"] is not None or step["differences"] for step in sent)
