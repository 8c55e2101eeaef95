"""`steps`: run steps per type and tool: how many, tokens, durations, failures."""

from __future__ import annotations

import polars as pl

from runtap.analysis.exprs import nullable_sum, ratio


def steps(step_cube: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Per step type and tool (function name, code_interpreter, file_search; tools of one step
    joined with "+"): steps, failed, tool_calls, token sums, avg and max duration_ms
    (created_at -> completed_at, the API's timestamps).
    """
    per_tool = (
        step_cube.group_by("type", "tool")
        .agg(
            pl.col("steps").sum(),
            failed=pl.col("steps").filter(pl.col("status") == "failed").sum(),
            tool_calls=pl.col("tool_calls").sum(),
            prompt_tokens=nullable_sum("prompt_tokens"),
            completion_tokens=nullable_sum("completion_tokens"),
            total_tokens=nullable_sum("total_tokens"),
            duration_sum_ms=nullable_sum("duration_sum_ms"),
            durations=pl.col("durations").sum(),
            max_duration_ms=pl.col("duration_max_ms").max(),
        )
        .select(
            "type",
            "tool",
            "steps",
            "failed",
            "tool_calls",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            avg_duration_ms=ratio(pl.col("duration_sum_ms"), pl.col("durations")),
            max_duration_ms="max_duration_ms",
        )
        .sort(["steps", "type", "tool"], descending=[True, False, False], nulls_last=True)
    )
    return {"steps": per_tool}
