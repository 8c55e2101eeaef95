"""Polars expressions the reports share, so every report treats missing data the same way."""

from __future__ import annotations

import polars as pl


def nullable_sum(column: str) -> pl.Expr:
    """Sum of a column that stays NULL when every value is NULL (polars would give 0)."""
    return pl.when(pl.col(column).is_not_null().any()).then(pl.col(column).sum()).alias(column)


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator as a float, NULL when the denominator is 0 or NULL."""
    return pl.when(denominator > 0).then(numerator.cast(pl.Float64) / denominator)


def quantile_columns(column: str, prefix: str, percents: tuple[int, ...]) -> list[pl.Expr]:
    """Name the items of a list column of percentiles (DuckDB's `quantile_cont(x, [...])`, linear
    interpolation, NULL when no value is known): `<prefix>_p<percent>_ms`, or `p<percent>_ms`.
    """
    stem = f"{prefix}_" if prefix else ""
    return [pl.col(column).list.get(i).alias(f"{stem}p{p}_ms") for i, p in enumerate(percents)]


def api_order() -> pl.Expr:
    """Sort key of an `api` column: runs, then responses, then all (both)."""
    return pl.col("api").replace_strict({"runs": 0, "responses": 1, "all": 2}, default=3, return_dtype=pl.Int8)
