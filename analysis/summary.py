"""`summary`: what was recorded, how runs ended per model, total tokens and cost."""

from __future__ import annotations

import polars as pl

from runtap.analysis.costs import cost_usd
from runtap.analysis.exprs import nullable_sum, ratio
from runtap.analysis.facts import TERMINAL


def _status_counts() -> list[pl.Expr]:
    """Runs, one column per terminal status, and `in_flight` (anything else, still running when last seen)."""
    counts = [pl.col("runs").filter(pl.col("status") == s).sum().alias(s) for s in TERMINAL]
    in_flight = pl.col("runs").filter(~pl.col("status").is_in(TERMINAL) | pl.col("status").is_null()).sum()
    return [pl.col("runs").sum(), *counts, in_flight.alias("in_flight")]


def _failure_rate() -> pl.Expr:
    """(failed + expired) / runs that reached a terminal status."""
    ended = sum(pl.col(s) for s in TERMINAL)
    return ratio(pl.col("failed") + pl.col("expired"), ended).alias("failure_rate")


def summary(outcomes: pl.LazyFrame, overview: pl.LazyFrame, prices: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Two sections: `overview` (one row: time range, exchanges, threads, runs, tokens, cost,
    failure and HTTP error rates) and `models` (per model: runs by how they ended).
    """
    priced = outcomes.join(prices, on="model", how="left", nulls_equal=True).with_columns(
        cost_usd=cost_usd(pl.col("prompt_tokens"), pl.col("completion_tokens"))
    )
    totals = priced.select(
        *_status_counts(),
        models=pl.col("model").drop_nulls().n_unique(),
        total_tokens=nullable_sum("total_tokens"),
        cost_usd=nullable_sum("cost_usd"),
    ).with_columns(_failure_rate())
    overview_row = pl.concat([overview, totals], how="horizontal").select(
        "first_seen_at",
        "last_seen_at",
        "exchanges",
        "threads",
        "runs",
        "models",
        "total_tokens",
        "cost_usd",
        "failure_rate",
        http_error_rate=ratio(pl.col("http_errors"), pl.col("exchanges")),
    )
    models = (
        outcomes.group_by("model")
        .agg(*_status_counts())
        .with_columns(_failure_rate())
        .sort(["runs", "model"], descending=[True, False], nulls_last=True)
    )
    return {"overview": overview_row, "models": models}


def notes(sections: dict[str, pl.DataFrame]) -> list[str]:
    """Explain the rates, since both are ratios of different things."""
    return [
        "failure_rate = (failed + expired) / runs that ended; "
        "http_error_rate = exchanges with HTTP >= 400 or a transport error / exchanges; "
        "cost_usd covers models genai-prices knows (see `report tokens`)"
    ]
