"""Responses API traffic as OpenTelemetry traces: the demo's Responses workload (runtap.demo.response_workload)
through a real `runtap proxy --otlp` in front of the simulator, with the official openai SDK.

`runtap export --otlp-file` output is parsed with opentelemetry-proto's JSON mapping and checked
against the store's views (`responses`, `response_transitions`, `response_function_calls`) and
`runtap report tokens --api responses`; the spans the proxy sent live (to a stdlib OTLP/HTTP
receiver) are the same spans, with the same ids.
"""

from __future__ import annotations

import collections
import json
import time

import duckdb
import pytest
from click.testing import CliRunner

from runtap.cli import cli
from runtap.demo.harness import start_proxy
from runtap.demo.response_workload import run_responses_workload
from runtap.demo.workload import ASSISTANTS
from runtap.otel import ids
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.otlp_file import operation, read_spans
from tests.test_otel_live import Receiver, _attributes

KEY = "sk-otel-responses-secret-0123456789"
TERMINAL = ("completed", "failed", "cancelled", "incomplete")
WAIT_SECONDS = 60


def _export(*args: str) -> str:
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _query(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(store, spans received live before the proxy stopped, every span received, client's view, proxy log)."""
    db = str(tmp_path_factory.mktemp("otel-responses") / "store.duckdb")
    receiver = Receiver()
    try:
        with start_simulator(SimConfig(seed=5, run_ms=80, assistants=ASSISTANTS)) as sim:
            proxy = start_proxy(sim.url, db, extra_args=["--otlp", receiver.url])
            try:
                workload = run_responses_workload(proxy.base_url, api_key=KEY)
                # Every response the client saw end is sent while the proxy runs (not at shutdown).
                deadline = time.monotonic() + WAIT_SECONDS
                while True:
                    sent = {_attributes(s).get("runtap.response.id") for s in receiver.spans()}
                    if set(workload.responses) <= sent or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                before_stop = receiver.spans()
            finally:
                code = proxy.stop()
        assert code == 0, proxy.log_text()[-3000:]
        yield db, before_stop, receiver.spans(), workload, proxy.log_text(), list(receiver.requests)
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def exported(recorded, tmp_path_factory):
    """(store, spans of a default `runtap export --otlp-file`, the file)."""
    db = recorded[0]
    path = str(tmp_path_factory.mktemp("otel-responses-export") / "traces.jsonl")
    line = _export("--otlp-file", path, "--db", db)
    assert path in line, line
    return db, read_spans(path), path


def _trace_keys(db: str) -> dict[str, str]:
    """response id -> its trace's session key, followed in Python from the `responses` view."""
    sql = "SELECT response_id, conversation_id, previous_response_id FROM responses"
    rows = {r: (conversation, previous) for r, conversation, previous in _query(db, sql)}
    keys = {}
    for response_id in rows:
        at = response_id
        while True:
            conversation, previous = rows[at]
            if conversation or previous is None or previous not in rows:
                break
            at = previous
        keys[response_id] = f"conversation:{conversation}" if conversation else f"chain:{previous or at}"
    return keys


def test_one_trace_per_conversation_or_response_chain(exported):
    db, spans, _ = exported
    keys = _trace_keys(db)
    assert {k.partition(":")[0] for k in keys.values()} == {"conversation", "chain"}
    chains = [k for k in keys.values() if k.startswith("chain:")]
    assert len(chains) > len(set(chains))  # the function-call round trip is one chain of two responses
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    assert set(by_trace) == {f"{ids.trace_id(k):032x}" for k in keys.values()}
    for key in set(keys.values()):
        trace = by_trace[f"{ids.trace_id(key):032x}"]
        (root,) = [s for s in trace if s.parent_id is None]
        kind, _, value = key.partition(":")
        assert root.name == {"conversation": "conversation", "chain": "response_chain"}[kind]
        assert root.attributes["openinference.span.kind"] == "CHAIN" and root.attributes["session.id"] == value
        assert root.attributes["runtap.responses"] == sum(k == key for k in keys.values())
        known = {s.span_id for s in trace}
        assert all(s.parent_id in known for s in trace if s is not root)
        assert root.start == min(s.start for s in trace) and root.end == max(s.end for s in trace)


def test_one_chat_span_per_response_with_its_outcome_and_status_stays(exported):
    db, spans, _ = exported
    responses = _query(
        db,
        """SELECT response_id, model, status, conversation_id, error_code, input_tokens, output_tokens,
                  cached_tokens, reasoning_tokens FROM responses""",
    )
    chats = {s.attributes["gen_ai.response.id"]: s for s in spans if s.attributes.get("openai.api.type") == "responses"
             and operation(s) == "chat"}  # fmt: skip
    assert set(chats) == {r[0] for r in responses}
    keys = _trace_keys(db)
    for response_id, model, status, conversation, error_code, tokens_in, tokens_out, cached, reasoning in responses:
        span = chats[response_id]
        assert span.name == f"chat {model}" and span.kind == 3  # CLIENT
        a = span.attributes
        assert a["gen_ai.provider.name"] == "openai" and a["openinference.span.kind"] == "LLM"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == a["llm.model_name"] == model
        assert a.get("gen_ai.conversation.id") == conversation
        assert a.get("gen_ai.usage.input_tokens") == tokens_in and a.get("llm.token_count.prompt") == tokens_in
        assert a.get("gen_ai.usage.output_tokens") == tokens_out and a.get("llm.token_count.completion") == tokens_out
        assert a.get("gen_ai.usage.cache_read.input_tokens") == cached
        assert a.get("gen_ai.usage.reasoning.output_tokens") == reasoning
        expected_error = {"failed": error_code or "failed", "incomplete": "incomplete"}.get(status)
        assert a.get("error.type") == expected_error
        assert span.status_code == (2 if expected_error else 1 if status == "completed" else 0)
        assert span.parent_id == f"{ids.span_id(*keys[response_id].split(':', 1)):016x}"
        transitions = _query(
            db, f"SELECT to_status FROM response_transitions WHERE response_id = '{response_id}' ORDER BY seq"
        )
        statuses = [e[2]["runtap.response.status"] for e in span.events]
        assert statuses[1:] == [t for (t,) in transitions] and statuses[-1] == status
        assert span.end == span.events[-1][1] and span.start < span.end  # create request -> terminal status
    assert {"completed", "failed", "cancelled", "incomplete"} <= {r[2] for r in responses}


def test_tokens_per_model_equal_report_tokens_api_responses(exported):
    db, spans, _ = exported
    report = json.loads(
        CliRunner().invoke(cli, ["report", "tokens", "--api", "responses", "--format", "json", "--db", db]).stdout
    )
    want = {r["model"]: (r["input_tokens"] or 0, r["output_tokens"] or 0) for r in report}
    got = collections.defaultdict(lambda: [0, 0])
    for s in spans:
        if s.attributes.get("openinference.span.kind") == "LLM":
            got[s.attributes["llm.model_name"]][0] += s.attributes.get("llm.token_count.prompt", 0)
            got[s.attributes["llm.model_name"]][1] += s.attributes.get("llm.token_count.completion", 0)
    assert {m: tuple(v) for m, v in got.items()} == want
    assert sum(v[0] for v in want.values()) > 0


def test_one_tool_span_per_function_call_until_its_output_is_sent(exported):
    db, spans, _ = exported
    calls = _query(db, "SELECT call_id, name, response_id, output_response_id FROM response_function_calls")
    tools = {s.attributes["gen_ai.tool.call.id"]: s for s in spans if operation(s) == "execute_tool"}
    assert len(tools) == len(calls) == sum(operation(s) == "execute_tool" for s in spans) > 0
    answered = dict(
        _query(
            db,
            """SELECT call_id, epoch_ns(min(observed_at)) FROM response_items
               WHERE type = 'function_call_output' AND source = 'request' GROUP BY call_id""",
        )
    )
    keys = _trace_keys(db)
    for call_id, name, response_id, output_response_id in calls:
        span = tools[call_id]
        assert span.name == f"execute_tool {name}" and span.kind == 1  # INTERNAL
        a = span.attributes
        assert (a["gen_ai.tool.name"], a["gen_ai.tool.type"], a["openinference.span.kind"]) == (
            name,
            "function",
            "TOOL",
        )
        assert a["runtap.response.id"] == response_id and a["runtap.tool.output_response_id"] == output_response_id
        # under the trace's root, beside the response that asked and the one that got the output
        assert span.parent_id == f"{ids.span_id(*keys[response_id].split(':', 1)):016x}"
        assert keys[output_response_id] == keys[response_id]
        assert span.end == answered[call_id] and span.start < span.end


def test_every_exchange_is_a_span_under_its_response_or_conversation(exported):
    db, spans, _ = exported
    exchanges = _query(db, "SELECT exchange_id, method, response_id, conversation_id FROM exchanges")
    http = {s.attributes["runtap.exchange.id"]: s for s in spans if operation(s) == "http"}
    assert len(http) == len(exchanges) == sum(operation(s) == "http" for s in spans)
    for exchange_id, method, response_id, conversation_id in exchanges:
        span = http[exchange_id]
        if response_id:
            assert span.parent_id == f"{ids.span_id('response', response_id):016x}"
            assert (response_id not in span.name and "{response_id}" in span.name) or span.name == "POST /v1/responses"
        else:
            assert span.parent_id == f"{ids.span_id('conversation', conversation_id):016x}"
            assert conversation_id not in span.name
        assert span.name.startswith(method + " /v1/")


def test_exporting_twice_gives_the_same_file(exported, tmp_path):
    db, _, first = exported
    second = str(tmp_path / "again.jsonl")
    _export("--otlp-file", second, "--db", db)
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()


def test_no_secret_and_content_only_when_asked(exported, tmp_path):
    db, _, path = exported
    with_content = str(tmp_path / "content.jsonl")
    _export("--otlp-file", with_content, "--include-content", "--db", db)
    for file in (path, with_content):
        with open(file, encoding="utf-8") as fh:
            raw = fh.read()
        for secret in (KEY, "Bearer", "authorization", "X-Stainless"):
            assert secret.lower() not in raw.lower(), secret
    with open(path, encoding="utf-8") as fh:
        assert "Tokyo" not in fh.read()  # the question, the arguments and the answer are content
    content = read_spans(with_content)
    chats = [s for s in content if s.attributes.get("openai.api.type") == "responses" and operation(s) == "chat"]
    inputs = [
        json.loads(s.attributes["gen_ai.input.messages"]) for s in chats if "gen_ai.input.messages" in s.attributes
    ]
    assert {"role": "user", "parts": [{"type": "text", "content": "What is the weather and the time in Tokyo?"}]} in [
        m for messages in inputs for m in messages
    ]
    assert any("Tokyo" in s.attributes.get("output.value", "") for s in chats)
    calls = dict(_query(db, "SELECT call_id, arguments FROM response_function_calls"))
    for s in content:
        if operation(s) == "execute_tool":
            assert s.attributes["gen_ai.tool.call.arguments"] == calls[s.attributes["gen_ai.tool.call.id"]]
            assert s.attributes["gen_ai.tool.call.result"]


def test_filters_select_responses_as_the_reports_do(exported, tmp_path):
    db, *_ = exported
    out = str(tmp_path / "o3.jsonl")
    _export("--otlp-file", out, "--model", "o3-mini", "--db", db)
    spans = read_spans(out)
    assert {s.attributes.get("llm.model_name") for s in spans} - {None} == {"o3-mini"}
    assert {s.name for s in spans} >= {"response_chain", "chat o3-mini"}
    _export("--otlp-file", out, "--assistant", "asst_none", "--db", db)  # selects runs: no response
    assert read_spans(out) == []


def test_live_sends_each_response_once_it_ends_with_the_ids_of_runtap_export(recorded, exported):
    _, before_stop, received, workload, _, _ = recorded
    _, spans, _ = exported
    chats = [
        s for s in before_stop if _attributes(s).get("openai.api.type") == "responses" and s.name.startswith("chat")
    ]
    assert sorted(_attributes(s)["runtap.response.id"] for s in chats) == sorted(workload.responses)
    assert all(_attributes(s)["runtap.response.status"] in TERMINAL for s in chats)
    assert any(s.name.startswith("execute_tool") for s in before_stop)  # sent once its output was
    assert not [s for s in before_stop if s.name in ("conversation", "response_chain")]  # roots at shutdown
    assert collections.Counter(s.span_id for s in received).most_common(1)[0][1] == 1, "a span was sent twice"
    live = {s.span_id.hex(): (s.trace_id.hex(), s.name, s.parent_span_id.hex() or None) for s in received}
    assert live == {s.span_id: (s.trace_id, s.name, s.parent_id) for s in spans}
    for s in received:  # same times and attributes too (the roots: over what was sent, the same)
        twin = next(x for x in spans if x.span_id == s.span_id.hex())
        assert (s.start_time_unix_nano, s.end_time_unix_nano, _attributes(s)) == (twin.start, twin.end, twin.attributes)


def test_live_sends_no_secret_and_no_content(recorded):
    *_, requests = recorded
    body = b"".join(requests)
    assert KEY.encode() not in body and b"Bearer" not in body and b"Tokyo" not in body


def test_a_store_read_in_several_passes_gives_the_same_response_sessions(exported):
    from runtap.analysis.filters import Filters
    from runtap.otel.load import load_sessions
    from runtap.store.multi import open_sources

    db, *_ = exported
    with open_sources([db]) as con:
        one = {s.key: s for s in load_sessions(con, Filters(), passes=1)}
        three = list(load_sessions(con, Filters(), passes=3))
    assert len(three) == len(one) and {s.key for s in three} == set(one)
    for session in three:
        for part in ("responses", "calls", "response_transitions", "exchanges"):
            assert sorted(map(repr, getattr(session, part))) == sorted(map(repr, getattr(one[session.key], part)))
