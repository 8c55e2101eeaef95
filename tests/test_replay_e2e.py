"""End to end: record the SDK workload through a real `runtap proxy`, replay it against simulators.

One recording (simulator -> real proxy process -> DuckDB file, driven by the official openai SDK)
is replayed against a fresh simulator with new ids and a slower `run_ms` (more polls needed), and
then against simulators changed in one way at a time; each change must fail exactly the sessions
it touches, with a message naming it.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from runtap.cli import cli
from runtap.demo.harness import start_proxy
from runtap.demo.workload import ASSISTANTS, run_workload
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from runtap.store.reader import open_store
from tests import retry_recording

pytestmark = pytest.mark.timeout(90)

# The workload's sessions, in the order `run_workload` records them (WorkloadResult.threads).
POLLED_TOOLS, STREAMED_TOOLS, CANCELLED, FAILED, INCOMPLETE, CREATE_AND_RUN = range(6)
# Same seed: the same behaviour for the same requests (ids are fresh on every simulator anyway).
SEED = 0  # with this seed the un-hinted runs (Paris, Tokyo, French) call tools and complete


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A store holding one round of the workload, recorded through the real proxy."""
    tmp = tmp_path_factory.mktemp("replay-e2e")
    db = str(tmp / "recorded.duckdb")
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20)) as sim:
        with start_proxy(sim.url, db, log_path=str(tmp / "proxy.log")) as proxy:
            workload = run_workload(proxy.base_url)
        assert proxy.proc.returncode == 0, proxy.log_text()
    with open_store(db) as con:
        polls = con.execute("SELECT count(*) FROM exchanges WHERE operation = 'getRun'").fetchone()[0]
        tool_sessions = con.execute(
            "SELECT thread_id, bool_or(streamed) FROM exchanges WHERE operation = 'submitToolOutputsToRun' GROUP BY ALL"
        ).fetchall()
    assert polls >= 6  # the poll loops are there to collapse
    # The changes below rely on these sessions calling tools (polled and streamed).
    assert dict(tool_sessions) == {workload.threads[POLLED_TOOLS]: False, workload.threads[STREAMED_TOOLS]: True}
    return db, workload.threads


def replay(db: str, sim_url: str, *extra: str):
    result = CliRunner().invoke(
        cli,
        [
            "replay",
            "--target",
            sim_url,
            "--db",
            db,
            "--format",
            "json",
            "--concurrency",
            "6",
            "--timeout",
            "20",
            *extra,
        ],
        env={"OPENAI_API_KEY": "sk-replay-key"},
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def failed_sessions(report: dict) -> set[str]:
    return {s["thread_id"] for s in report["details"] if not s["passed"]}


def messages(report: dict, thread: str) -> list[str]:
    session = next(s for s in report["details"] if s["thread_id"] == thread)
    return [d["message"] for step in session["steps"] for d in step["differences"] if d["severity"] == "failure"] + [
        d["message"] for d in session["differences"] if d["severity"] == "failure"
    ]


def test_replay_against_a_fresh_slower_simulator_passes_everything(recording, tmp_path):
    db, threads = recording
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=150, poll_after_ms=20)) as sim:
        code, report = replay(db, sim.url, "--junit", str(tmp_path / "replay.xml"))
    assert (code, report["sessions"], report["passed"], report["failed"]) == (0, 6, 6, 0), json.dumps(report)[:3000]
    assert {s["thread_id"] for s in report["details"]} == set(threads)
    for session in report["details"]:
        assert session["replayed_thread_id"] not in (None, session["thread_id"])  # new ids were learned
    waits = [s for d in report["details"] for s in d["steps"] if s["kind"] == "wait"]
    assert waits and all(s["replayed_status"] == 200 for s in waits)
    kinds = {s["operation"] for d in report["details"] for s in d["steps"]}
    assert {
        "createThread",
        "createMessage",
        "createRun",
        "submitToolOutputsToRun",
        "cancelRun",
        "createThreadAndRun",
        "getRun",
    } <= kinds
    assert (tmp_path / "replay.xml").read_text().count("<testsuite ") == 6
    with open_store(db) as con:  # results were stored next to the recording
        assert con.execute("SELECT sessions, passed FROM replays").fetchall()[-1] == (6, 6)


@pytest.mark.parametrize(
    ("fault", "affected", "words"),
    [
        ("outcome=failed,match=Paris", POLLED_TOOLS, "replayed 'failed'"),
        (
            "rename=get_current_weather:get_weather,match=Tokyo",
            STREAMED_TOOLS,
            "tool function renamed: recorded get_current_weather(), replayed get_weather()",
        ),
        ("tokens=3,match=French", CREATE_AND_RUN, "total_tokens: recorded"),
        ("status=500,op=createRun,match=slow", CANCELLED, "HTTP status 200 recorded, 500 replayed"),
        ("cut=5,op=createRun", STREAMED_TOOLS, "stream events differ at #5"),
    ],
    ids=["run-now-fails", "tool-renamed", "tokens-tripled", "500-on-create", "stream-ends-early"],
)
def test_each_change_fails_exactly_the_affected_session(recording, fault, affected, words):
    db, threads = recording
    with start_simulator(
        SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20, faults=[fault])
    ) as sim:
        code, report = replay(db, sim.url)
    assert code == 1
    assert failed_sessions(report) == {threads[affected]}
    found = messages(report, threads[affected])
    assert any(words in m for m in found), found


def test_recorded_pacing_and_thread_filter(recording):
    db, threads = recording
    with open_store(db) as con:
        span = con.execute(
            "SELECT epoch_ms(max(request_started_at)) - epoch_ms(min(request_started_at)) FROM exchanges "
            "WHERE thread_id = ?",
            [threads[POLLED_TOOLS]],
        ).fetchone()[0]
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20)) as sim:
        code, report = replay(db, sim.url, "--thread", threads[POLLED_TOOLS], "--speed", "1")
    assert (code, report["sessions"], report["passed"]) == (0, 1, 1)
    assert report["details"][0]["duration_ms"] >= span * 0.9  # steps started at their recorded offsets


def test_missing_credentials_are_a_setup_error_not_a_regression(recording):
    db, _ = recording
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS)) as sim:
        result = CliRunner().invoke(cli, ["replay", "--target", sim.url, "--db", db], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 2, result.output
    assert "OPENAI_API_KEY" in result.output and "Traceback" not in result.output


def test_replay_reads_a_parquet_export_and_globs_like_the_store(recording, tmp_path):
    db, threads = recording
    export = tmp_path / "export"
    result = CliRunner().invoke(cli, ["export", "--parquet", str(export), "--db", db])
    assert result.exit_code == 0, result.output
    with start_simulator(SimConfig(seed=SEED, assistants=ASSISTANTS, run_ms=60, poll_after_ms=20)) as sim:
        code, from_export = replay(str(export), sim.url)
        code_glob, from_glob = replay(db.replace("recorded.duckdb", "recorded*.duckdb"), sim.url)
    assert (code, from_export["sessions"], from_export["passed"]) == (0, 6, 6)
    assert (code_glob, from_glob["sessions"], from_glob["passed"]) == (0, 6, 6)
    assert {s["thread_id"] for s in from_export["details"]} == set(threads)


# --- failed attempts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retries(tmp_path_factory):
    return retry_recording.record(str(tmp_path_factory.mktemp("replay-retries") / "retries.duckdb"))


def test_an_sdk_retry_is_sent_once_and_a_failure_the_app_saw_is_expected_again(retries):
    # The target fails the seen case's first createRun as the recording did; the retried case not at all.
    seen_fault = retry_recording.FAULTS[1]
    with start_simulator(SimConfig(assistants=ASSISTANTS, run_ms=60, poll_after_ms=20, faults=[seen_fault])) as sim:
        code, report = replay(retries.db, sim.url)
    assert (code, report["sessions"], report["passed"]) == (0, 2, 2), json.dumps(report)[:3000]
    creates = {
        s["thread_id"]: [step["recorded_status"] for step in s["steps"] if step["operation"] == "createRun"]
        for s in report["details"]
    }
    assert creates == {retries.retried: [200], retries.seen: [500, 200]}
