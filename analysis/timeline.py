"""`runtap report timeline --run ID | --thread ID`: where each run's time went, as bars on a time axis.

One row per bar (analysis/timeline_loader.py says what the bars are): the run's status stays,
the tool calls it waited on, and every request that names it. `start_ms` and `end_ms` place a
bar on the run's own axis, in ms from the run's earliest bar (usually its create request);
`end_at`/`end_ms` are NULL for a bar still open when the recording ended and for the terminal
status (a run does not leave it). Rows come run by run (the earliest run first), then status
stays in order, tool calls, and requests, each by start.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from runtap.analysis.loader import is_empty, prepare
from runtap.analysis.registry import ReportResult
from runtap.analysis.timeline_loader import RUN_CHOICE, THREAD_CHOICE, load_bars
from runtap.errors import RuntapError
from runtap.store.multi import open_sources

LANES = ("status", "tool_call", "request")
COLUMNS = (
    "run_id",
    "thread_id",
    "lane",
    "name",
    "start_at",
    "end_at",
    "start_ms",
    "end_ms",
    "duration_ms",
    "uncertainty_ms",
    "visit",
    "tool_call_id",
    "exchange_id",
    "method",
    "status_code",
    "streamed",
)


def timeline(bars: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """The bars placed on each run's axis (`start_ms`, `end_ms` from the run's earliest bar) and
    ordered for reading: runs by start, then lanes (status, tool_call, request), then by start."""
    origin = pl.col("start_at").min().over("run_id")
    offset = (pl.col("start_at") - origin).dt.total_microseconds() / 1000.0
    placed = bars.with_columns(
        start_ms=offset,
        end_ms=(pl.col("end_at") - origin).dt.total_microseconds() / 1000.0,
        _origin=origin,
        _lane=pl.col("lane").replace_strict(LANES, range(len(LANES)), return_dtype=pl.Int8),
    )
    # tool_call_id and exchange_id break ties (two tool calls asked at once start together), so
    # the same bars always come in the same order.
    order = ["_origin", "run_id", "_lane", "start_at", "visit", "tool_call_id", "exchange_id"]
    ordered = placed.sort(order, nulls_last=True)
    return {"timeline": ordered.select(COLUMNS)}


def run_timeline(db: str | Sequence[str], *, run: str | None = None, thread: str | None = None) -> ReportResult:
    """The timeline of run `run`, or of every run of thread `thread` (exactly one of them).

    RuntapError when the store holds no such run or thread; an empty store gives an empty result.
    """
    if (run is None) == (thread is None):
        raise RuntapError("give one of --run ID or --thread ID")
    chosen, what = (RUN_CHOICE, f"run {run!r}") if run is not None else (THREAD_CHOICE, f"runs of thread {thread!r}")
    with open_sources(db) as con:
        prepare(con)
        if is_empty(con):
            return ReportResult("timeline", empty_store=True)
        bars = load_bars(con, chosen, {"id": run if run is not None else thread})
    if bars.is_empty():
        source = db if isinstance(db, str) else ", ".join(db)
        raise RuntapError(f"no {what} recorded in {source}")
    sections = {name: frame.collect() for name, frame in timeline(bars.lazy()).items()}
    return ReportResult("timeline", sections)
