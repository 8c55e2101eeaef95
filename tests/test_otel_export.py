"""`runtap export --otlp-file / --otlp`: the demo recording (through a real proxy) as OpenTelemetry traces.

The file is parsed with opentelemetry-proto's JSON mapping; its figures are checked against the
store's views and `runtap report tokens`. `--otlp` is checked against a real OTLP/HTTP endpoint
(a stdlib server decoding the protobuf requests); Phoenix is in tests/phoenix.
"""

from __future__ import annotations

import collections
import http.server
import json
import os
import subprocess
import threading
from typing import ClassVar

import duckdb
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from runtap.cli import cli
from runtap.demo.harness import RUNTAP, free_port
from runtap.otel import ids
from tests.conftest import DEMO_KEY
from tests.otlp_file import operation, read_spans

CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments", "input.value")


def _export(*args: str) -> str:
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def exported(recording, tmp_path_factory):
    """(store path, spans of a default export, path of the file)."""
    *_, db = recording
    path = str(tmp_path_factory.mktemp("otel") / "traces.jsonl")
    line = _export("--otlp-file", path, "--db", db)
    assert line.startswith("exported 6 traces") and path in line, line
    return db, read_spans(path), path


def _query(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_tokens_per_model_equal_report_tokens(exported):
    db, spans, _ = exported
    report = json.loads(CliRunner().invoke(cli, ["report", "tokens", "--format", "json", "--db", db]).output)
    want = {row["model"]: (row["prompt_tokens"], row["completion_tokens"]) for row in report}
    for op in ("invoke_agent", "chat"):  # the conventions' agent sums, and the LLM spans Phoenix adds up
        got = collections.defaultdict(lambda: [0, 0])
        for s in spans:
            if operation(s) == op:
                got[s.attributes["gen_ai.response.model"]][0] += s.attributes.get("gen_ai.usage.input_tokens", 0)
                got[s.attributes["gen_ai.response.model"]][1] += s.attributes.get("gen_ai.usage.output_tokens", 0)
        # A run that used no tokens (failed before any step) has no chat span.
        want_here = {m: v for m, v in want.items() if op == "invoke_agent" or v != (0, 0)}
        assert {m: tuple(v) for m, v in got.items()} == want_here, op
    llm = [s for s in spans if operation(s) == "chat"]
    assert all(s.attributes["openinference.span.kind"] == "LLM" for s in llm)
    assert all(s.attributes["llm.token_count.total"] == s.attributes["gen_ai.usage.input_tokens"]
               + s.attributes["gen_ai.usage.output_tokens"] for s in llm)  # fmt: skip


def test_one_tool_span_per_tool_call_from_required_action_to_submit(exported):
    db, spans, _ = exported
    calls = _query(db, "SELECT tool_call_id, function_name, run_id FROM tool_calls")
    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in spans if operation(s) == "execute_tool"}
    assert len(tools) == len(calls) == sum(operation(s) == "execute_tool" for s in spans) > 0
    submits = dict(
        _query(
            db,
            """SELECT unnest(json_extract_string(request_body, '$.tool_outputs[*].tool_call_id')),
                      epoch_ns(request_started_at) FROM exchanges WHERE operation = 'submitToolOutputsToRun'""",
        )
    )
    for call_id, name, run_id in calls:
        span = tools[call_id]
        assert span.name == f"execute_tool {name}" and span.kind == 1  # INTERNAL
        assert span.attributes["gen_ai.tool.type"] == "function" and span.attributes["tool.name"] == name
        assert span.attributes["openinference.span.kind"] == "TOOL"
        assert span.parent_id == f"{ids.span_id('run', run_id):016x}"
        assert span.end == submits[call_id] and span.start < span.end


def test_one_trace_per_thread_and_every_exchange_a_span(exported):
    db, spans, _ = exported
    threads = {t for (t,) in _query(db, "SELECT DISTINCT thread_id FROM exchanges")}
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    assert set(by_trace) == {f"{ids.trace_id('thread:' + t):032x}" for t in threads}
    for trace in by_trace.values():
        (root,) = [s for s in trace if s.parent_id is None]
        assert root.name == "thread" and root.attributes["openinference.span.kind"] == "CHAIN"
        known = {s.span_id for s in trace}
        assert all(s.parent_id in known for s in trace if s is not root)
        assert {s.attributes.get("gen_ai.conversation.id") for s in trace} - {None} == {root.attributes["session.id"]}
    exchanges = _query(db, "SELECT exchange_id, method, status_code FROM exchanges")
    http = {s.attributes["runtap.exchange.id"]: s for s in spans if operation(s) == "http"}
    assert len(http) == len(exchanges) == sum(operation(s) == "http" for s in spans)
    for exchange_id, method, code in exchanges:
        assert http[exchange_id].attributes["http.request.method"] == method
        assert http[exchange_id].attributes["http.response.status_code"] == code
        assert http[exchange_id].kind == 3  # CLIENT
        assert http[exchange_id].name.startswith(f"{method} /v1/threads")


def test_agent_spans_carry_the_run_outcome(exported):
    db, spans, _ = exported
    runs = _query(db, "SELECT run_id, thread_id, assistant_id, model, status, last_error_code FROM runs")
    agents = {s.attributes["runtap.run.id"]: s for s in spans if operation(s) == "invoke_agent"}
    assert set(agents) == {r[0] for r in runs}
    for run_id, thread_id, assistant_id, model, status, error_code in runs:
        span = agents[run_id]
        assert span.name == f"invoke_agent {assistant_id}" and span.kind == 3
        assert span.attributes["gen_ai.agent.id"] == assistant_id
        assert span.attributes["gen_ai.conversation.id"] == thread_id
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["gen_ai.response.model"] == span.attributes["llm.model_name"] == model
        assert span.attributes["openinference.span.kind"] == "AGENT"
        expected_error = {"failed": error_code, "incomplete": "incomplete", "expired": "expired"}.get(status)
        assert span.attributes.get("error.type") == expected_error
        assert span.status_code == (2 if expected_error else 1 if status == "completed" else 0)
        # One event per status stay: the first status seen, then each transition (run_transitions).
        transitions = _query(db, f"SELECT to_status FROM run_transitions WHERE run_id = '{run_id}' ORDER BY seq")
        statuses = [e[2]["runtap.run.status"] for e in span.events]
        assert statuses[1:] == [t for (t,) in transitions] and statuses[-1] == status
        assert [e[1] for e in span.events] == sorted(e[1] for e in span.events)
        assert span.end == span.events[-1][1]  # ends at the terminal status


def test_exporting_twice_gives_the_same_file(exported, tmp_path):
    db, _, first = exported
    second = str(tmp_path / "again.jsonl")
    _export("--otlp-file", second, "--db", db)
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()


def test_a_parquet_export_gives_the_same_spans(exported, tmp_path):
    db, spans, _ = exported
    _export("--parquet", str(tmp_path / "parquet"), "--db", db)
    _export("--otlp-file", str(tmp_path / "from-parquet.jsonl"), "--db", str(tmp_path / "parquet"))
    again = read_spans(str(tmp_path / "from-parquet.jsonl"))
    assert sorted((s.span_id, s.parent_id, s.name, s.start, s.end) for s in again) == sorted(
        (s.span_id, s.parent_id, s.name, s.start, s.end) for s in spans
    )


def test_content_is_off_by_default_and_on_with_include_content(exported, tmp_path):
    db, spans, path = exported
    with open(path, encoding="utf-8") as fh:
        raw = fh.read()
    assert "What is the weather in Paris?" in "".join(r[0] for r in _query(db, "SELECT request_body FROM exchanges"))
    assert "weather in Paris" not in raw and "temp_c" not in raw and "Paris" not in raw
    assert not [k for s in spans for k in s.attributes if k in CONTENT_KEYS]
    with_content = str(tmp_path / "content.jsonl")
    _export("--otlp-file", with_content, "--include-content", "--db", db)
    spans = read_spans(with_content)
    agents = {s.attributes["runtap.run.id"]: s for s in spans if operation(s) == "invoke_agent"}
    inputs = [json.loads(s.attributes["gen_ai.input.messages"]) for s in agents.values()]
    assert {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]} in [
        m for messages in inputs for m in messages
    ]
    assert all(s.attributes["input.value"] for s in agents.values())  # every demo run had a user message
    streamed = [s for s in agents.values() if "gen_ai.output.messages" in s.attributes]
    assert streamed and all("Tokyo" in s.attributes["output.value"] for s in streamed)
    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in spans if operation(s) == "execute_tool"}
    calls = _query(db, "SELECT tool_call_id, arguments, output FROM tool_calls")
    assert calls and all(output for _, _, output in calls)
    for call_id, arguments, output in calls:
        assert tools[call_id].attributes["gen_ai.tool.call.arguments"] == arguments
        assert tools[call_id].attributes["gen_ai.tool.call.result"] == output


def test_no_secret_and_no_header_value_is_exported(exported, tmp_path):
    db, spans, path = exported
    content = str(tmp_path / "content.jsonl")
    _export("--otlp-file", content, "--include-content", "--db", db)
    for file in (path, content):
        with open(file, encoding="utf-8") as fh:
            raw = fh.read()
        for secret in (DEMO_KEY, "Bearer", "REDACTED", "authorization", "X-Stainless"):
            assert secret.lower() not in raw.lower(), secret
    allowed = {"http.response.header.x-request-id", "http.response.header.openai-processing-ms"}
    assert {k for s in spans for k in s.attributes if ".header." in k} <= allowed


def test_filters_select_runs_as_the_reports_do(exported, tmp_path):
    db, *_ = exported
    out = str(tmp_path / "gpt-4o.jsonl")
    line = _export("--otlp-file", out, "--model", "gpt-4o", "--db", db)
    assert line.startswith("exported 2 traces"), line
    models = {s.attributes.get("gen_ai.response.model") for s in read_spans(out)} - {None}
    assert models == {"gpt-4o"}
    (thread,) = _query(db, "SELECT thread_id FROM runs WHERE model = 'o3-mini'")[0]
    _export("--otlp-file", out, "--thread", thread, "--db", db)
    assert {s.trace_id for s in read_spans(out)} == {f"{ids.trace_id('thread:' + thread):032x}"}


class _Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint: decodes each protobuf request, answers 200."""

    requests: ClassVar[list[tuple[str, str, ExportTraceServiceRequest]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, self.headers["Content-Type"], ExportTraceServiceRequest.FromString(body)))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_otlp_http_sends_the_same_spans_as_the_file(exported):
    db, spans, _ = exported
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        line = _export("--otlp", f"http://127.0.0.1:{server.server_port}", "--db", db)
    finally:
        server.shutdown()
    assert line.endswith(f"to http://127.0.0.1:{server.server_port}/v1/traces\n"), line
    (path, content_type, request), *_ = _Receiver.requests
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    sent = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted((s.span_id.hex(), s.name) for s in sent) == sorted((s.span_id, s.name) for s in spans)


def test_bad_targets_are_one_line_errors(exported, tmp_path):
    db, *_ = exported
    port = free_port()  # nothing listens there: the receiver is down
    cases = [
        (["--otlp", f"http://127.0.0.1:{port}"], "Connection refused"),
        (["--otlp", "ftp://example"], "--otlp expects an http(s) URL"),
        (["--otlp", "http://127.0.0.1:99999"], "bad port"),
        (["--otlp", "http://x", "--otlp-file", str(tmp_path / "f")], "exactly one of"),
        ([], "exactly one of"),
        (["--otlp-file", str(tmp_path / "missing" / "f.jsonl")], "does not exist"),
        (["--parquet", str(tmp_path / "p"), "--model", "gpt-4o"], "--parquet exports one store file whole"),
    ]
    env = {**os.environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "5"}
    for args, message in cases:
        result = subprocess.run(
            [*RUNTAP, "export", *args, "--db", db], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr and not result.stdout


# --- stores built by ingest (tests/test_export.py): several sources, calls never submitted ---------


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """(store a, store b, one store holding both) ingested from flows of two proxies."""
    from runtap.ingest import ingest_files
    from tests.test_export import traffic
    from tests.test_ingest import write_flows

    tmp = tmp_path_factory.mktemp("ingested")
    first, second = traffic()
    write_flows(tmp / "a.mitm", first)
    write_flows(tmp / "b.mitm", second)
    paths = {name: str(tmp / f"{name}.duckdb") for name in ("a", "b", "all")}
    ingest_files([str(tmp / "a.mitm")], paths["a"])
    ingest_files([str(tmp / "b.mitm")], paths["b"])
    ingest_files([str(tmp / "a.mitm"), str(tmp / "b.mitm")], paths["all"])
    return paths


def test_several_stores_give_the_spans_of_one(ingested, tmp_path):
    _export("--otlp-file", str(tmp_path / "one.jsonl"), "--db", ingested["all"])
    _export("--otlp-file", str(tmp_path / "two.jsonl"), "--db", ingested["a"], "--db", ingested["b"])
    one, two = read_spans(str(tmp_path / "one.jsonl")), read_spans(str(tmp_path / "two.jsonl"))

    def key(s):  # each ingest is a capture of its own: capture ids differ
        attributes = sorted((k, v) for k, v in s.attributes.items() if k != "runtap.capture.id")
        return s.trace_id, s.span_id, s.parent_id, s.name, s.start, s.end, attributes

    assert sorted(map(key, one)) == sorted(map(key, two))
    assert len({s.trace_id for s in one}) == 3


def test_usage_without_observed_steps_and_calls_never_submitted(ingested, tmp_path):
    out = str(tmp_path / "t.jsonl")
    _export("--otlp-file", out, "--db", ingested["all"])
    spans = read_spans(out)
    runs = _query(ingested["all"], "SELECT run_id, model, status, prompt_tokens, completion_tokens FROM runs")
    for run_id, model, status, prompt, completion in runs:
        agent = f"{ids.span_id('run', run_id):016x}"
        chats = [s for s in spans if s.parent_id == agent and operation(s) == "chat"]
        # The run reported more input tokens than its one observed step (7/3): a second chat span
        # has the rest (never negative: here the step reported more output tokens than the run).
        assert {s.name for s in chats} == {f"chat {model}"} and len(chats) == 2
        (rest,) = [s for s in chats if "runtap.usage.source" in s.attributes]
        assert rest.attributes["gen_ai.usage.input_tokens"] == prompt - 7
        assert rest.attributes["gen_ai.usage.output_tokens"] == max(completion - 3, 0)
        (tool,) = [s for s in spans if s.parent_id == agent and operation(s) == "execute_tool"]
        assert tool.attributes["runtap.tool.submitted"] is False
        # Never submitted: from required_action until the run left requires_action.
        (left,) = _query(
            ingested["all"],
            f"SELECT epoch_ns(observed_at) FROM run_transitions WHERE run_id = '{run_id}'"
            " AND from_status = 'requires_action'",
        )[0]
        assert tool.end == left and tool.start < tool.end
        (span,) = [s for s in spans if s.span_id == agent]
        assert (span.attributes.get("error.type"), span.status_code) == (
            ("failed", 2) if status == "failed" else (None, 1)
        )


def test_safe_urls_and_url_templates():
    from runtap.otel.http_spans import safe_url, url_template

    url = "https://user:pw@gw.example:8443/openai/threads/t1/runs?api-version=2024-05-01&key=SECRET&sig=S"
    assert safe_url(url) == (
        "https://gw.example:8443/openai/threads/t1/runs?api-version=2024-05-01",
        "gw.example",
        8443,
        "https",
    )
    assert safe_url("http://127.0.0.1/v1/threads")[2] == 80
    exchange = {"thread_id": "thread_1", "run_id": "run_1", "step_id": "step_1"}
    assert url_template("/v1/threads/thread_1/runs/run_1/steps/step_1", exchange) == (
        "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}"
    )


def test_step_windows_stay_within_their_run():
    from runtap.otel.timing import step_window

    s = 1_000_000_000
    live = {"in_progress_at": 3 * s, "done_at": 5 * s, "created_at": 2 * s, "status": "completed"}
    assert step_window(live, 1 * s, 9 * s) == (3 * s, 5 * s, True)
    listed_later = {"done_at": 20 * s, "created_at": 2 * s, "completed_at": 4 * s, "status": "completed"}
    assert step_window(listed_later, 1 * s, 9 * s) == (2 * s, 4 * s, False)
    seconds_only = {"created_at": 0, "completed_at": 10 * s, "status": "completed"}
    assert step_window(seconds_only, 1 * s, 9 * s) == (1 * s, 9 * s, False)


def test_message_text_of_strings_and_parts():
    from runtap.otel.content import message_text

    assert message_text("hi") == "hi"
    parts = [{"type": "text", "text": "a"}, {"type": "image_file"}, {"type": "text", "text": {"value": "b"}}]
    assert message_text(parts) == "a\nb"
    assert message_text(None) == ""


def test_a_store_read_in_several_passes_gives_the_same_sessions(exported):
    from runtap.analysis.filters import Filters
    from runtap.otel.load import load_sessions
    from runtap.store.multi import open_sources

    db, *_ = exported
    with open_sources([db]) as con:
        one = {s.key: s for s in load_sessions(con, Filters(), passes=1)}
        three = list(load_sessions(con, Filters(), passes=3))
    assert len(three) == len(one) == 6 and {s.key for s in three} == set(one)
    for session in three:  # rows of one part come in no particular order (the span model sorts them)
        for part in ("runs", "steps", "tools", "transitions", "exchanges"):
            assert sorted(map(repr, getattr(session, part))) == sorted(map(repr, getattr(one[session.key], part)))
