"""`runtap proxy --otlp URL` (otel/live.py): each run's spans reach a real OTLP/HTTP receiver once
the run ends, from the recorder process; the same spans and ids as `runtap export --otlp-file`;
a receiver that is down costs one warning line and nothing in the store.

Real components: the simulator, a real `runtap proxy`, the official openai SDK, and a small OTLP/HTTP
receiver (http.server decoding `ExportTraceServiceRequest` with opentelemetry-proto).
"""

from __future__ import annotations

import asyncio
import http.server
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter

import duckdb
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from runtap.demo.harness import RUNTAP, free_port, start_proxy
from runtap.demo.workload import ASSISTANTS, WEATHER, run_workload
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.conftest import DEMO_KEY
from tests.load_clients import child_pids, drive, store_request_ids, wait_for_log, wait_until_stored
from tests.otlp_file import read_spans, value

WAIT_SECONDS = 60


def _wait_for(condition, what: str) -> None:
    """Wait until `condition()` holds (a point in the work, not a guessed time)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT_SECONDS}s"
        time.sleep(0.05)


class Receiver:
    """An OTLP/HTTP traces receiver on 127.0.0.1: keeps every request's spans, answers 200."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
                with owner.lock:
                    owner.requests.append(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list:
        """Every span received so far (protobuf `Span` messages), in arrival order."""
        with self.lock:
            bodies = list(self.requests)
        out = []
        for body in bodies:
            request = ExportTraceServiceRequest.FromString(body)
            out += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attributes(span) -> dict:
    return {a.key: value(a.value) for a in span.attributes}


def _rows(db: str, sql: str) -> list[tuple]:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The demo workload through `runtap proxy --otlp`; what the receiver got before and after the
    proxy stopped, the proxy's exit code and log, the store, and the client's view."""
    db = str(tmp_path_factory.mktemp("live") / "store.duckdb")
    receiver = Receiver()
    try:
        with start_simulator(SimConfig(seed=11, assistants=ASSISTANTS)) as sim:
            proxy = start_proxy(sim.url, db, extra_args=["--otlp", receiver.url])
            try:
                client_view = run_workload(proxy.base_url, api_key=DEMO_KEY)
                # Every run the client saw end is sent while the proxy still runs (not at shutdown).
                deadline = time.monotonic() + WAIT_SECONDS
                while True:
                    sent = {_attributes(s).get("runtap.run.id") for s in receiver.spans()}
                    if set(client_view.runs) <= sent or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                before_stop = receiver.spans()
            finally:
                code = proxy.stop()
        yield before_stop, receiver.spans(), code, proxy.log_text(), db, client_view, list(receiver.requests)
    finally:
        receiver.close()


def test_each_run_is_sent_once_it_ends_while_the_proxy_runs(live):
    before_stop, _, code, log, _, client_view, _ = live
    assert code == 0, log[-3000:]
    agents = [s for s in before_stop if _attributes(s).get("gen_ai.operation.name") == "invoke_agent"]
    assert sorted(_attributes(s)["runtap.run.id"] for s in agents) == sorted(client_view.runs)
    assert all(
        _attributes(s)["runtap.run.status"] in ("completed", "failed", "cancelled", "incomplete") for s in agents
    )
    # a run is sent with its tool calls and model calls, never a span twice
    assert any(_attributes(s).get("gen_ai.operation.name") == "execute_tool" for s in before_stop)
    ids = Counter(s.span_id for s in before_stop)
    assert ids.most_common(1)[0][1] == 1
    # thread spans come at shutdown, when their extent is known
    assert not [s for s in before_stop if s.name == "thread"]


def test_the_same_spans_and_ids_as_runtap_export(live, tmp_path):
    _, spans, code, log, db, _, _ = live
    assert code == 0, log[-3000:]
    out = str(tmp_path / "export.jsonl")
    subprocess.run([*RUNTAP, "export", "--otlp-file", out, "--db", db], check=True, capture_output=True)
    exported = {s.span_id: s for s in read_spans(out)}
    received = {s.span_id.hex(): s for s in spans}
    assert len(received) == len(spans), "a span was sent twice"
    # A run is sent as recorded when it ended: the demo lists run steps only after its runs, so a
    # run whose step was not observed by then has its usage in one `chat` span for the run
    # (`runtap export` later builds one per step). Every other span is the same, with the same ids.
    chat = {i for i, s in received.items() if s.name.startswith("chat ")}
    chat_exported = {i for i, s in exported.items() if s.name.startswith("chat ")}
    assert set(received) - chat == set(exported) - chat_exported
    for span_id in set(received) - chat:
        span, twin = received[span_id], exported[span_id]
        assert (span.trace_id.hex(), span.name, span.parent_span_id.hex() or None) == (
            twin.trace_id,
            twin.name,
            twin.parent_id,
        )

    # and per model the `chat` spans add up to the same tokens (those of `report tokens`)
    def tokens(attribute_sets):
        sums = Counter()
        for attributes in attribute_sets:
            model = attributes.get("gen_ai.response.model")
            sums[model, "in"] += attributes.get("gen_ai.usage.input_tokens") or 0
            sums[model, "out"] += attributes.get("gen_ai.usage.output_tokens") or 0
        return sums

    assert tokens(_attributes(received[i]) for i in chat) == tokens(exported[i].attributes for i in chat_exported)
    assert len(chat ^ chat_exported) <= 2 * len(_rows(db, "SELECT run_id FROM runs"))


def test_agent_spans_carry_the_store_s_models_and_tokens_and_tool_spans_its_tool_calls(live):
    _, spans, _, _, db, _, _ = live
    runs = {
        run_id: (model, prompt, completion)
        for run_id, model, prompt, completion in _rows(
            db, "SELECT run_id, model, prompt_tokens, completion_tokens FROM runs"
        )
    }
    agents = {}
    for span in spans:
        attributes = _attributes(span)
        if attributes.get("gen_ai.operation.name") == "invoke_agent":
            agents[attributes["runtap.run.id"]] = (
                attributes.get("gen_ai.response.model"),
                attributes.get("gen_ai.usage.input_tokens"),
                attributes.get("gen_ai.usage.output_tokens"),
            )
    assert agents == runs
    tools = sorted(
        _attributes(s)["gen_ai.tool.call.id"]
        for s in spans
        if _attributes(s).get("gen_ai.operation.name") == "execute_tool"
    )
    assert tools == sorted(r[0] for r in _rows(db, "SELECT tool_call_id FROM tool_calls"))
    threads = {s.trace_id for s in spans if s.name == "thread"}
    assert len(threads) == _rows(db, "SELECT count(DISTINCT thread_id) FROM runs")[0][0]


def test_no_secret_and_no_content_is_sent(live):
    *_, requests = live
    body = b"".join(requests)
    assert DEMO_KEY.encode() not in body and b"Bearer" not in body
    keys = {a.key for s in live[1] for a in s.attributes}
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "input.value", "output.value"} & keys
    assert not [k for k in keys if k.startswith("http.request.header.")]


def test_a_receiver_that_is_down_costs_one_warning_and_nothing_in_the_store(tmp_path):
    db = str(tmp_path / "down.duckdb")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with start_simulator(SimConfig(seed=5, assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(sim.url, db, extra_args=["--otlp", down])
        try:
            first = asyncio.run(drive(proxy.base_url, clients=4, sessions=2))
            wait_for_log(proxy, "OTLP export to")  # the first failed send, while traffic goes on
            second = asyncio.run(drive(proxy.base_url, clients=4, sessions=2))
            request_ids = first.request_ids + second.request_ids
            assert not first.errors and not second.errors
            assert wait_until_stored(db, request_ids) == Counter()
        finally:
            started = time.monotonic()
            code = proxy.stop()
            stopped_in = time.monotonic() - started
        log = proxy.log_text()
    assert code == 0, log[-3000:]
    assert store_request_ids(db) == request_ids  # every exchange, once
    warnings = [line for line in log.splitlines() if "OTLP export to" in line]
    assert len(warnings) == 1, log[-3000:]
    assert re.search(r"failed: .*(refused|Connection)", warnings[0]), warnings[0]
    assert "Failed to export" not in log and "Traceback" not in log  # the exporter's own lines stay out
    assert stopped_in < 20  # the shutdown's last send waits TIMEOUT_SECONDS at most


def test_a_run_still_open_is_sent_at_shutdown(tmp_path):
    from openai import OpenAI

    db = str(tmp_path / "open.duckdb")
    receiver = Receiver()
    try:
        with start_simulator(SimConfig(seed=3, assistants=ASSISTANTS)) as sim:
            proxy = start_proxy(sim.url, db, extra_args=["--otlp", receiver.url])
            try:
                client = OpenAI(base_url=proxy.base_url, api_key=DEMO_KEY, max_retries=0)
                thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
                run = client.beta.threads.runs.create_and_poll(
                    thread_id=thread.id, assistant_id=WEATHER, metadata={"sim_outcome": "completed"}
                )
                assert run.status == "requires_action"  # and the client never answers
                # An exchange on no run (a message posted) is sent at once, after everything journaled before it:
                # once it is in, the open run has been looked at, and was not sent.
                posted = client.beta.threads.messages.with_raw_response.create(
                    thread_id=thread.id, role="user", content="Still there?"
                )
                request_id = [posted.headers["x-request-id"]]
                _wait_for(
                    lambda: any(
                        _attributes(s).get("http.response.header.x-request-id") == request_id for s in receiver.spans()
                    ),
                    "the posted message's span",
                )
                assert not [s for s in receiver.spans() if _attributes(s).get("runtap.run.id") == run.id]
            finally:
                code = proxy.stop()
    finally:
        receiver.close()
    assert code == 0, proxy.log_text()[-3000:]
    spans = receiver.spans()
    (agent,) = [s for s in spans if _attributes(s).get("runtap.run.id") == run.id]
    assert _attributes(agent)["runtap.run.status"] == "requires_action"
    assert _attributes(agent)["runtap.run.ended"] is False
    tools = [s for s in spans if s.parent_span_id == agent.span_id and s.name.startswith("execute_tool")]
    assert len(tools) == len(run.required_action.submit_tool_outputs.tool_calls)
    (root,) = [s for s in spans if s.name == "thread"]
    assert agent.parent_span_id == root.span_id and root.start_time_unix_nano <= agent.start_time_unix_nano
    assert max(s.end_time_unix_nano for s in spans) == root.end_time_unix_nano


def test_a_restarted_recorder_sends_again_only_with_the_same_ids(tmp_path):
    db = str(tmp_path / "restart.duckdb")
    receiver = Receiver()
    try:
        with start_simulator(SimConfig(seed=7, assistants=ASSISTANTS)) as sim:
            proxy = start_proxy(sim.url, db, extra_args=["--otlp", receiver.url])
            try:
                first = asyncio.run(drive(proxy.base_url, clients=3, sessions=2))
                _wait_for(
                    lambda: set(first.runs) <= {_attributes(s).get("runtap.run.id") for s in receiver.spans()},
                    "the first runs' spans",
                )
                (recorder,) = child_pids(proxy.proc.pid)
                os.kill(recorder, signal.SIGKILL)
                wait_for_log(proxy, "recorder process restarted")
                second = asyncio.run(drive(proxy.base_url, clients=3, sessions=2))
            finally:
                code = proxy.stop()
    finally:
        receiver.close()
    assert code == 0, proxy.log_text()[-3000:]
    out = str(tmp_path / "export.jsonl")
    subprocess.run([*RUNTAP, "export", "--otlp-file", out, "--db", db], check=True, capture_output=True)
    exported = {s.span_id for s in read_spans(out) if not s.name.startswith("chat ")}
    spans = receiver.spans()
    received = {s.span_id.hex() for s in spans if not s.name.startswith("chat ")}
    assert received <= exported  # whatever was sent twice, it was sent with the same ids
    agents = {_attributes(s).get("runtap.run.id") for s in spans if s.name.startswith("invoke_agent")}
    assert set(first.runs) | set(second.runs) <= agents


def test_a_bad_otlp_url_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [
            *RUNTAP,
            "proxy",
            "--otlp",
            "ftp://x",
            "--db",
            str(tmp_path / "s.duckdb"),
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--otlp expects an http(s) URL" in done.stderr
