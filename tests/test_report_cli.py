"""`runtap report ...` through click's CliRunner: help, formats, filters, exit codes, HTML."""

from __future__ import annotations

import csv
import io
import json
import re

import duckdb
import pytest
from click.testing import CliRunner

from runtap.analysis import REPORTS
from runtap.cli import cli
from tests.fixtures.report_store import build_report_store, create_empty_store

COMMANDS = [*sorted(REPORTS), "html"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_report_store(str(tmp_path_factory.mktemp("cli") / "capture.duckdb"))


def invoke(*args: str):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_report_command_has_help(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0
    first_line = result.output.split("\n\n")[1].strip()
    assert len(first_line) > 20
    for option in ("--db", "--since", "--until", "--model", "--assistant", "--thread", "--capture"):
        assert option in result.output


def test_report_group_help_lists_every_report():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", result.output, re.M), name


def test_json_is_one_array_with_design_fields_and_null_cost(store):
    result = invoke("tokens", "--db", store, "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    assert {"model", "runs", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"} <= set(rows[0])
    custom = next(r for r in rows if r["model"] == "acme-llm-7b")
    assert custom["cost_usd"] is None and custom["total_tokens"] == 1200
    assert "acme-llm-7b" in result.stderr  # the note goes to stderr, keeping stdout JSON


def test_json_fields_of_transitions_and_latency(store):
    transitions = json.loads(invoke("transitions", "--db", store, "--format", "json").stdout)
    assert set(transitions[0]) == {"from_status", "to_status", "count"}
    latency = json.loads(invoke("latency", "--db", store, "--format", "json").stdout)
    assert {"operation", "requests", "p50_ms", "p90_ms", "p99_ms", "max_ms"} <= set(latency[0])


def test_json_section_option(store):
    rows = json.loads(invoke("transitions", "--db", store, "--format", "json", "--section", "reasons").stdout)
    assert {(r["status"], r["reason"]) for r in rows} == {
        ("failed", "rate_limit_exceeded"),
        ("incomplete", "max_completion_tokens"),
    }
    bad = CliRunner().invoke(cli, ["report", "tokens", "--db", store, "--format", "json", "--section", "nope"])
    assert bad.exit_code == 2 and "no section 'nope'" in bad.output


def test_csv_leaves_nulls_empty(store):
    result = invoke("tokens", "--db", store, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    turbo = next(r for r in rows if r["model"] == "gpt-4-turbo")
    assert turbo["total_tokens"] == "" and turbo["cost_usd"] == "" and turbo["runs"] == "2"


def test_markdown_has_all_sections_and_null_marks(store):
    result = invoke("transitions", "--db", store, "--format", "markdown")
    assert result.exit_code == 0
    for section in ("### transitions", "### terminal", "### reasons", "### open"):
        assert section in result.output
    assert "| requires_action | queued | 1 |" in result.output


def test_table_shows_dash_for_null_and_units_in_headers(store):
    result = invoke("tokens", "--db", store)
    assert result.exit_code == 0
    assert "cost_usd" in result.output and "—" in result.output
    assert "note: no price known to genai-prices for: acme-llm-7b" in result.output
    durations = invoke("durations", "--db", store, "--by-assistant")
    assert "queued_p50_ms" in durations.output and "asst_C" in durations.output


@pytest.mark.parametrize("name", sorted(REPORTS))
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_every_report_in_every_format(store, name, fmt):
    result = invoke(name, "--db", store, "--format", fmt)
    assert result.exit_code == 0
    assert result.stdout.strip()


def test_filters_on_the_command_line(store):
    result = invoke(
        "tokens",
        "--db",
        store,
        "--format",
        "json",
        "--model",
        "gpt-4o",
        "--model",
        "o3-mini",
        "--since",
        "2026-03-01",
        "--until",
        "2026-03-01T10:00:25",
    )
    assert {r["model"]: r["runs"] for r in json.loads(result.stdout)} == {"gpt-4o": 2}
    by_capture = json.loads(invoke("summary", "--db", store, "--format", "json", "--capture", "cap_b").stdout)
    assert by_capture[0]["runs"] == 3 and by_capture[0]["exchanges"] == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "not an ISO date"),
        (["--since", "2026-03-02", "--until", "2026-03-01"], "must be before"),
        (["--format", "xml"], "xml"),
    ],
)
def test_bad_options_exit_2(store, args, message):
    result = CliRunner().invoke(cli, ["report", "tokens", "--db", store, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_file_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", "summary", "--db", str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 2
    assert "no runtap store at" in result.output and len(result.output.strip().splitlines()) == 1


def test_foreign_duckdb_and_non_duckdb_files_exit_2(tmp_path):
    foreign = tmp_path / "other.duckdb"
    con = duckdb.connect(str(foreign))
    con.sql("CREATE TABLE t (x INTEGER)")
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 100)
    for path, message in ((foreign, "not a runtap store"), (text, "not a readable DuckDB file")):
        result = CliRunner().invoke(cli, ["report", "tokens", "--db", str(path)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_empty_store_says_no_runs_recorded(tmp_path, fmt):
    empty = create_empty_store(str(tmp_path / "empty.duckdb"))
    result = invoke("transitions", "--db", empty, "--format", fmt)
    assert result.exit_code == 0
    assert "no runs recorded" in result.output
    if fmt == "json":
        assert json.loads(result.stdout) == []


def test_html_is_one_self_contained_file_with_four_charts(store, tmp_path):
    out = tmp_path / "report.html"
    result = invoke("html", "--db", store, "--out", str(out))
    assert result.exit_code == 0
    page = out.read_text()
    figures = re.findall(r"<figure>(.*?)</figure>", page, re.S)
    # latency, tokens and cost per day (two charts), transitions, time per status and model
    assert len(figures) == 4 and all(f.startswith("<svg") for f in figures)
    # One inline script (the waterfalls' search box); nothing loaded from elsewhere.
    assert page.count("<script>") == 1 and not re.search(r"<script[^>]*src=", page)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for name in REPORTS:
        assert f"<h2>{name}</h2>" in page
    assert "acme-llm-7b" in page and "rate_limit_exceeded" in page


def test_html_on_empty_store_writes_nothing(tmp_path):
    empty = create_empty_store(str(tmp_path / "empty.duckdb"))
    out = tmp_path / "report.html"
    result = invoke("html", "--db", empty, "--out", str(out))
    assert result.exit_code == 0 and "no runs recorded" in result.output and not out.exists()
