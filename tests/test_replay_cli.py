"""`runtap replay` through click: option validation, could-not-run errors, output formats, results."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import duckdb
import pytest
from click.testing import CliRunner
from rich.console import Console

from runtap.cli import cli
from runtap.demo.harness import free_port
from runtap.errors import RuntapError
from runtap.recordings.exchanges import RecordedExchange
from runtap.replay.execute import request_headers
from runtap.replay.matchers import FAILURE, WARNING, Difference
from runtap.replay.options import parse_headers, parse_id_map, parse_target
from runtap.replay.render import render_json, render_table, write_junit
from runtap.replay.results import save_report
from runtap.replay.runner import ReplayReport, SessionResult, StepResult
from runtap.replay.sessions import Step
from runtap.store.schema import all_ddl


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["replay", *args], env=env)


def empty_store(tmp_path) -> str:
    db = str(tmp_path / "empty.duckdb")
    con = duckdb.connect(db)
    for statement in all_ddl():
        con.execute(statement)
    con.close()
    return db


def test_help_names_the_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in (
        "--target",
        "--thread",
        "--capture",
        "--since",
        "--concurrency",
        "--speed",
        "--timeout",
        "--junit",
        "--format",
        "--map-id",
        "--header",
        "--ignore",
        "--token-tolerance",
        "--max-slowdown",
    ):
        assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "ftp://x"], "--target must look like http://HOST:PORT"),
        (["--target", "http://127.0.0.1:1/v1"], "has a path"),
        (["--target", "http://127.0.0.1:1", "--map-id", "nope"], "--map-id expects OLD=NEW"),
        (["--target", "http://127.0.0.1:1", "--header", "novalue"], "--header expects 'Name: value'"),
        (["--target", "http://127.0.0.1:1", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["--target", "http://127.0.0.1:1", "--since", "yesterday"], "--since expects an ISO date"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = invoke(*args, "--db", empty_store(tmp_path))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_store_with_no_sessions_exits_2(tmp_path):
    result = invoke("--target", "http://127.0.0.1:1", "--db", empty_store(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: no recorded sessions in")
    assert len(result.output.strip().splitlines()) == 1


def test_missing_store_exits_2(tmp_path):
    result = invoke("--target", "http://127.0.0.1:1", "--db", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 2 and "no runtap store" in result.output


def test_parsers():
    assert parse_target("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert parse_id_map(["asst_a=asst_b", " file_1 = file_2 "]) == {"asst_a": "asst_b", "file_1": "file_2"}
    assert parse_headers([], env={"OPENAI_API_KEY": "sk-1"}) == (("Authorization", "Bearer sk-1"),)
    assert parse_headers(["api-key: k"], env={"OPENAI_API_KEY": "sk-1"}) == (("api-key", "k"),)
    with pytest.raises(RuntapError):
        parse_target("http://127.0.0.1:99999")


def _report() -> ReplayReport:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    ex = RecordedExchange(
        "x1", "createRun", "POST", "http://h/v1/threads/thread_a/runs", "thread_a", 200, t0, 12.0, False, (), "{}", "{}"
    )
    ok = StepResult(Step(0, "request", (ex,)), "/v1/threads/thread_n/runs", 200, 200, 12.0, 15.0, [])
    bad = StepResult(
        Step(1, "request", (ex,)),
        "/v1/threads/thread_n/runs",
        200,
        500,
        12.0,
        3.0,
        [
            Difference("$.status_code", 200, 500, FAILURE, "HTTP status 200 recorded, 500 replayed: boom"),
            Difference("$.runs[0].instructions", "a", "b", WARNING, "runs[0].instructions: recorded 'a', replayed 'b'"),
        ],
    )
    report = ReplayReport("r1", "http://127.0.0.1:1", t0, t0)
    report.sessions = [
        SessionResult("thread_a", "thread_n", [ok], [], 30.0),
        SessionResult("thread_b", None, [ok, bad], [], 40.0),
    ]
    return report


def test_json_junit_and_stored_results(tmp_path):
    report = _report()
    data = json.loads(render_json(report))
    assert (data["sessions"], data["passed"], data["failed"]) == (2, 1, 1)
    assert data["details"][1]["steps"][1]["differences"][0]["message"].startswith("HTTP status 200 recorded")

    junit = tmp_path / "r.xml"
    write_junit(report, str(junit))
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        ("thread_a", "1", "0"),
        ("thread_b", "2", "1"),
    ]
    failure = suites[1].findall("testcase")[1].find("failure")
    assert "500 replayed" in failure.get("message")
    assert "instructions" in suites[1].findall("testcase")[1].find("system-out").text

    db = empty_store(tmp_path)
    save_report(db, report)
    save_report(db, report)  # appends; tables already exist
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*), sum(passed) FROM replays").fetchone() == (2, 2)
    assert con.execute(
        "SELECT thread_id, passed, failures, warnings FROM replay_sessions ORDER BY thread_id LIMIT 2"
    ).fetchall() == [("thread_a", True, 0, 0), ("thread_a", True, 0, 0)]
    assert con.execute("SELECT count(*) FROM replay_differences WHERE severity = 'failure'").fetchone() == (2,)
    con.close()


def test_target_down_exits_2(tmp_path):
    db = empty_store(tmp_path)
    con = duckdb.connect(db)
    con.execute(
        "INSERT INTO exchanges (exchange_id, operation, method, url, thread_id, status_code, "
        "request_started_at, response_body) VALUES ('x', 'createThread', 'POST', "
        "'http://h/v1/threads', 'thread_a', 200, now(), '{}')"
    )
    con.close()
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = invoke("--target", down, "--db", db)
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: target {down} is not reachable: ")
    assert "refused" in result.output and len(result.output.strip().splitlines()) == 1


def test_recorded_secrets_and_hop_by_hop_headers_are_never_resent():
    recorded = (
        ("Authorization", "[REDACTED]"),
        ("OpenAI-Organization", "[REDACTED]"),
        ("X-Custom", "[REDACTED]"),
        ("Connection", "keep-alive"),
        ("Content-Length", "12"),
        ("Host", "api.openai.com"),
        ("OpenAI-Beta", "assistants=v2"),
        ("X-Stainless-Poll-Helper", "true"),
    )
    sent = request_headers(recorded, (("Authorization", "Bearer sk-env"),))
    assert sent == [
        ("OpenAI-Beta", "assistants=v2"),
        ("X-Stainless-Poll-Helper", "true"),
        ("Authorization", "Bearer sk-env"),
    ]


def test_table_shows_each_session_with_its_differences():
    console = Console(record=True, width=200)
    render_table(_report(), console)
    text = console.export_text()
    assert "PASS thread_a -> thread_n" in text and "FAIL thread_b" in text
    assert "failure: HTTP status 200 recorded, 500 replayed: boom" in text
    assert "warning: runs[0].instructions" in text
    assert "2 sessions: 1 passed, 1 failed" in text
