"""`durations`: where a run's time goes, per model (or per model and assistant).

From `run_status_intervals`: each run's time in queued, in_progress, requires_action and
cancelling (its stays in the status, summed), its end-to-end time, and how sure those are. The
API's own timestamps (whole seconds) appear only for runs nothing finer was recorded for, in
columns named `api_*`.
"""

from __future__ import annotations

import polars as pl

from runtap.analysis.exprs import quantile_columns
from runtap.store.intervals import STAY_STATUSES

PERCENTS = (50, 90)


def durations(duration_stats: pl.LazyFrame, *, by_assistant: bool = False) -> dict[str, pl.LazyFrame]:
    """Per model (and assistant): runs; p50/p90 of each run's time in each status
    (`<status>_p50_ms`: its stays there summed, runs that left the status) and of its end-to-end
    time (runs observed from creation to a terminal status), each with the median of its
    uncertainty (`<figure>_uncertainty_p50_ms`: how far the figure may be off); `api_runs` (runs
    with no observed end-to-end) and their p50/p90 queue, execution and end-to-end from the API's
    whole-second timestamps (`api_*`); polls per run.

    `duration_stats` holds, per group, each observed figure's [p50, p90] in `<figure>_ms` and its
    median uncertainty in `<figure>_uncertainty_ms` (see the loader); `by_assistant` must match
    how it was grouped.
    """
    keys = ["model", "assistant_id"] if by_assistant else ["model"]
    observed = [*STAY_STATUSES, "end_to_end"]
    columns = []
    for figure in observed:
        columns += quantile_columns(f"{figure}_ms", figure, PERCENTS)
        columns.append(pl.col(f"{figure}_uncertainty_ms").alias(f"{figure}_uncertainty_p50_ms"))
    for figure in ("api_queue", "api_execution", "api_end_to_end"):
        columns += quantile_columns(f"{figure}_ms", figure, PERCENTS)
    per_group = duration_stats.select(
        *keys,
        pl.col("runs").cast(pl.Int64),
        *columns[: 3 * len(observed)],
        pl.col("api_runs").cast(pl.Int64),
        *columns[3 * len(observed) :],
        "polls_per_run",
    )
    return {"durations": per_group.sort(["runs", *keys], descending=[True] + [False] * len(keys), nulls_last=True)}
