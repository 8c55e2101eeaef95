"""`durations`: where a run's time goes, per model (or per model and assistant)."""

from __future__ import annotations

import polars as pl

from runtap.analysis.exprs import quantile_columns


def durations(duration_stats: pl.LazyFrame, *, by_assistant: bool = False) -> dict[str, pl.LazyFrame]:
    """Per model (and assistant): runs; p50/p90 of queue (created -> started), execution
    (started -> ended) and end-to-end (created -> ended) from the API's timestamps, end-to-end
    max; runs that waited on tool outputs and p50/p90 of that wait (observed); polls per run.

    `duration_stats` holds, per group, each phase's [p50, p90] in `<phase>_ms` (see the loader);
    `by_assistant` must match how it was grouped.
    """
    keys = ["model", "assistant_id"] if by_assistant else ["model"]
    per_group = duration_stats.select(
        *keys,
        pl.col("runs").cast(pl.Int64),
        *quantile_columns("queue_ms", "queue", (50, 90)),
        *quantile_columns("execution_ms", "execution", (50, 90)),
        *quantile_columns("end_to_end_ms", "end_to_end", (50, 90)),
        "end_to_end_max_ms",
        pl.col("requires_action_runs").cast(pl.Int64),
        *quantile_columns("requires_action_ms", "requires_action", (50, 90)),
        "polls_per_run",
        "polls_max",
    ).sort(["runs", *keys], descending=[True] + [False] * len(keys), nulls_last=True)
    return {"durations": per_group}
