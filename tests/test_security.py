"""Secrets never reach the store or the logs (under load and faults), replay and serve never send
recorded credentials, and the servers bind to loopback by default."""

from __future__ import annotations

import asyncio
import glob
import os
import pathlib
import re
import signal
import subprocess
import threading

import duckdb
import httpx
import pytest
from aiohttp import web

from runtap.cli import cli
from runtap.demo.harness import RUNTAP, ChildProcess, SimulatorProcess, free_port, start_proxy, wait_for_port
from runtap.demo.response_workload import run_responses_workload
from tests.load_clients import child_pids, drive, wait_for_log

API_KEY = "sk-proj-SECRETKEY0123456789abcdef"
SECRET_HEADERS = {
    "OpenAI-Organization": "org-SECRETORG42",
    "OpenAI-Project": "proj_SECRETPROJ42",
    "api-key": "SECRETAZUREKEY42",
    "Cookie": "session=SECRETCOOKIE42",
}
SECRETS = [API_KEY, "SECRETORG42", "SECRETPROJ42", "SECRETAZUREKEY42", "SECRETCOOKIE42"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Load with secret headers through a verbose proxy while the upstream injects faults."""
    tmp = tmp_path_factory.mktemp("security")
    db = str(tmp / "store.duckdb")
    faults = ["--fault", "cut=3,op=createRun,count=3", "--fault", "status=429,op=getRun,count=5"]
    with SimulatorProcess("--run-ms", "60", "--poll-after-ms", "40", *faults) as sim:
        proxy = start_proxy(sim.url, db, log_path=str(tmp / "proxy.log"), extra_args=["--verbose"])
        tally = asyncio.run(drive(proxy.base_url, 10, 3, api_key=API_KEY, **SECRET_HEADERS))
        code = proxy.stop()
    yield db, tally, code, proxy.log_text()


def _store_files(db: str) -> list[str]:
    """The store, any WAL, and what is left of the journal."""
    return [p for p in glob.glob(db + "*") + glob.glob(db + ".journal/*") if os.path.isfile(p)]


def test_no_secret_in_the_store_files_or_the_proxy_log(recorded):
    db, tally, code, log = recorded
    assert code == 0 and tally.request_ids and tally.errors  # traffic flowed, and faults hit it
    for path in _store_files(db):
        with open(path, "rb") as fh:
            raw = fh.read()
        for secret in SECRETS:
            assert secret.encode() not in raw, (path, secret)
    assert b"[REDACTED]" in pathlib.Path(db).read_bytes()  # the headers were kept, their values not
    assert "GET" in log or "POST" in log  # verbose: flows are logged
    for secret in SECRETS:
        assert secret not in log


@pytest.fixture(scope="module")
def responses_recorded(tmp_path_factory):
    """The Responses workload (streams, polls, conversations) with secret headers through a verbose proxy."""
    tmp = tmp_path_factory.mktemp("security-responses")
    db = str(tmp / "store.duckdb")
    with SimulatorProcess("--run-ms", "60") as sim:
        proxy = start_proxy(sim.url, db, log_path=str(tmp / "proxy.log"), extra_args=["--verbose"])
        result = run_responses_workload(proxy.base_url, api_key=API_KEY, headers=SECRET_HEADERS)
        code = proxy.stop()
    yield db, result, code, proxy.log_text()


def test_no_secret_in_the_store_or_log_with_the_responses_api(responses_recorded):
    db, result, code, log = responses_recorded
    assert code == 0 and result.responses and result.conversations
    with duckdb.connect(db, read_only=True) as con:
        recorded = con.execute(
            "SELECT count(*) FROM exchanges WHERE operation IN ('createResponse', 'createConversation')"
        ).fetchone()[0]
        snapshots = con.execute("SELECT count(*) FROM response_snapshots").fetchone()[0]
    assert recorded and snapshots  # the Responses traffic was recorded, headers included
    for path in _store_files(db):
        raw = pathlib.Path(path).read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in raw, (path, secret)
    assert b"[REDACTED]" in pathlib.Path(db).read_bytes()
    for secret in SECRETS:
        assert secret not in log


def test_no_secret_in_exported_traces(recorded, tmp_path):
    db, *_ = recorded
    out = tmp_path / "traces.jsonl"
    result = subprocess.run(
        [*RUNTAP, "export", "--otlp-file", str(out), "--include-content", "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and re.match(r"exported [1-9]\d* traces", result.stdout), result.stderr
    raw = out.read_text()
    assert "invoke_agent" in raw and "execute_tool" in raw
    for secret in SECRETS + ["REDACTED"]:
        assert secret not in raw


def test_no_secret_in_a_journal_left_by_a_crash(tmp_path):
    """The journal is written before anything else sees an exchange: secrets are redacted first."""
    db = str(tmp_path / "crash.duckdb")
    with SimulatorProcess("--run-ms", "60", "--poll-after-ms", "40") as sim:
        proxy = start_proxy(
            sim.url, db, log_path=str(tmp_path / "proxy.log"), extra_args=["--redact-header", "X-Extra"]
        )
        wait_for_log(proxy, "recording to")
        tally = asyncio.run(
            drive(proxy.base_url, 4, 1, api_key=API_KEY, **SECRET_HEADERS, **{"X-Extra": "SECRETEXTRA42"})
        )
        for pid in [proxy.proc.pid, *child_pids(proxy.proc.pid)]:
            os.kill(pid, signal.SIGKILL)  # nothing is applied or deleted: the journal stays as written
        proxy.proc.wait()
    segments = glob.glob(db + ".journal/*.seg")
    raw = b"".join(pathlib.Path(p).read_bytes() for p in segments)
    assert tally.request_ids and segments and b"/runs" in raw
    for secret in [*SECRETS, "SECRETEXTRA42"]:
        assert secret.encode() not in raw, secret


class _HeaderSink:
    """A target server that answers 404 and remembers the headers of every API request."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path != "/":  # replay's reachability probe carries no credentials at all
            self.headers.append(dict(request.headers))
        return web.json_response({"error": {"message": "no", "type": "invalid_request_error"}}, status=404)

    def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.loop.run_forever()

    def __enter__(self) -> _HeaderSink:
        self.thread.start()
        assert wait_for_port("127.0.0.1", self.port, 10)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_replay_sends_the_environment_key_never_recorded_credentials(recorded):
    db, *_ = recorded
    with _HeaderSink() as target:
        env = {**os.environ, "OPENAI_API_KEY": "sk-from-the-environment"}
        result = subprocess.run(
            [*RUNTAP, "replay", "--target", f"http://127.0.0.1:{target.port}", "--db", db],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 1, result.stderr  # a 404 target is a regression, not a crash
    assert target.headers
    for headers in target.headers:
        assert headers.get("Authorization") == "Bearer sk-from-the-environment", headers
        sent = " ".join(f"{k}: {v}" for k, v in headers.items())
        assert "REDACTED" not in sent and "Cookie" not in headers
        for secret in SECRETS:
            assert secret not in sent
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_serve_answers_without_recorded_credentials(recorded):
    db, *_ = recorded
    port = free_port()
    with ChildProcess("runtap serve", [*RUNTAP, "serve", "--db", db, "--listen", f"127.0.0.1:{port}"]) as serve:
        serve.wait_for_port("127.0.0.1", port)
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/threads", json={}, headers={"Authorization": "Bearer sk-x"})
    answer = resp.text + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
    assert resp.status_code < 500
    for secret in SECRETS + ["REDACTED"]:
        assert secret not in answer


@pytest.mark.parametrize("command", ["serve", "simulate", "proxy"])
def test_servers_listen_on_loopback_by_default(command):
    (listen,) = [p for p in cli.commands[command].params if p.name == "listen"]
    assert str(listen.default).startswith("127.0.0.1:")
