"""End to end into a real Arize Phoenix: the demo recording, exported with `runtap export --otlp`,
read back through Phoenix's own REST and GraphQL API; and the demo workload through
`runtap proxy --otlp` (live), into a project of its own.

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
def exported(recording, phoenix):
    """(store, Phoenix base URL, spans Phoenix returns) after `runtap export --otlp` of the demo recording."""
    *_, db = recording
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


def test_one_trace_per_session_with_its_tokens(exported):
    db, base, _ = exported
    threads = dict(_store(db, "SELECT thread_id, coalesce(sum(total_tokens), 0) FROM runs GROUP BY thread_id"))
    traces = get_json(f"{base}/v1/projects/{PROJECT}/traces?limit=100")["data"]
    assert len(traces) == len(threads)
    want = {f"{ids.trace_id('thread:' + t):032x}": tokens for t, tokens in threads.items()}
    assert {t["trace_id"]: t["token_count_total"] for t in traces} == want
    print(f"{'trace':34} {'root':8} {'spans':>5} {'tokens (prompt/completion/total)':>32}")
    for trace_id in sorted(want):
        trace = graphql(base, TRACE, traceId=trace_id)["getTraceByOtelId"]
        root = trace["rootSpan"]
        assert root["name"] == "thread" and root["cumulativeTokenCountTotal"] == want[trace_id]
        tokens = f"{root['cumulativeTokenCountPrompt']}/{root['cumulativeTokenCountCompletion']}/{want[trace_id]}"
        print(f"{trace_id:34} {root['name']:8} {trace['numSpans']:>5} {tokens:>32}")


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
    report = subprocess.run(
        [*RUNTAP, "report", "tokens", "--format", "json", "--db", db], capture_output=True, text=True, check=True
    )
    want = {r["model"]: (r["prompt_tokens"], r["completion_tokens"]) for r in json.loads(report.stdout)}
    got = collections.defaultdict(lambda: [0, 0])
    for s in spans:
        if s["span_kind"] == "LLM":
            got[s["attributes"]["llm.model_name"]][0] += s["attributes"]["llm.token_count.prompt"]
            got[s["attributes"]["llm.model_name"]][1] += s["attributes"]["llm.token_count.completion"]
    assert {m: tuple(v) for m, v in got.items()} == {m: v for m, v in want.items() if v != (0, 0)}
    print("LLM token sums per model (Phoenix) == report tokens:", dict(sorted(got.items())))


def test_tool_spans(exported):
    db, _, spans = exported
    calls = _store(db, "SELECT tool_call_id, function_name, run_id FROM tool_calls")
    tools = {s["attributes"]["gen_ai.tool.call.id"]: s for s in spans if s["span_kind"] == "TOOL"}
    assert len(tools) == len(calls) > 0
    for call_id, name, run_id in calls:
        span = tools[call_id]
        assert span["name"] == f"execute_tool {name}" and span["attributes"]["tool.name"] == name
        assert span["parent_id"] == f"{ids.span_id('run', run_id):016x}"
        print(f"TOOL  {span['name']:36} {call_id} {span['start_time'][11:23]} -> {span['end_time'][11:23]}")


@pytest.mark.skipif(chromium() is None, reason="no chromium (apt-get install chromium)")
def test_phoenix_ui_renders_the_trace(exported):
    db, base, spans = exported
    (thread_id,) = _store(db, "SELECT thread_id FROM runs JOIN tool_calls USING (run_id) LIMIT 1")[0]
    dom = browse(f"{base}/redirects/traces/{ids.trace_id('thread:' + thread_id):032x}", "--dump-dom").decode()
    names = {s["name"] for s in spans if s["context"]["trace_id"] == f"{ids.trace_id('thread:' + thread_id):032x}"}
    for name in [n for n in names if n.startswith(("invoke_agent", "chat", "execute_tool"))]:
        assert name in dom, name
    print(f"Phoenix's UI shows the trace of {thread_id}: {sorted(n for n in names if not n[0].isupper())}")


def test_live_proxy_spans_in_phoenix(phoenix, tmp_path, monkeypatch):
    """`runtap proxy --otlp` into Phoenix: each run as it ends, thread spans at shutdown."""
    live_project = "runtap-live"  # Phoenix files a request under its x-project-name header
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-project-name={live_project}")
    db = str(tmp_path / "live.duckdb")
    with start_simulator(SimConfig(seed=11, assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(sim.url, db, extra_args=["--otlp", phoenix])
        try:
            client_view = run_workload(proxy.base_url, api_key=DEMO_KEY)
            ended = wait_for_kind(phoenix, live_project, "AGENT", len(client_view.runs))
            assert len(ended) == len(client_view.runs)  # every run, while the proxy still runs
        finally:
            code = proxy.stop()
    assert code == 0, proxy.log_text()[-3000:]
    runs = _store(db, "SELECT run_id, model, prompt_tokens, completion_tokens FROM runs")
    threads = _store(db, "SELECT DISTINCT thread_id FROM runs")
    roots = wait_for_kind(phoenix, live_project, "CHAIN", len(threads))
    assert {s["attributes"]["session.id"] for s in roots} == {t for (t,) in threads}
    spans = project_spans(phoenix, live_project)
    agents = {s["attributes"]["runtap.run.id"]: s for s in spans if s["span_kind"] == "AGENT"}
    facts = ("llm.model_name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
    got = {run_id: (a["context"]["span_id"], *(a["attributes"][f] for f in facts)) for run_id, a in agents.items()}
    assert got == {r: (f"{ids.span_id('run', r):016x}", model, p, c) for r, model, p, c in runs}
    tools = [s for s in spans if s["span_kind"] == "TOOL"]
    assert len(tools) == _store(db, "SELECT count(*) FROM tool_calls")[0][0] > 0
    traces = get_json(f"{phoenix}/v1/projects/{live_project}/traces?limit=100")["data"]
    assert len(traces) == len(threads)
    print(
        f"live: {len(spans)} spans in Phoenix project {live_project}: {len(agents)} AGENT, {len(tools)} TOOL, "
        f"{len(roots)} thread roots, {len(traces)} traces"
    )


def wait_for_kind(base: str, project: str, kind: str, count: int, timeout: float = 60.0) -> list[dict]:
    """Poll until Phoenix has `count` spans of one kind in `project` (ingestion is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in project_spans(base, project) if s["span_kind"] == kind]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)
