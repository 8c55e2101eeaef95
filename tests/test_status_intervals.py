"""`run_status_intervals` on hand-made observations: each estimation rule of store/intervals.py."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from runtap.analysis import run_report
from runtap.store.intervals import SSE_MS, stay_totals_sql
from runtap.store.reader import open_store
from tests.fixtures.report_store import build_report_store
from tests.store_fixtures import BASE, at, exchange, make_store, run_snapshot


def _exchange(operation: str, run_id: str, start: float, headers_ms: float, end_ms: float, **overrides) -> dict:
    """An exchange sent at `start` s, its headers `headers_ms` and its end `end_ms` later."""
    return exchange(
        operation,
        started=start,
        duration_ms=end_ms,
        run_id=run_id,
        method="GET" if operation == "getRun" else "POST",
        response_started_at=at(start) + timedelta(milliseconds=headers_ms),
        **overrides,
    )


def _seen(ex: dict, status: str, *, seq: int = 0, observed_at=None, **overrides) -> dict:
    """The run in `status` as `ex` showed it: at its response end unless `observed_at` (an SSE event)."""
    return run_snapshot(
        ex["run_id"],
        status,
        observed_at if observed_at is not None else ex["response_ended_at"],
        exchange_id=ex["exchange_id"],
        request_started_at=ex["request_started_at"],
        seq=seq,
        **overrides,
    )


def _stays(path: str, run_id: str) -> list[dict]:
    """The run's stays, times in seconds after BASE."""
    base = BASE.timestamp()
    with open_store(path) as con:
        rows = con.execute(
            """SELECT status, epoch_us(entered_at) / 1e6, epoch_us(left_at) / 1e6, duration_ms, uncertainty_ms,
                      entered_uncertainty_ms, entered_evidence, epoch_us(entered_earliest) / 1e6,
                      epoch_us(entered_latest) / 1e6, visit
               FROM run_status_intervals WHERE run_id = ? ORDER BY visit""",
            [run_id],
        ).fetchall()
    keys = ("status", "entered", "left", "duration_ms", "u", "entered_u", "evidence", "lo", "hi", "visit")
    stays = [dict(zip(keys, row, strict=True)) for row in rows]
    for stay in stays:
        for key in ("entered", "left", "lo", "hi"):
            stay[key] = None if stay[key] is None else round(stay[key] - base, 6)
    return stays


@pytest.fixture
def store(tmp_path):
    """Write exchanges and snapshots; return a function giving one run's stays."""

    def build(exchanges: list[dict], snapshots: list[dict]) -> str:
        return make_store(tmp_path / "s.duckdb", {"exchanges": exchanges, "run_snapshots": snapshots})

    return build


def test_polls_take_the_middle_of_the_gap_between_response_ends(store):
    create = _exchange("createRun", "run_p", 0.0, 20, 30)
    polls = [_exchange("getRun", "run_p", start, 40, 50) for start in (0.1, 0.2, 0.3)]
    path = store(
        [create, *polls],
        [
            _seen(create, "queued"),
            _seen(polls[0], "queued"),
            _seen(polls[1], "in_progress"),
            _seen(polls[2], "completed", completed_at=at(0)),
        ],
    )
    queued, in_progress, completed = _stays(path, "run_p")
    # The create bounds the start: sent at 0, headers back at 0.02 (the estimate, a response time).
    assert (queued["evidence"], queued["entered"], queued["entered_u"]) == ("create", 0.02, 20.0)
    # Last seen queued in the response ending at 0.15, first in_progress in the one ending at 0.25.
    assert (in_progress["evidence"], in_progress["lo"], in_progress["hi"]) == ("poll", 0.15, 0.25)
    assert (in_progress["entered"], in_progress["entered_u"]) == (0.2, 50.0)
    assert queued["duration_ms"] == pytest.approx(180.0) and queued["u"] == pytest.approx(70.0)
    # The API's completed_at (second 0) is not used under a second: the middle of the gap stays.
    assert (completed["evidence"], completed["entered"]) == ("poll", 0.3)
    assert completed["left"] is None and completed["duration_ms"] is None and completed["u"] is None


def test_live_sse_events_give_the_time_and_the_causing_post_bounds_the_first(store):
    create = _exchange("createRun", "run_s", 0.0, 4, 900, streamed=True, first_byte_at=at(0.005))
    path = store(
        [create],
        [
            _seen(create, "queued", seq=0, observed_at=0.006, source="sse"),
            _seen(create, "queued", seq=1, observed_at=0.008, source="sse"),
            _seen(create, "in_progress", seq=2, observed_at=0.158, source="sse"),
            _seen(create, "completed", seq=9, observed_at=0.608, source="sse"),
        ],
    )
    queued, in_progress, completed = _stays(path, "run_s")
    # Created between the request (0) and the response headers (0.004).
    assert (queued["evidence"], queued["entered"], queued["entered_u"]) == ("create", 0.004, 4.0)
    assert (in_progress["evidence"], in_progress["entered"], in_progress["entered_u"]) == ("sse", 0.158, SSE_MS)
    assert (completed["evidence"], completed["entered"]) == ("sse", 0.608)
    assert (queued["duration_ms"], in_progress["duration_ms"]) == pytest.approx((154.0, 450.0))
    assert in_progress["u"] == 2 * SSE_MS


def test_a_stream_read_from_a_file_only_brackets(store):
    # No first_byte_at: every event carries the response's end as its time.
    create = _exchange("createRun", "run_f", 0.0, 10, 800, streamed=True)
    path = store(
        [create],
        [
            _seen(create, "queued", seq=0, source="sse"),
            _seen(create, "in_progress", seq=1, source="sse"),
            _seen(create, "completed", seq=2, source="sse"),
        ],
    )
    _queued, in_progress, _completed = _stays(path, "run_f")
    # Somewhere between the response's start (its headers, 0.01) and its end (0.8).
    assert (in_progress["evidence"], in_progress["lo"], in_progress["hi"]) == ("stream_file", 0.01, 0.8)


def test_submit_ends_requires_action_and_cancel_starts_cancelling(store):
    create = _exchange("createRun", "run_t", 0.0, 10, 10)
    poll = _exchange("getRun", "run_t", 0.5, 10, 10)
    submit = _exchange("submitToolOutputsToRun", "run_t", 2.0, 30, 40)
    poll2 = _exchange("getRun", "run_t", 2.2, 10, 10)
    cancel = _exchange("cancelRun", "run_t", 2.5, 20, 20)
    poll3 = _exchange("getRun", "run_t", 2.7, 10, 10)
    path = store(
        [create, poll, submit, poll2, cancel, poll3],
        [
            _seen(create, "queued"),
            _seen(poll, "requires_action"),
            _seen(submit, "queued"),
            _seen(poll2, "in_progress"),
            _seen(cancel, "cancelling"),
            _seen(poll3, "cancelled", cancelled_at=at(2)),
        ],
    )
    stays = _stays(path, "run_t")
    assert [s["status"] for s in stays] == [
        "queued",
        "requires_action",
        "queued",
        "in_progress",
        "cancelling",
        "cancelled",
    ]
    requires_action, queued, _in_progress, cancelling, cancelled = stays[1:]
    # The client sent its outputs at 2.0 (long after the poll at 0.51) and had headers at 2.03.
    assert (queued["evidence"], queued["lo"], queued["hi"], queued["entered"]) == ("submit", 2.0, 2.03, 2.03)
    assert requires_action["left"] == 2.03
    # Cancel sent at 2.5, headers at 2.52.
    assert (cancelling["evidence"], cancelling["entered"], cancelling["entered_u"]) == ("cancel", 2.52, 20.0)
    # From the cancel's end (2.52) to the poll's end (2.71).
    assert (cancelled["evidence"], cancelled["lo"], cancelled["hi"]) == ("poll", 2.52, 2.71)


@pytest.mark.parametrize(
    ("completed_at", "evidence", "bounds"),
    [
        (4, "api_seconds", (4.0, 5.0)),  # a 3 s gap: the API's second narrows it
        (9, "poll", (2.01, 5.01)),  # a server clock off by seconds: its second is outside the gap, unused
    ],
)
def test_the_api_seconds_are_bounds_only_on_gaps_over_a_second(store, completed_at, evidence, bounds):
    create = _exchange("createRun", "run_a", 0.0, 10, 10)
    polls = [_exchange("getRun", "run_a", start, 10, 10) for start in (2.0, 5.0)]
    path = store(
        [create, *polls],
        [
            _seen(create, "queued"),
            _seen(polls[0], "queued"),
            _seen(polls[1], "completed", completed_at=at(completed_at)),
        ],
    )
    completed = _stays(path, "run_a")[-1]
    assert (completed["evidence"], (completed["lo"], completed["hi"])) == (evidence, bounds)
    assert completed["entered"] == pytest.approx(sum(bounds) / 2)


def test_a_run_first_seen_late_starts_at_created_at_or_is_unbounded(store):
    poll = _exchange("getRun", "run_late", 10.0, 10, 10)
    other = _exchange("getRun", "run_unknown", 10.0, 10, 10)
    path = store(
        [poll, other],
        [
            _seen(poll, "in_progress", created_at=at(9)),
            _seen(other, "in_progress", created_at=None),
            _seen(_exchange("getRun", "run_unknown", 11.0, 10, 10), "completed", completed_at=None),
        ],
    )
    (late,) = _stays(path, "run_late")
    assert (late["evidence"], late["lo"], late["hi"], late["left"]) == ("created_at", 9.0, 10.01, None)
    unknown, _completed = _stays(path, "run_unknown")
    assert (unknown["evidence"], unknown["entered"], unknown["entered_u"]) == ("first_seen", 10.01, None)
    # It completed between the polls ending at 10.01 and 11.01; its start has no bound.
    assert unknown["duration_ms"] == pytest.approx(500.0) and unknown["u"] is None
    with duckdb.connect(path, read_only=True) as con:
        totals = con.sql(f"SELECT * FROM ({stay_totals_sql()}) WHERE run_id = 'run_unknown'").pl().row(0, named=True)
    # Its time in_progress is known, not how sure it is; nor its end to end (no bounded start).
    assert totals["in_progress_ms"] == pytest.approx(500.0) and totals["in_progress_uncertainty_ms"] is None
    assert totals["end_to_end_ms"] is None and totals["end_to_end_uncertainty_ms"] is None


def test_stays_add_up_to_end_to_end_and_to_the_durations_report(tmp_path):
    path = build_report_store(str(tmp_path / "fixture.duckdb"))
    con = duckdb.connect(path, read_only=True)
    try:
        view = con.sql(
            """SELECT run_id, sum(duration_ms), epoch_us(max(entered_at) - min(entered_at)) / 1000.0
               FROM run_status_intervals GROUP BY run_id"""
        ).fetchall()
        for run_id, total, end_to_end in view:
            assert (total or 0.0) == pytest.approx(end_to_end), run_id
        # Summing the view per status gives what `report durations` reads (stay_totals_sql).
        by_view = con.sql(
            """SELECT run_id, status, sum(duration_ms) FROM run_status_intervals
               WHERE left_at IS NOT NULL GROUP BY ALL"""
        ).fetchall()
        totals = {r["run_id"]: r for r in con.sql(f"SELECT * FROM ({stay_totals_sql()})").pl().iter_rows(named=True)}
    finally:
        con.close()
    for run_id, status, total in by_view:
        if status in ("queued", "in_progress", "requires_action", "cancelling"):
            assert totals[run_id][f"{status}_ms"] == pytest.approx(total), (run_id, status)
    assert totals["run_tool"]["end_to_end_ms"] == pytest.approx(6965.0)
    frame = run_report(path, "durations").main
    assert frame.filter(frame["model"] == "gpt-4o-mini")["end_to_end_p50_ms"].item() == pytest.approx(6965.0)
