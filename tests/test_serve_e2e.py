"""End to end: record the demo workload through a real proxy, then run it against `runtap serve`.

The recording is made once per module: simulator <- `runtap proxy` process <- official SDK.
Serve then runs with no upstream at all.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import duckdb
import openai
import pytest
from click.testing import CliRunner

from runtap.cli import cli
from runtap.demo.harness import RUNTAP, ChildProcess, free_port, start_proxy
from runtap.demo.workload import ASSISTANTS, WEATHER, run_workload
from runtap.serve.recording import load_recording
from runtap.serve.server import start_serve
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests import retry_recording
from tests.store_fixtures import make_store


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(store path, what the SDK saw while recording)."""
    db = str(tmp_path_factory.mktemp("serve") / "recorded.duckdb")
    with start_simulator(SimConfig(assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(sim.url, db)
        try:
            result = run_workload(proxy.base_url)
        finally:
            assert proxy.stop() == 0
    return db, result


def outcomes(result) -> list[tuple]:
    """Per scenario, in workload order: status, model and usage of each run."""
    return [(run["status"], run["model"], run["usage"]) for run in result.runs.values()]


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-offline", max_retries=0, timeout=10)


def test_the_workload_gets_the_recorded_outcomes_offline_twice(recorded):
    db, original = recorded
    with start_serve(db, speed=0) as server:
        duckdb.connect(db).close()  # serve does not hold the store: a proxy could keep recording
        first = run_workload(server.base_url)
        second = run_workload(server.base_url)
    assert first.runs == original.runs  # the first play hands out the recorded ids themselves
    assert first.threads == original.threads
    assert outcomes(second) == outcomes(original)
    assert not set(second.runs) & set(original.runs)  # played again: fresh run ids...
    assert not set(second.threads) & set(original.threads)  # ...and fresh threads
    assert {"completed", "cancelled", "failed", "incomplete"} <= {s for s, _, _ in outcomes(second)}


def test_concurrent_clients_each_get_their_own_threads_and_the_recorded_outcomes(recorded):
    db, original = recorded
    with start_serve(db, speed=0) as server, ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_workload(server.base_url), range(2)))
    assert [outcomes(r) for r in results] == [outcomes(original)] * 2
    threads = [t for r in results for t in r.threads]
    assert len(set(threads)) == len(threads)


def test_an_unrecorded_request_is_a_not_found_error_naming_the_closest(recorded):
    db, _ = recorded
    with start_serve(db, speed=0) as server, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sdk = client(server.base_url)
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "What is the weather in Paris?"}])
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_neverRecorded")
        error = caught.value
        assert error.code == "no_recording" and error.type == "invalid_request_error"
        assert f"no recorded createRun matches POST /v1/threads/{thread.id}/runs" in error.message
        assert 'body.assistant_id: recorded "asst_runtapWeather0001", got "asst_neverRecorded"' in error.message
        with pytest.raises(openai.NotFoundError, match="no recorded createThread matches"):
            sdk.beta.threads.create(messages=[{"role": "user", "content": "Never asked."}])
        with pytest.raises(openai.NotFoundError, match="not an Assistants runs-API request"):
            sdk.beta.assistants.retrieve(WEATHER)


def _streamed_thread(db: str):
    """The recorded thread whose run was streamed, and the recorded gaps of its first stream."""
    for session in load_recording(db).sessions:
        streams = [e for e in session.exchanges if e.exchange.streamed]
        if streams:
            return session.thread_id, streams[0]
    raise AssertionError("the workload records a streamed run")


def _stream_once(base_url: str, thread_id: str, recorded_body: dict) -> tuple[float, list[str], str]:
    """Send the recorded streamed createRun again with the SDK's stream helper."""
    params = {k: v for k, v in recorded_body.items() if k != "stream"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        started = time.monotonic()
        with client(base_url).beta.threads.runs.stream(thread_id=thread_id, **params) as stream:
            events = [event.event for event in stream]
            final = stream.get_final_run()
    return time.monotonic() - started, events, final.status


def test_streams_replay_recorded_events_with_recorded_timing(recorded):
    db, _ = recorded
    thread_id, played = _streamed_thread(db)
    exchange = played.exchange
    span = sum(exchange.event_gaps)
    assert span > 0.2  # the simulator takes ~300 ms per run turn
    with start_serve(db, speed=1) as paced:
        paced_seconds, paced_events, paced_status = _stream_once(paced.base_url, thread_id, played.key.body)
    with start_serve(db, speed=0) as fast:
        fast_seconds, fast_events, fast_status = _stream_once(fast.base_url, thread_id, played.key.body)
    recorded_events = [
        line[7:] for line in exchange.response_body.splitlines() if line.startswith("event: ") and line != "event: done"
    ]  # the SDK eats `done`
    assert paced_events == fast_events == recorded_events
    assert paced_status == fast_status == "requires_action"
    assert paced_seconds >= 0.9 * span  # the recorded gaps were waited
    assert fast_seconds < paced_seconds - 0.5 * span  # side by side: speed 0 skipped them


# --- the command ---------------------------------------------------------------------------


def test_serve_help_describes_the_options():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for text in ("--db", "--listen", "127.0.0.1:9200", "--speed", "no_recording"):
        assert text in result.output


@pytest.mark.parametrize("problem", ["missing", "not duckdb", "empty store", "bad speed"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, problem, recorded):
    db = str(tmp_path / "store.duckdb")
    args = ["serve", "--db", db, "--listen", "127.0.0.1:0"]
    expected = {
        "missing": "no runtap store at",
        "not duckdb": "is not a readable DuckDB file",
        "empty store": "holds no recorded runs traffic to serve",
        "bad speed": "--speed must be",
    }[problem]
    if problem == "not duckdb":
        with open(db, "w") as fh:
            fh.write("hello")
    elif problem == "empty store":
        make_store(db, {})
    elif problem == "bad speed":
        args = ["serve", "--db", recorded[0], "--speed", "-1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_the_serve_process_answers_and_stops_on_sigterm(recorded):
    db, original = recorded
    port = free_port()
    serve = ChildProcess(
        "runtap serve", [*RUNTAP, "serve", "--db", db, "--listen", f"127.0.0.1:{port}", "--speed", "0"]
    )
    try:
        serve.wait_for_port("127.0.0.1", port, 20)
        run_id, run = next(iter(original.runs.items()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            got = client(f"http://127.0.0.1:{port}/v1").beta.threads.runs.retrieve(run_id, thread_id=run["thread_id"])
        assert (got.status, got.model) == (run["status"], run["model"])  # a recorded thread's final state
    finally:
        code = serve.stop(timeout=10)
    output = serve.log_text()
    assert code == 0, output
    assert f"on http://127.0.0.1:{port}/v1" in output and "recorded sessions" in output


# --- failed attempts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retries(tmp_path_factory):
    return retry_recording.record(str(tmp_path_factory.mktemp("serve-retries") / "retries.duckdb"))


def test_a_client_without_retries_gets_what_the_recorded_app_got(retries):
    with start_serve(retries.db, speed=0) as server:
        sdk = retry_recording.client(server.base_url, retries=0)
        # The SDK retried the 500 while recording: the app never saw it, so neither does this client.
        assert retry_recording.play_retried(sdk) == (retries.retried, "completed")
        # The app saw that 500 and made the request again after another write: played as recorded.
        assert retry_recording.play_seen(sdk) == (retries.seen, 500, "completed")
