"""`transitions`: how run (or response) statuses move, how they end, why they fail, which never ended."""

from __future__ import annotations

import polars as pl

from runtap.analysis.exprs import ratio
from runtap.analysis.facts import TERMINAL
from runtap.analysis.response_facts import RESPONSE_TERMINAL


def _sections(
    counts: pl.LazyFrame, endings: pl.LazyFrame, unit: str, terminal: tuple[str, ...], error: str
) -> dict[str, pl.LazyFrame]:
    """The four sections, counting `unit` (runs or responses); `error` is the error-code column."""
    counted = counts.sort(["count", "from_status", "to_status"], descending=[True, False, False])
    by_status = endings.group_by("status").agg(pl.col(unit).sum())
    ended = by_status.filter(pl.col("status").is_in(terminal))
    share = ended.with_columns(share=ratio(pl.col(unit), pl.col(unit).sum())).sort(
        [unit, "status"], descending=[True, False]
    )
    failing = [s for s in ("failed", "incomplete", "expired", "cancelled") if s in terminal]
    reasons = (
        endings.filter(pl.col("status").is_in(failing))
        .with_columns(reason=pl.coalesce(error, "incomplete_reason"))
        .group_by("status", "reason")
        .agg(pl.col(unit).sum())
        .sort([unit, "status", "reason"], descending=[True, False, False], nulls_last=True)
    )
    still_open = by_status.filter(~pl.col("status").is_in(terminal) | pl.col("status").is_null()).sort(
        [unit, "status"], descending=[True, False], nulls_last=True
    )
    return {"transitions": counted, "terminal": share, "reasons": reasons, "open": still_open}


def transitions(transition_counts: pl.LazyFrame, endings: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Four sections: `transitions` (from_status, to_status, count), `terminal` (status, runs,
    share of ended runs), `reasons` (status, reason: last_error.code or incomplete_details.reason,
    runs) and `open` (status, runs: runs not terminal when last seen).
    """
    return _sections(transition_counts, endings, "runs", TERMINAL, "last_error_code")


def response_transitions(
    response_transition_counts: pl.LazyFrame, response_endings: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """`--api responses`: the same four sections for responses (`responses` counts them; the
    reason is error.code or incomplete_details.reason; responses have no `expired`)."""
    return _sections(response_transition_counts, response_endings, "responses", RESPONSE_TERMINAL, "error_code")


def all_transitions(
    transition_counts: pl.LazyFrame,
    endings: pl.LazyFrame,
    response_transition_counts: pl.LazyFrame,
    response_endings: pl.LazyFrame,
) -> dict[str, pl.LazyFrame]:
    """`--api all`: each section for runs and for responses, with an `api` column; `count`
    counts transitions, or runs or responses."""
    runs = transitions(transition_counts, endings)
    responses = response_transitions(response_transition_counts, response_endings)
    both = {}
    for name, frame in runs.items():
        parts = [
            part.rename({unit: "count"} if unit in part.collect_schema() else {}).select(
                pl.lit(api).alias("api"), pl.all()
            )
            for api, unit, part in (("runs", "runs", frame), ("responses", "responses", responses[name]))
        ]
        both[name] = pl.concat(parts, how="vertical_relaxed")
    return both
