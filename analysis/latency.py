"""`latency`: how fast each runs-API (or Responses-API) operation answered, as seen by the proxy."""

from __future__ import annotations

import polars as pl

from runtap.analysis.exprs import quantile_columns


def latency(operation_latency: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Per operation: requests (every exchange, whatever its HTTP status), failed, p50/p90/p99/max
    of duration_ms (request start -> response end), p50 time to headers and to first byte; for
    streams: streams, p50 time to the first SSE event and to the first message delta.

    `operation_latency` holds duration_ms's [p50, p90, p99] as one list (see the loader).
    """
    per_operation = operation_latency.select(
        "operation",
        pl.col("requests", "failed").cast(pl.Int64),
        *quantile_columns("duration_ms", "", (50, 90, 99)),
        "max_ms",
        "headers_p50_ms",
        "first_byte_p50_ms",
        pl.col("streams").cast(pl.Int64),
        "first_event_p50_ms",
        "first_delta_p50_ms",
    ).sort(["requests", "operation"], descending=[True, False], nulls_last=True)
    return {"latency": per_operation}


def response_latency(response_operation_latency: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """`--api responses`: the same figures per Responses and Conversations operation (the first
    delta is the first `response.output_text.delta`)."""
    return latency(response_operation_latency)


def all_latency(operation_latency: pl.LazyFrame, response_operation_latency: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """`--api all`: every operation of both APIs, with an `api` column."""
    parts = [
        latency(frame)["latency"].select(pl.lit(api).alias("api"), pl.all())
        for api, frame in (("runs", operation_latency), ("responses", response_operation_latency))
    ]
    return {"latency": pl.concat(parts, how="vertical_relaxed")}
