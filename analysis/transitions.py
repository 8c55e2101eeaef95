"""`transitions`: how run statuses move, how runs end, why they fail, and which never ended."""

from __future__ import annotations

import polars as pl

from runtap.analysis.exprs import ratio
from runtap.analysis.facts import TERMINAL


def transitions(transition_counts: pl.LazyFrame, endings: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Four sections: `transitions` (from_status, to_status, count), `terminal` (status, runs,
    share of ended runs), `reasons` (status, reason: last_error.code or incomplete_details.reason,
    runs) and `open` (status, runs: runs not terminal when last seen).
    """
    counted = transition_counts.sort(["count", "from_status", "to_status"], descending=[True, False, False])
    by_status = endings.group_by("status").agg(pl.col("runs").sum())
    ended = by_status.filter(pl.col("status").is_in(TERMINAL))
    terminal = ended.with_columns(share=ratio(pl.col("runs"), pl.col("runs").sum())).sort(
        ["runs", "status"], descending=[True, False]
    )
    reasons = (
        endings.filter(pl.col("status").is_in(("failed", "incomplete", "expired", "cancelled")))
        .with_columns(reason=pl.coalesce("last_error_code", "incomplete_reason"))
        .group_by("status", "reason")
        .agg(pl.col("runs").sum())
        .sort(["runs", "status", "reason"], descending=[True, False, False], nulls_last=True)
    )
    still_open = by_status.filter(~pl.col("status").is_in(TERMINAL) | pl.col("status").is_null()).sort(
        ["runs", "status"], descending=[True, False], nulls_last=True
    )
    return {"transitions": counted, "terminal": terminal, "reasons": reasons, "open": still_open}
