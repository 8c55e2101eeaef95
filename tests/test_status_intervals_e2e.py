"""`run_status_intervals` and `report durations` against the simulator's truth, end to end.

Runs hold known times (the simulator's `sim_hold_ms`): queued 150 ms, in_progress 400 ms,
requires_action until the client submits (it works on the tool for 100 ms), then queued 0 ms and
in_progress 200 ms. The official SDK drives them through a real `runtap proxy`, polling every
25 ms or streaming. The truth is when the simulator entered each status (its ground truth).
"""

from __future__ import annotations

import json
import statistics
import time
import warnings

import duckdb
import pytest
from openai import OpenAI

from runtap.analysis import run_report
from runtap.demo.harness import SimulatorProcess, start_proxy
from runtap.simulator.demo_assistants import ASSISTANTS

WEATHER = ASSISTANTS[0]["id"]
HOLDS = "queued=150,in_progress=400;queued=0,in_progress=200"
METADATA = {"sim_outcome": "completed", "sim_hold_ms": HOLDS}
POLL_MS = 25
TOOL_WORK_S = 0.1
RUNS_EACH = 4
SLACK_MS = 10.0


def _outputs(run) -> list[dict]:
    return [{"tool_call_id": c.id, "output": "18C"} for c in run.required_action.submit_tool_outputs.tool_calls]


def _polled_run(client: OpenAI) -> str:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    run = runs.create_and_poll(thread_id=thread.id, assistant_id=WEATHER, metadata=METADATA, poll_interval_ms=POLL_MS)
    assert run.status == "requires_action"
    time.sleep(TOOL_WORK_S)
    run = runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=_outputs(run), poll_interval_ms=POLL_MS
    )
    assert run.status == "completed"
    return run.id


def _streamed_run(client: OpenAI) -> str:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
    run = None
    for event in runs.create(thread_id=thread.id, assistant_id=WEATHER, metadata=METADATA, stream=True):
        if event.event.startswith("thread.run.") and not event.event.startswith("thread.run.step"):
            run = event.data
    assert run.status == "requires_action"
    time.sleep(TOOL_WORK_S)
    for event in runs.submit_tool_outputs(run_id=run.id, thread_id=thread.id, tool_outputs=_outputs(run), stream=True):
        if event.event.startswith("thread.run.") and not event.event.startswith("thread.run.step"):
            run = event.data
    assert run.status == "completed"
    return run.id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Record the runs; yield (store path, truth by run id, polled ids, streamed ids)."""
    db = str(tmp_path_factory.mktemp("intervals") / "store.duckdb")
    # The simulator in its own process: its clock is the proxy's, and no GIL stands between its
    # status changes and the events that report them.
    with SimulatorProcess("--seed", "5", "--event-gap-ms", "2") as sim:
        proxy = start_proxy(sim.url, db)
        try:
            client = OpenAI(base_url=proxy.base_url, api_key="sk-test-intervals", max_retries=0, timeout=30)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                polled = [_polled_run(client) for _ in range(RUNS_EACH)]
                streamed = [_streamed_run(client) for _ in range(RUNS_EACH)]
        finally:
            assert proxy.stop() == 0, proxy.log_text()
        truth = {run["id"]: run for run in sim.ground_truth()["runs"]}
    yield db, truth, polled, streamed


def _truth_stays(run: dict) -> list[tuple[str, float, float | None]]:
    """(status, entered ms, left ms) per status the simulator held, epoch milliseconds."""
    times = [t * 1000 for t in run["entered_at"]]
    return [(s, t, nxt) for s, t, nxt in zip(run["statuses"], times, [*times[1:], None], strict=True)]


def _view(db: str) -> dict[str, list[dict]]:
    con = duckdb.connect(db, read_only=True)
    try:
        rows = con.sql(
            """SELECT run_id, visit, status, epoch_us(entered_at) / 1000.0 AS entered_ms,
                      epoch_us(left_at) / 1000.0 AS left_ms, duration_ms, uncertainty_ms
               FROM run_status_intervals ORDER BY run_id, visit"""
        ).fetchall()
        gaps = con.sql(
            """SELECT run_id, max(gap) FROM (
                   SELECT run_id, (epoch_us(response_ended_at) - epoch_us(lag(response_ended_at)
                          OVER (PARTITION BY run_id ORDER BY response_ended_at))) / 1000.0 AS gap
                   FROM exchanges WHERE run_id IS NOT NULL) GROUP BY run_id"""
        ).fetchall()
    finally:
        con.close()
    stays: dict[str, list[dict]] = {}
    for run_id, visit, status, entered, left, duration, uncertainty in rows:
        stays.setdefault(run_id, []).append(
            {"visit": visit, "status": status, "entered": entered, "left": left, "duration": duration, "u": uncertainty}
        )
    for run_id, gap in gaps:
        for stay in stays.get(run_id, []):
            stay["gap"] = gap
    return stays


def _pairs(db, truth, ids):
    view = _view(db)
    for run_id in ids:
        want = _truth_stays(truth[run_id])
        got = view[run_id]
        assert [s["status"] for s in got] == [s for s, *_ in want], run_id
        yield run_id, list(zip(got, want, strict=True))


def test_polled_stays_are_within_their_uncertainty(recorded):
    db, truth, polled, _ = recorded
    for run_id, pairs in _pairs(db, truth, polled):
        for got, (_status, entered, left) in pairs:
            if left is None:
                assert got["left"] is None and got["duration"] is None, (run_id, got)
                continue
            detail = json.dumps({"run": run_id, "got": got, "truth_ms": left - entered})
            assert abs(got["duration"] - (left - entered)) <= got["u"] + SLACK_MS, detail
            # A stay's two boundaries are each at most half a gap between observations off.
            assert got["u"] <= got["gap"], detail


def test_streamed_stays_are_within_10_ms(recorded):
    db, truth, _, streamed = recorded
    for run_id, pairs in _pairs(db, truth, streamed):
        for got, (_status, entered, left) in pairs:
            detail = json.dumps({"run": run_id, "got": got, "truth": [entered, left]})
            assert abs(got["entered"] - entered) <= SLACK_MS, detail
            if left is not None:
                assert abs(got["duration"] - (left - entered)) <= SLACK_MS, detail


def test_stays_add_up_to_end_to_end(recorded):
    db, _truth, _polled, _streamed = recorded
    for run_id, stays in _view(db).items():
        closed = [s["duration"] for s in stays if s["left"] is not None]
        assert sum(closed) == pytest.approx(stays[-1]["entered"] - stays[0]["entered"], abs=0.01), run_id


def test_durations_report_medians_are_within_15_ms(recorded):
    db, truth, polled, streamed = recorded
    per_run: dict[str, list[float]] = {}
    for run_id in polled + streamed:
        totals = {"queued": 0.0, "in_progress": 0.0, "requires_action": 0.0}
        stays = _truth_stays(truth[run_id])
        for status, entered, left in stays:
            if left is not None and status in totals:
                totals[status] += left - entered
        totals["end_to_end"] = stays[-1][1] - stays[0][1]
        for figure, value in totals.items():
            per_run.setdefault(figure, []).append(value)
    (row,) = run_report(db, "durations").main.to_dicts()
    assert row["runs"] == 2 * RUNS_EACH and row["api_runs"] == 0
    for figure, values in per_run.items():
        assert abs(row[f"{figure}_p50_ms"] - statistics.median(values)) <= 15.0, (figure, row, values)
        assert row[f"{figure}_uncertainty_p50_ms"] is not None
    assert row["cancelling_p50_ms"] is None
