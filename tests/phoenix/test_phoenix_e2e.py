"""End to end into a real Arize Phoenix: the demo recording (Assistants runs and Responses API
traffic), exported with `runtap export --otlp`, read back through Phoenix's own REST and GraphQL
API; and the demo workloads through `runtap proxy --otlp` (live), into a project of its own.

Phoenix runs from .venv-phoenix (`make phoenix-e2e` creates it and runs this module; CI does on
every landing). Skipped without it.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import time

import duckdb
import pytest

from runtap.demo.harness import RUNTAP, start_proxy
from runtap.demo.response_workload import run_responses_workload
from runtap.demo.run import run_demo
from runtap.demo.workload import ASSISTANTS, run_workload
from runtap.otel import ids
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.conftest import DEMO_KEY
from tests.phoenix.phoenix_server import (
    PHOENIX,
    PROJECT,
    browse,
    chromium,
    get_json,
    graphql,
    phoenix_server,
    project_spans,
)
from tests.phoenix.phoenix_server import wait_for_spans as wait_for

pytestmark = [
    pytest.mark.phoenix,
    pytest.mark.skipif(not PHOENIX.exists(), reason="no .venv-phoenix: `make phoenix-e2e` creates it"),
    pytest.mark.timeout(600),
]

TRACE = """query($traceId: String!) { getTraceByOtelId(traceId: $traceId) {
  numSpans rootSpan { name cumulativeTokenCountPrompt cumulativeTokenCountCompletion cumulativeTokenCountTotal }
  spans(first: 1000) { edges { node { name spanKind spanId parentId statusCode
    tokenCountPrompt tokenCountCompletion cumulativeTokenCountTotal } } } } }"""


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    """A Phoenix started for this module on 127.0.0.1."""
    with phoenix_server(tmp_path_factory.mktemp("phoenix")) as base:
        yield base


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The demo recording (`runtap demo`: both workloads through a real proxy)."""
    db = str(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    run_demo(db)
    return db


@pytest.fixture(scope="module")
def exported(demo_db, phoenix):
    """(store, Phoenix base URL, spans Phoenix returns) after `runtap export --otlp` of the demo recording."""
    db = demo_db
    result = subprocess.run(
        [*RUNTAP, "export", "--otlp", phoenix, "--db", db], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout.strip())
    count = int(re.search(r"(\d+) spans", result.stdout).group(1))
    spans = wait_for(phoenix, count)
    assert len(spans) == count, f"Phoenix stored {len(spans)} of {count} spans"
    return db, phoenix, spans


def _store(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


def _response_traces(db: str) -> dict[str, tuple[str, int]]:
    """Trace id -> (root name, tokens) of the Responses traffic: one trace per conversation, else per
    chain of previous_response_id (followed back here in Python)."""
    rows = {
        r: (conversation, previous, tokens)
        for r, conversation, previous, tokens in _store(
            db,
            "SELECT response_id, conversation_id, previous_response_id,"
            " coalesce(input_tokens, 0) + coalesce(output_tokens, 0) FROM responses",
        )
    }
    traces: dict[str, tuple[str, int]] = {}
    for response_id, (_, _, tokens) in rows.items():
        at = response_id
        while not rows[at][0] and rows[at][1] in rows:
            at = rows[at][1]
        conversation, previous = rows[at][:2]
        key = f"conversation:{conversation}" if conversation else f"chain:{previous or at}"
        name, total = traces.get(f"{ids.trace_id(key):032x}", ("conversation" if conversation else "response_chain", 0))
        traces[f"{ids.trace_id(key):032x}"] = (name, total + tokens)
    return traces


def test_one_trace_per_session_with_its_tokens(exported):
    db, base, _ = exported
    threads = dict(_store(db, "SELECT thread_id, coalesce(sum(total_tokens), 0) FROM runs GROUP BY thread_id"))
    want = {f"{ids.trace_id('thread:' + t):032x}": ("thread", tokens) for t, tokens in threads.items()}
    responses = _response_traces(db)
    assert {name for name, _ in responses.values()} == {"conversation", "response_chain"}
    want |= responses
    traces = get_json(f"{base}/v1/projects/{PROJECT}/traces?limit=100")["data"]
    assert len(traces) == len(want)
    assert {t["trace_id"]: t["token_count_total"] for t in traces} == {t: tokens for t, (_, tokens) in want.items()}
    print(f"{'trace':34} {'root':14} {'spans':>5} {'tokens (prompt/completion/total)':>32}")
    for trace_id in sorted(want, key=lambda t: (want[t][0], t)):
        trace = graphql(base, TRACE, traceId=trace_id)["getTraceByOtelId"]
        root = trace["rootSpan"]
        name, total = want[trace_id]
        assert root["name"] == name and root["cumulativeTokenCountTotal"] == total
        tokens = f"{root['cumulativeTokenCountPrompt']}/{root['cumulativeTokenCountCompletion']}/{total}"
        print(f"{trace_id:34} {root['name']:14} {trace['numSpans']:>5} {tokens:>32}")


def test_agent_spans_have_the_models_and_token_counts(exported):
    db, base, spans = exported
    runs = _store(db, "SELECT run_id, model, status, prompt_tokens, completion_tokens FROM runs")
    agents = {s["context"]["span_id"]: s for s in spans if s["span_kind"] == "AGENT"}
    assert len(agents) == len(runs)
    for run_id, model, status, prompt, completion in sorted(runs, key=lambda r: r[1]):
        span = agents[f"{ids.span_id('run', run_id):016x}"]
        attributes = span["attributes"]
        assert span["name"].startswith("invoke_agent asst_")
        assert attributes["llm.model_name"] == attributes["gen_ai.response.model"] == model
        assert attributes["gen_ai.usage.input_tokens"] == prompt
        assert attributes["gen_ai.usage.output_tokens"] == completion
        assert span["status_code"] == {"completed": "OK", "cancelled": "UNSET"}.get(status, "ERROR")
        # Phoenix's own token figures for the agent: what its LLM children add up to.
        node = next(
            e["node"]
            for e in graphql(base, TRACE, traceId=span["context"]["trace_id"])["getTraceByOtelId"]["spans"]["edges"]
            if e["node"]["spanId"] == span["context"]["span_id"]
        )
        assert node["spanKind"] == "agent" and node["cumulativeTokenCountTotal"] == prompt + completion
        print(f"AGENT {span['name']:36} {model:12} {status:10} {span['status_code']:6} tokens {prompt}/{completion}")


def test_llm_spans_add_up_to_report_tokens_per_model(exported):
    db, _, spans = exported
    apis = {"runs": ("prompt_tokens", "completion_tokens"), "responses": ("input_tokens", "output_tokens")}
    for api, columns in apis.items():
        report = subprocess.run(
            [*RUNTAP, "report", "tokens", "--api", api, "--format", "json", "--db", db],
            capture_output=True,
            text=True,
            check=True,
        )
        want = {r["model"]: tuple(r[c] or 0 for c in columns) for r in json.loads(report.stdout)}
        got = collections.defaultdict(lambda: [0, 0])
        for s in spans:
            # Responses API spans say so (openai.api.type); a run step's do not.
            is_response = s["attributes"].get("openai.api.type") == "responses"
            if s["span_kind"] == "LLM" and is_response == (api == "responses"):
                got[s["attributes"]["llm.model_name"]][0] += s["attributes"].get("llm.token_count.prompt", 0)
                got[s["attributes"]["llm.model_name"]][1] += s["attributes"].get("llm.token_count.completion", 0)
        # A run that used no tokens has no chat span; every response has one.
        expected = {m: v for m, v in want.items() if v != (0, 0) or api == "responses"}
        assert {m: tuple(v) for m, v in got.items()} == expected, api
        print(f"LLM token sums per model (Phoenix) == report tokens --api {api}:", dict(sorted(got.items())))


def test_tool_spans(exported):
    db, _, spans = exported
    calls = _store(db, "SELECT tool_call_id, function_name, run_id FROM tool_calls")
    functions = _store(db, "SELECT call_id, name, response_id FROM response_function_calls")
    tools = {s["attributes"]["gen_ai.tool.call.id"]: s for s in spans if s["span_kind"] == "TOOL"}
    assert len(tools) == len(calls) + len(functions) and calls and functions
    for call_id, name, response_id in functions:
        span = tools[call_id]
        assert span["name"] == f"execute_tool {name}" and span["attributes"]["runtap.response.id"] == response_id
        (parent,) = [s for s in spans if s["context"]["span_id"] == span["parent_id"]]
        assert parent["name"] in ("conversation", "response_chain") and parent["parent_id"] is None
        print(f"TOOL  {span['name']:36} {call_id} {span['start_time'][11:23]} -> {span['end_time'][11:23]} (Responses)")
    for call_id, name, run_id in calls:
        span = tools[call_id]
        assert span["name"] == f"execute_tool {name}" and span["attributes"]["tool.name"] == name
        assert span["parent_id"] == f"{ids.span_id('run', run_id):016x}"
        print(f"TOOL  {span['name']:36} {call_id} {span['start_time'][11:23]} -> {span['end_time'][11:23]}")


def test_response_spans_have_the_models_tokens_and_outcomes(exported):
    db, base, spans = exported
    responses = _store(db, "SELECT response_id, model, status, input_tokens, output_tokens FROM responses")
    chats = {
        s["attributes"]["gen_ai.response.id"]: s
        for s in spans
        if s["span_kind"] == "LLM" and s["attributes"].get("openai.api.type") == "responses"
    }
    assert set(chats) == {r[0] for r in responses}
    for response_id, model, status, prompt, completion in sorted(responses, key=lambda r: (r[1], r[2])):
        span = chats[response_id]
        attributes = span["attributes"]
        assert span["name"] == f"chat {model}" and attributes["llm.model_name"] == model
        assert span["context"]["span_id"] == f"{ids.span_id('response', response_id):016x}"
        assert attributes.get("llm.token_count.prompt") == prompt
        assert attributes.get("llm.token_count.completion") == completion
        assert span["status_code"] == {"completed": "OK", "cancelled": "UNSET"}.get(status, "ERROR")
        assert [e["attributes"]["runtap.response.status"] for e in span["events"]][-1] == status
        node = next(
            e["node"]
            for e in graphql(base, TRACE, traceId=span["context"]["trace_id"])["getTraceByOtelId"]["spans"]["edges"]
            if e["node"]["spanId"] == span["context"]["span_id"]
        )
        assert node["spanKind"] == "llm" and (node["tokenCountPrompt"] or 0) == (prompt or 0)
        print(f"LLM   {span['name']:36} {status:10} {span['status_code']:6} tokens {prompt}/{completion}")


@pytest.mark.skipif(chromium() is None, reason="no chromium (apt-get install chromium)")
def test_phoenix_ui_renders_the_trace(exported):
    db, base, spans = exported
    (thread_id,) = _store(db, "SELECT thread_id FROM runs JOIN tool_calls USING (run_id) LIMIT 1")[0]
    dom = browse(f"{base}/redirects/traces/{ids.trace_id('thread:' + thread_id):032x}", "--dump-dom").decode()
    names = {s["name"] for s in spans if s["context"]["trace_id"] == f"{ids.trace_id('thread:' + thread_id):032x}"}
    for name in [n for n in names if n.startswith(("invoke_agent", "chat", "execute_tool"))]:
        assert name in dom, name
    print(f"Phoenix's UI shows the trace of {thread_id}: {sorted(n for n in names if not n[0].isupper())}")
    # and a Responses trace: the chain with the function call (model, tool, model)
    trace_id = min(
        s["context"]["trace_id"] for s in spans if s["span_kind"] == "TOOL" and "runtap.response.id" in s["attributes"]
    )
    dom = browse(f"{base}/redirects/traces/{trace_id}", "--dump-dom").decode()
    names = {s["name"] for s in spans if s["context"]["trace_id"] == trace_id and not s["name"][0].isupper()}
    assert "response_chain" in names and "execute_tool get_current_weather" in names
    for name in names:
        assert name in dom, name
    print(f"Phoenix's UI shows the Responses trace {trace_id}: {sorted(names)}")


def test_live_proxy_spans_in_phoenix(phoenix, tmp_path, monkeypatch):
    """`runtap proxy --otlp` into Phoenix: each run and response as it ends, roots at shutdown."""
    live_project = "runtap-live"  # Phoenix files a request under its x-project-name header
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-project-name={live_project}")
    db = str(tmp_path / "live.duckdb")
    with start_simulator(SimConfig(seed=11, assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(sim.url, db, extra_args=["--otlp", phoenix])
        try:
            client_view = run_workload(proxy.base_url, api_key=DEMO_KEY)
            responses = run_responses_workload(proxy.base_url, api_key=DEMO_KEY)
            ended = wait_for_kind(phoenix, live_project, "AGENT", len(client_view.runs))
            assert len(ended) == len(client_view.runs)  # every run, while the proxy still runs
            chats = wait_for(phoenix, 1, project=live_project)  # and every response
            deadline = time.monotonic() + 60
            while not set(responses.responses) <= {s["attributes"].get("runtap.response.id") for s in chats}:
                assert time.monotonic() < deadline, "the responses' spans did not arrive while the proxy ran"
                time.sleep(0.1)
                chats = project_spans(phoenix, live_project)
        finally:
            code = proxy.stop()
    assert code == 0, proxy.log_text()[-3000:]
    runs = _store(db, "SELECT run_id, model, prompt_tokens, completion_tokens FROM runs")
    threads = _store(db, "SELECT DISTINCT thread_id FROM runs")
    response_traces = _response_traces(db)
    roots = wait_for_kind(phoenix, live_project, "CHAIN", len(threads) + len(response_traces))
    assert {s["attributes"]["session.id"] for s in roots if s["name"] == "thread"} == {t for (t,) in threads}
    assert sorted(s["context"]["trace_id"] for s in roots if s["name"] != "thread") == sorted(response_traces)
    spans = project_spans(phoenix, live_project)
    agents = {s["attributes"]["runtap.run.id"]: s for s in spans if s["span_kind"] == "AGENT"}
    facts = ("llm.model_name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
    got = {run_id: (a["context"]["span_id"], *(a["attributes"][f] for f in facts)) for run_id, a in agents.items()}
    assert got == {r: (f"{ids.span_id('run', r):016x}", model, p, c) for r, model, p, c in runs}
    tools = [s for s in spans if s["span_kind"] == "TOOL"]
    calls = _store(db, "SELECT (SELECT count(*) FROM tool_calls) + (SELECT count(*) FROM response_function_calls)")
    assert len(tools) == calls[0][0] > 0
    llm = {s["attributes"].get("runtap.response.id"): s["attributes"].get("llm.token_count.total") for s in spans}
    want = _store(db, "SELECT response_id, input_tokens + output_tokens FROM responses")
    assert {r: llm[r] for r, _ in want} == dict(want)
    traces = get_json(f"{phoenix}/v1/projects/{live_project}/traces?limit=100")["data"]
    assert len(traces) == len(threads) + len(response_traces)
    print(
        f"live: {len(spans)} spans in Phoenix project {live_project}: {len(agents)} AGENT, {len(want)} Responses LLM, "
        f"{len(tools)} TOOL, {len(roots)} roots, {len(traces)} traces"
    )


def wait_for_kind(base: str, project: str, kind: str, count: int, timeout: float = 60.0) -> list[dict]:
    """Poll until Phoenix has `count` spans of one kind in `project` (ingestion is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in project_spans(base, project) if s["span_kind"] == kind]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)
