"""`latency`: how fast each runs-API operation answered, as seen by the proxy."""

from __future__ import annotations

import polars as pl

from analysis.exprs import quantile_ms


def latency(exchange_timings: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Per operation: requests (every exchange, whatever its HTTP status), failed, p50/p90/p99/max
    of duration_ms (request start -> response end), p50 time to headers and to first byte; for
    streams: streams, p50 time to the first SSE event and to the first message delta.
    """
    per_operation = (
        exchange_timings.group_by("operation")
        .agg(
            requests=pl.len(),
            failed=pl.col("failed").sum(),
            p50_ms=quantile_ms("duration_ms", 0.5, "p50_ms"),
            p90_ms=quantile_ms("duration_ms", 0.9, "p90_ms"),
            p99_ms=quantile_ms("duration_ms", 0.99, "p99_ms"),
            max_ms=pl.col("duration_ms").max(),
            headers_p50_ms=quantile_ms("ttfb_ms", 0.5, "headers_p50_ms"),
            first_byte_p50_ms=quantile_ms("first_byte_ms", 0.5, "first_byte_p50_ms"),
            streams=pl.col("streamed").sum(),
            first_event_p50_ms=quantile_ms("first_event_ms", 0.5, "first_event_p50_ms"),
            first_delta_p50_ms=quantile_ms("first_delta_ms", 0.5, "first_delta_p50_ms"),
        )
        .with_columns(pl.col("requests", "failed", "streams").cast(pl.Int64))
        .sort(["requests", "operation"], descending=[True, False], nulls_last=True)
    )
    return {"latency": per_operation}
