"""`summary`: what was recorded, how runs (or responses) ended per model, total tokens and cost."""

from __future__ import annotations

import polars as pl

from runtap.analysis.costs import cached_cost_usd, cost_usd
from runtap.analysis.exprs import api_order, nullable_sum, ratio
from runtap.analysis.facts import TERMINAL
from runtap.analysis.response_facts import RESPONSE_TERMINAL


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


# --- --api responses | all ------------------------------------------------------------------------
def _counts(unit: str, endings: tuple[str, ...]) -> list[pl.Expr]:
    """`unit` summed, per terminal status in `endings`, and `in_flight` (anything else)."""
    counts = [pl.col(unit).filter(pl.col("status") == s).sum().alias(s) for s in endings]
    in_flight = pl.col(unit).filter(~pl.col("status").is_in(endings) | pl.col("status").is_null()).sum()
    return [pl.col(unit).sum(), *counts, in_flight.alias("in_flight")]


def _rate(endings: tuple[str, ...]) -> pl.Expr:
    """(failed + expired, where known) / those that reached a terminal status."""
    failing = sum(pl.col(s) for s in ("failed", "expired") if s in endings)
    return ratio(failing, sum(pl.col(s) for s in endings)).alias("failure_rate")


def _priced_responses(response_outcomes: pl.LazyFrame, prices: pl.LazyFrame) -> pl.LazyFrame:
    return response_outcomes.join(prices, on="model", how="left", nulls_equal=True).with_columns(
        cost_usd=cached_cost_usd(pl.col("input_tokens"), pl.col("cached_tokens"), pl.col("output_tokens"))
    )


def response_summary(
    response_outcomes: pl.LazyFrame, response_overview: pl.LazyFrame, prices: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """`--api responses`: `overview` (one row: time range, exchanges, conversations, responses,
    models, tokens, cost, failure and HTTP error rates) and `models` (per model: responses by
    how they ended). failure_rate = failed / responses that ended."""
    totals = (
        _priced_responses(response_outcomes, prices)
        .select(
            *_counts("responses", RESPONSE_TERMINAL),
            models=pl.col("model").drop_nulls().n_unique(),
            total_tokens=nullable_sum("total_tokens"),
            cost_usd=nullable_sum("cost_usd"),
        )
        .with_columns(_rate(RESPONSE_TERMINAL))
    )
    overview_row = pl.concat([response_overview, totals], how="horizontal").select(
        "first_seen_at",
        "last_seen_at",
        "exchanges",
        "conversations",
        "responses",
        "models",
        "total_tokens",
        "cost_usd",
        "failure_rate",
        http_error_rate=ratio(pl.col("http_errors"), pl.col("exchanges")),
    )
    models = (
        response_outcomes.group_by("model")
        .agg(*_counts("responses", RESPONSE_TERMINAL))
        .with_columns(_rate(RESPONSE_TERMINAL))
        .sort(["responses", "model"], descending=[True, False], nulls_last=True)
    )
    return {"overview": overview_row, "models": models}


def all_summary(
    outcomes: pl.LazyFrame,
    overview: pl.LazyFrame,
    response_outcomes: pl.LazyFrame,
    response_overview: pl.LazyFrame,
    prices: pl.LazyFrame,
) -> dict[str, pl.LazyFrame]:
    """`--api all`: both APIs counted. `overview` has a row per api and one for `all` (both
    together); `models` a row per api and model. `count` is runs or responses."""
    runs = outcomes.join(prices, on="model", how="left", nulls_equal=True).select(
        pl.lit("runs").alias("api"),
        "model",
        "status",
        pl.col("runs").alias("count"),
        "total_tokens",
        cost_usd=cost_usd(pl.col("prompt_tokens"), pl.col("completion_tokens")),
    )
    responses = _priced_responses(response_outcomes, prices).select(
        pl.lit("responses").alias("api"),
        "model",
        "status",
        pl.col("responses").alias("count"),
        "total_tokens",
        "cost_usd",
    )
    both = pl.concat([runs, responses], how="vertical_relaxed")
    figures = [
        *_counts("count", TERMINAL),
        pl.col("model").drop_nulls().n_unique().alias("models"),
        nullable_sum("total_tokens"),
        nullable_sum("cost_usd"),
    ]
    totals = pl.concat(
        [both.group_by("api").agg(*figures), both.select(pl.lit("all").alias("api"), *figures)],
        how="vertical_relaxed",
    )
    seen = pl.concat(
        [
            overview.select(pl.lit("runs").alias("api"), pl.all(), pl.lit(None, pl.Int64).alias("conversations")),
            response_overview.select(
                pl.lit("responses").alias("api"), pl.all(), pl.lit(None, pl.Int64).alias("threads")
            ),
        ],
        how="diagonal_relaxed",
    )
    seen = pl.concat(
        [
            seen,
            seen.select(
                pl.lit("all").alias("api"),
                pl.col("exchanges", "http_errors").sum(),
                nullable_sum("threads"),
                nullable_sum("conversations"),
                pl.col("first_seen_at").min(),
                pl.col("last_seen_at").max(),
            ),
        ],
        how="diagonal_relaxed",
    )
    overview_rows = (
        seen.join(totals, on="api", how="left")
        .with_columns(_rate(TERMINAL))
        .sort(api_order())
        .select(
            "api",
            "first_seen_at",
            "last_seen_at",
            "exchanges",
            "threads",
            "conversations",
            "count",
            "models",
            "total_tokens",
            "cost_usd",
            "failure_rate",
            http_error_rate=ratio(pl.col("http_errors"), pl.col("exchanges")),
        )
    )
    models = (
        both.group_by("api", "model")
        .agg(*_counts("count", TERMINAL))
        .with_columns(_rate(TERMINAL))
        .sort([pl.col("model"), api_order()], nulls_last=True)
    )
    return {"overview": overview_rows, "models": models}


def response_notes(sections: dict[str, pl.DataFrame]) -> list[str]:
    """Explain the rates."""
    return [
        "failure_rate = failed / responses that ended; "
        "http_error_rate = exchanges with HTTP >= 400 or a transport error / exchanges; "
        "cost_usd covers models genai-prices knows, cached input at its cached price (see `report tokens`)"
    ]


def all_notes(sections: dict[str, pl.DataFrame]) -> list[str]:
    """Explain the rates and the `all` row."""
    return [
        "count = runs or responses; the `all` row counts both APIs; failure_rate = (failed + expired) / "
        "those that ended; http_error_rate = exchanges with HTTP >= 400 or a transport error / exchanges"
    ]
