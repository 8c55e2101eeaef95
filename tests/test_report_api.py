"""`--api runs|responses|all` on `report summary|latency|transitions|tokens`.

- runs (the default) prints exactly what runtap printed before the option existed: the files in
  tests/golden/runs_reports/ are the output of the previous version (main at 6f535f8) on the
  fixture store, byte for byte; the same holds with Responses traffic in the store, and on a
  store made before the Responses tables existed.
- responses gives the same figures for responses, checked against tests/fixtures/response_store.py's
  hand-worked figures; all puts both side by side with an `api` column.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil

import duckdb
import pytest
from click.testing import CliRunner

from runtap.cli import cli
from tests.fixtures.report_store import build_report_store, create_empty_store
from tests.fixtures.response_store import add_responses

GOLDEN = pathlib.Path(__file__).parent / "golden" / "runs_reports"
API_REPORTS = ("summary", "tokens", "latency", "transitions")


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, str]:
    """runs: the runs fixture; both: it plus Responses traffic; old: runs only, as an older runtap made it."""
    tmp = tmp_path_factory.mktemp("api")
    runs = build_report_store(str(tmp / "runs.duckdb"))
    both = add_responses(build_report_store(str(tmp / "both.duckdb")))
    old = str(tmp / "old.duckdb")
    shutil.copy(runs, old)
    con = duckdb.connect(old)
    for view in ("responses", "response_transitions", "response_function_calls"):
        con.execute(f"DROP VIEW {view}")
    con.execute("DROP TABLE response_snapshots")
    con.execute("DROP TABLE response_items")
    for table, column in (
        ("exchanges", "response_id"),
        ("exchanges", "conversation_id"),
        ("sse_events", "sequence_number"),
    ):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.close()
    return {"runs": runs, "both": both, "old": old}


def invoke(*args: str):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def report(name: str, db: str, api: str, section: str | None = None) -> list[dict]:
    extra = ["--section", section] if section else []
    result = invoke(name, "--db", db, "--api", api, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("store", ["runs", "both", "old"])
@pytest.mark.parametrize("name", API_REPORTS)
@pytest.mark.parametrize("api", [(), ("--api", "runs")])
def test_runs_output_is_exactly_what_it_was(stores, store, name, api):
    for fmt, suffix in (("json", "json"), ("markdown", "md")):
        result = invoke(name, "--db", stores[store], *api, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert result.stdout == (GOLDEN / f"{name}.{suffix}").read_text(), (store, fmt)
        if fmt == "json":
            assert result.stderr == (GOLDEN / f"{name}.json.err").read_text()


def test_tokens_for_responses(stores):
    rows = {r["model"]: r for r in report("tokens", stores["both"], "responses")}
    assert list(next(iter(rows.values())))[:6] == [
        "model",
        "responses",
        "responses_with_usage",
        "input_tokens",
        "output_tokens",
        "total_tokens",
    ]
    gpt4o = rows["gpt-4o"]
    assert (gpt4o["responses"], gpt4o["input_tokens"], gpt4o["output_tokens"], gpt4o["total_tokens"]) == (
        3,
        2200,
        350,
        2550,
    )
    assert (gpt4o["cached_tokens"], gpt4o["reasoning_tokens"]) == (900, 0)
    # genai-prices: gpt-4o input $2.50, cached input $1.25, output $10 per million tokens
    assert gpt4o["cost_usd"] == pytest.approx(1300 * 2.5e-6 + 900 * 1.25e-6 + 350 * 10e-6)
    o3 = rows["o3-mini"]
    assert (o3["responses"], o3["total_tokens"], o3["reasoning_tokens"]) == (2, 130, 30)
    assert o3["cost_usd"] == pytest.approx(90 * 1.1e-6 + 40 * 4.4e-6)
    assert rows["acme-llm-7b"]["cost_usd"] is None and rows["acme-llm-7b"]["total_tokens"] == 110
    mini = rows["gpt-4o-mini"]
    assert (mini["responses"], mini["responses_with_usage"], mini["total_tokens"], mini["cost_usd"]) == (
        2,
        0,
        None,
        None,
    )


def test_transitions_for_responses(stores):
    counts = {
        (r["from_status"], r["to_status"]): r["count"] for r in report("transitions", stores["both"], "responses")
    }
    assert counts == {
        ("queued", "in_progress"): 2,
        ("in_progress", "completed"): 2,  # a stream's created/in_progress events repeat one status
        ("queued", "cancelled"): 1,
        ("in_progress", "incomplete"): 1,
    }
    terminal = {r["status"]: r["responses"] for r in report("transitions", stores["both"], "responses", "terminal")}
    assert terminal == {"completed": 4, "cancelled": 1, "failed": 1, "incomplete": 1}
    reasons = {(r["status"], r["reason"]) for r in report("transitions", stores["both"], "responses", "reasons")}
    assert reasons == {("failed", "server_error"), ("incomplete", "max_output_tokens"), ("cancelled", None)}
    assert report("transitions", stores["both"], "responses", "open") == [{"status": "in_progress", "responses": 1}]


def test_latency_for_responses(stores):
    rows = {r["operation"]: r for r in report("latency", stores["both"], "responses")}
    assert {op: r["requests"] for op, r in rows.items()} == {
        "createResponse": 8,
        "getResponse": 4,
        "cancelResponse": 1,
        "createConversation": 1,
    }
    assert rows["getResponse"]["failed"] == 1 and rows["getResponse"]["max_ms"] == 500.0
    create = rows["createResponse"]
    assert (create["streams"], create["first_event_p50_ms"], create["first_delta_p50_ms"]) == (2, 10.0, 300.0)


def test_summary_for_responses(stores):
    (overview,) = report("summary", stores["both"], "responses")
    assert {k: overview[k] for k in ("exchanges", "conversations", "responses", "models", "total_tokens")} == {
        "exchanges": 14,
        "conversations": 1,
        "responses": 8,
        "models": 4,
        "total_tokens": 2790,
    }
    assert overview["failure_rate"] == pytest.approx(1 / 7)
    assert overview["http_error_rate"] == pytest.approx(1 / 14)
    assert overview["cost_usd"] == pytest.approx(0.007875 + 0.000275)
    models = {r["model"]: r for r in report("summary", stores["both"], "responses", "models")}
    assert (models["gpt-4o-mini"]["cancelled"], models["gpt-4o-mini"]["in_flight"]) == (1, 1)
    assert "expired" not in models["o3-mini"]


def test_all_puts_both_side_by_side(stores):
    runs = {r["model"]: r for r in report("tokens", stores["both"], "runs")}
    responses = {r["model"]: r for r in report("tokens", stores["both"], "responses")}
    rows = report("tokens", stores["both"], "all")
    assert [(r["api"], r["model"]) for r in rows] == sorted(
        [("runs", m) for m in runs] + [("responses", m) for m in responses],
        key=lambda key: (key[1], key[0] != "runs"),
    )
    for row in rows:
        if row["api"] == "runs":
            source = runs[row["model"]]
            assert (row["count"], row["input_tokens"], row["output_tokens"]) == (
                source["runs"],
                source["prompt_tokens"],
                source["completion_tokens"],
            )
        else:
            source = responses[row["model"]]
            assert (row["count"], row["input_tokens"], row["cached_tokens"]) == (
                source["responses"],
                source["input_tokens"],
                source["cached_tokens"],
            )
        assert row["total_tokens"] == source["total_tokens"] and row["cost_usd"] == source["cost_usd"]
    latency = report("latency", stores["both"], "all")
    assert {r["api"] for r in latency} == {"runs", "responses"}
    assert {r["operation"] for r in latency if r["api"] == "responses"} >= {"createResponse", "getResponse"}
    transitions = report("transitions", stores["both"], "all", "terminal")
    assert {(r["api"], r["status"]): r["count"] for r in transitions}[("responses", "completed")] == 4


def test_summary_all_counts_both(stores):
    overview = {r["api"]: r for r in report("summary", stores["both"], "all")}
    (runs,) = report("summary", stores["both"], "runs")
    (responses,) = report("summary", stores["both"], "responses")
    assert list(overview) == ["runs", "responses", "all"]
    assert (overview["runs"]["count"], overview["runs"]["threads"]) == (runs["runs"], runs["threads"])
    assert (overview["responses"]["count"], overview["responses"]["conversations"]) == (8, 1)
    both = overview["all"]
    assert both["count"] == runs["runs"] + responses["responses"]
    assert both["exchanges"] == runs["exchanges"] + responses["exchanges"]
    assert both["total_tokens"] == runs["total_tokens"] + responses["total_tokens"]
    assert both["cost_usd"] == pytest.approx(runs["cost_usd"] + responses["cost_usd"])
    assert both["models"] == 5  # gpt-4o, gpt-4o-mini, o3-mini, acme-llm-7b, gpt-4-turbo
    assert both["first_seen_at"] == runs["first_seen_at"] and both["last_seen_at"] == responses["last_seen_at"]


@pytest.mark.parametrize("api", ["responses", "all"])
def test_an_older_store_has_no_responses(stores, api):
    assert report("tokens", stores["old"], "responses") == []
    assert {r["api"] for r in report("tokens", stores["old"], "all")} == {"runs"}
    (overview,) = report("summary", stores["old"], "responses")
    assert (overview["exchanges"], overview["responses"]) == (0, 0)
    assert report("latency", stores["old"], api) == (report("latency", stores["old"], "all") if api == "all" else [])


def test_filters_on_responses(stores):
    rows = report("tokens", stores["both"], "responses")
    result = invoke("tokens", "--db", stores["both"], "--api", "responses", "--format", "json", "--model", "o3-mini")
    assert [r["model"] for r in json.loads(result.stdout)] == ["o3-mini"]
    result = invoke("tokens", "--db", stores["both"], "--api", "responses", "--format", "json", "--capture", "cap_a")
    assert json.loads(result.stdout) == []  # the runs' capture holds no response
    result = invoke("tokens", "--db", stores["both"], "--api", "responses", "--format", "json", "--since", "2026-03-02")
    assert json.loads(result.stdout) == [] and rows


@pytest.mark.parametrize("option", ["--thread", "--assistant"])
def test_run_only_filters_are_refused_for_responses(stores, option):
    result = CliRunner().invoke(cli, ["report", "tokens", "--db", stores["both"], "--api", "responses", option, "x"])
    assert result.exit_code == 2
    assert "--assistant and --thread select runs" in result.output and "Traceback" not in result.output


def test_reports_without_responses_have_no_api_option(stores):
    result = CliRunner().invoke(cli, ["report", "durations", "--db", stores["both"], "--api", "responses"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_html_shows_runs_and_responses_per_model_next_to_each_other(stores, tmp_path):
    out = tmp_path / "both.html"
    assert invoke("html", "--db", stores["both"], "--out", str(out)).exit_code == 0
    page = out.read_text()
    assert "<h2>runs and responses per model</h2>" in page and "Runs and responses per model" in page
    header = re.search(r"<h2>runs and responses per model</h2>.*?<thead><tr>(.*?)</tr>", page, re.S).group(1)
    assert re.findall(r"<th>(.*?)</th>", header) == [
        "model",
        "runs",
        "responses",
        "run_total_tokens",
        "response_total_tokens",
        "run_cost_usd",
        "response_cost_usd",
    ]
    # comparison, latency, tokens per day, run and response transitions, run time per status and model
    assert page.count("<figure><svg") == 6
    assert "Response status transitions" in page and "createResponse" in page and "max_output_tokens" in page
    assert not re.search(r"<script[^>]*src=", page) and not re.search(r'(src|href)="(https?:)?//', page)
    runs_only = tmp_path / "runs.html"
    assert invoke("html", "--db", stores["runs"], "--out", str(runs_only)).exit_code == 0
    assert runs_only.read_text().count("<figure><svg") == 4 and "createResponse" not in runs_only.read_text()
    threads = tmp_path / "thread.html"  # --thread selects runs: the page is about runs only
    assert invoke("html", "--db", stores["both"], "--thread", "th_1", "--out", str(threads)).exit_code == 0
    assert "runs and responses per model" not in threads.read_text()


def test_stores_read_together_give_the_figures_of_one_store(stores, tmp_path):
    responses_only = add_responses(create_empty_store(str(tmp_path / "responses.duckdb")))
    for name in API_REPORTS:
        for api in ("responses", "all"):
            together = invoke(
                name, "--db", stores["runs"], "--db", responses_only, "--api", api, "--format", "markdown"
            )
            assert together.exit_code == 0, together.output
            assert together.stdout == invoke(name, "--db", stores["both"], "--api", api, "--format", "markdown").stdout
