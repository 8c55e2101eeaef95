"""`runtap report timeline` and the HTML waterfalls against the store's own views, on a real
recording: the demo workload (polled and streamed runs, tool calls, a cancel) sent by the official
openai SDK through a real `runtap proxy` to the simulator (conftest's `recording`)."""

from __future__ import annotations

import html
import json
import re

import pytest
from click.testing import CliRunner

from runtap.analysis.html import write_html
from runtap.analysis.timeline import run_timeline
from runtap.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, ["report", "timeline", *args])


def _stays(con, run_id: str) -> list[tuple]:
    return con.execute(
        "SELECT visit, status, entered_at, left_at, duration_ms, uncertainty_ms FROM run_status_intervals"
        " WHERE run_id = ? ORDER BY visit",
        [run_id],
    ).fetchall()


def _requests(con, run_id: str) -> list[tuple]:
    return con.execute(
        "SELECT exchange_id, operation, method, status_code, coalesce(streamed, false), request_started_at,"
        " response_ended_at, duration_ms FROM exchanges WHERE run_id = ? ORDER BY request_started_at",
        [run_id],
    ).fetchall()


def _run_ids(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT run_id FROM run_snapshots ORDER BY run_id").fetchall()]


def test_timeline_shows_the_views_stays_requests_and_tool_calls_of_every_run(recording):
    con, *_, db = recording
    run_ids = _run_ids(con)
    assert len(run_ids) >= 6
    with_tools = 0
    for run_id in run_ids:
        bars = run_timeline(db, run=run_id).main
        assert set(bars["run_id"]) == {run_id}
        stays = bars.filter(lane="status")
        got = list(stays.select("visit", "name", "start_at", "end_at", "duration_ms", "uncertainty_ms").iter_rows())
        assert got == _stays(con, run_id), run_id
        requests = bars.filter(lane="request")
        got = list(
            requests.select(
                "exchange_id", "name", "method", "status_code", "streamed", "start_at", "end_at", "duration_ms"
            ).iter_rows()
        )
        assert got == _requests(con, run_id), run_id
        # Every tool call the run asked for, from its requires_action stay to the submit that answered it.
        calls = bars.filter(lane="tool_call")
        expected = con.execute(
            "SELECT tool_call_id, function_name FROM tool_calls WHERE run_id = ? ORDER BY tool_call_id", [run_id]
        ).fetchall()
        assert sorted(calls.select("tool_call_id", "name").iter_rows()) == expected
        if expected:
            with_tools += 1
            asked = stays.filter(name="requires_action")["start_at"][0]
            submits = requests.filter(name="submitToolOutputsToRun")["start_at"].to_list()
            for call in calls.iter_rows(named=True):
                assert call["start_at"] == asked and call["end_at"] in submits
                assert call["duration_ms"] == pytest.approx((call["end_at"] - asked).total_seconds() * 1000)
        # Offsets on the run's own axis: from its earliest bar.
        origin = bars["start_at"].min()
        for row in bars.iter_rows(named=True):
            assert row["start_ms"] == pytest.approx((row["start_at"] - origin).total_seconds() * 1000)
    assert with_tools >= 1  # the workload's weather run (polled and streamed)


def test_timeline_json_is_the_same_bars_and_thread_gives_every_run_of_it(recording):
    con, *_, db = recording
    thread_id, runs = con.execute(
        "SELECT thread_id, list(DISTINCT run_id ORDER BY run_id) FROM run_snapshots GROUP BY thread_id"
        " ORDER BY len(list(DISTINCT run_id)) DESC, thread_id LIMIT 1"
    ).fetchall()[0]
    result = invoke("--db", db, "--thread", thread_id, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sorted({r["run_id"] for r in rows}) == runs and {r["thread_id"] for r in rows} == {thread_id}
    one = json.loads(invoke("--db", db, "--run", runs[0], "--format", "json").stdout)
    assert one == [r for r in rows if r["run_id"] == runs[0]]
    stays = [(r["visit"], r["name"], r["duration_ms"]) for r in one if r["lane"] == "status"]
    assert stays == [(v, s, d) for v, s, _, _, d, _ in _stays(con, runs[0])]
    assert {r["lane"] for r in one} >= {"status", "request"}


def test_timeline_table_draws_one_row_per_bar(recording):
    con, *_, db = recording
    run_id = con.execute("SELECT run_id FROM tool_calls LIMIT 1").fetchall()[0][0]
    result = invoke("--db", db, "--run", run_id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert run_id in out and "█" in out and "◆" in out  # status bars, the terminal status
    for _, status, *_ in _stays(con, run_id):
        assert f"status {status}" in out
    rows = [line for line in out.splitlines() if re.match(r"^│ (status|tool|GET|POST) ", line)]
    assert len(rows) == len(run_timeline(db, run=run_id).main)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--run", "run_does_not_exist"), "no run 'run_does_not_exist' recorded"),
        (("--thread", "thread_nope"), "no runs of thread 'thread_nope' recorded"),
        (("--run", ""), "no run '' recorded"),
        ((), "give one of --run ID or --thread ID"),
        (("--run", "a", "--thread", "b"), "give one of --run ID or --thread ID"),
    ],
)
def test_bad_or_unknown_ids_are_one_line_and_exit_2(recording, args, message):
    *_, db = recording
    result = invoke("--db", db, *args)
    assert result.exit_code == 2
    assert result.output.strip() == (f"Error: {message} in {db}" if "recorded" in message else f"Error: {message}")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_timeline_help_names_its_options():
    result = CliRunner().invoke(cli, ["report", "timeline", "--help"])
    assert result.exit_code == 0
    for option in ("--run", "--thread", "--db", "--format"):
        assert option in result.output
    assert re.search(r"^\s+timeline\s", CliRunner().invoke(cli, ["report", "--help"]).output, re.M)


def _page_runs(page: str) -> dict[str, list[tuple[str, str]]]:
    """Per waterfall section of the page: its rows as (label, duration text)."""
    runs = {}
    for run_id, body in re.findall(r'<section class="wf" data-run="([^"]+)"[^>]*>(.*?)</section>', page, re.S):
        rows = re.findall(r'<span class="wf-label">(.*?)</span>.*?<span class="wf-num">(.*?)</span>', body)
        runs[run_id] = [(html.unescape(label), html.unescape(num)) for label, num in rows]
    return runs


def test_html_waterfalls_show_the_views_stays_and_requests_slowest_first(recording, tmp_path):
    con, *_, db = recording
    out = tmp_path / "report.html"
    assert write_html(db, str(out))
    page = out.read_text()
    runs = _page_runs(page)
    assert set(runs) == set(_run_ids(con))  # a small store: every run is drawn
    for run_id, rows in runs.items():
        stays = [(label, num) for label, num in rows if label.startswith("status ")]
        assert stays == [
            (f"status {s}", "—" if d is None else f"{d:,.1f} ms") for _, s, _, _, d, _ in _stays(con, run_id)
        ]
        requests = [(label, num) for label, num in rows if not label.startswith(("status ", "tool "))]
        assert requests == [
            (f"{method} {operation}{' stream' if streamed else ''} {code}", f"{duration:,.1f} ms")
            for _, operation, method, code, streamed, _, _, duration in _requests(con, run_id)
        ], run_id
    # Slowest first: by the end-to-end time the view's stays add up to (runs without one last).
    order = list(runs)
    e2e = dict(
        con.execute(
            "SELECT run_id, sum(duration_ms) FROM run_status_intervals GROUP BY run_id"
            " HAVING bool_or(left_at IS NULL AND status IN ('completed','failed','cancelled','expired','incomplete'))"
        ).fetchall()
    )
    timed = [r for r in order if r in e2e]
    assert [e2e[r] for r in timed] == sorted((e2e[r] for r in timed), reverse=True)
    # Searchable: every section carries its run and thread id, and the page filters by them inline.
    assert 'id="wf-search"' in page and "<script>" in page and not re.search(r"<script[^>]*src=", page)
    for run_id in runs:
        thread = con.execute("SELECT any_value(thread_id) FROM run_snapshots WHERE run_id = ?", [run_id]).fetchall()
        assert f'data-run="{run_id}" data-thread="{thread[0][0]}"' in page
    assert "Where each model" in page  # the per-model stacked bar
