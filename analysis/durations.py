"""`durations`: where a run's time goes, per model (or per model and assistant)."""

from __future__ import annotations

import polars as pl

from analysis.exprs import quantile_ms


def durations(run_durations: pl.LazyFrame, *, by_assistant: bool = False) -> dict[str, pl.LazyFrame]:
    """Per model (and assistant): runs; p50/p90 of queue (created -> started), execution
    (started -> ended) and end-to-end (created -> ended) from the API's timestamps, end-to-end
    max; runs that waited on tool outputs and p50/p90 of that wait (observed); polls per run.
    """
    keys = ["model", "assistant_id"] if by_assistant else ["model"]
    per_group = (
        run_durations.group_by(keys)
        .agg(
            runs=pl.len(),
            queue_p50_ms=quantile_ms("queue_ms", 0.5, "queue_p50_ms"),
            queue_p90_ms=quantile_ms("queue_ms", 0.9, "queue_p90_ms"),
            execution_p50_ms=quantile_ms("execution_ms", 0.5, "execution_p50_ms"),
            execution_p90_ms=quantile_ms("execution_ms", 0.9, "execution_p90_ms"),
            end_to_end_p50_ms=quantile_ms("end_to_end_ms", 0.5, "end_to_end_p50_ms"),
            end_to_end_p90_ms=quantile_ms("end_to_end_ms", 0.9, "end_to_end_p90_ms"),
            end_to_end_max_ms=pl.col("end_to_end_ms").max(),
            requires_action_runs=pl.col("requires_action_ms").count(),
            requires_action_p50_ms=quantile_ms("requires_action_ms", 0.5, "requires_action_p50_ms"),
            requires_action_p90_ms=quantile_ms("requires_action_ms", 0.9, "requires_action_p90_ms"),
            polls_per_run=pl.col("polls").mean(),
            polls_max=pl.col("polls").max(),
        )
        .with_columns(pl.col("runs").cast(pl.Int64), pl.col("requires_action_runs").cast(pl.Int64))
        .sort(["runs", *keys], descending=[True] + [False] * len(keys), nulls_last=True)
    )
    return {"durations": per_group}
