"""What the move costs: tokens and cost per model, the recorded runs against the responses the replay made.

Both sides are priced by `runtap.analysis.costs` (genai-prices): runs at the input and output
prices, responses as the reports price them (cached input tokens at the cached input price). A
model genai-prices does not know has a null cost, never zero. Runs and responses that reported
no usage (v1 runs, cancelled ones) are counted but add no tokens; a model none of whose runs
reported usage has null tokens. The last row, `all`, adds every model up.
"""

from __future__ import annotations

import polars as pl

from runtap.analysis.costs import cached_cost_usd, cost_usd, price_table

COLUMNS = (
    "model",
    "runs",
    "responses",
    "old_input_tokens",
    "new_input_tokens",
    "old_output_tokens",
    "new_output_tokens",
    "new_cached_tokens",
    "old_cost_usd",
    "new_cost_usd",
    "cost_change",
    "runs_without_usage",
    "responses_without_usage",
)
_SIDE = {"model": pl.String, "input": pl.Int64, "output": pl.Int64, "cached": pl.Int64}


def migration_costs(runs: list[dict], responses: list[dict]) -> list[dict]:
    """One row per model: `runs` are final run objects, `responses` final response objects (with usage)."""
    old = _side(
        [(r.get("model"), _n(r, "usage", "prompt_tokens"), _n(r, "usage", "completion_tokens"), 0) for r in runs]
    )
    new = _side(
        [
            (
                r.get("model"),
                _n(r, "usage", "input_tokens"),
                _n(r, "usage", "output_tokens"),
                (((r.get("usage") or {}).get("input_tokens_details") or {}).get("cached_tokens") or 0),
            )
            for r in responses
        ]
    )
    if not runs and not responses:
        return []
    prices = price_table([r.get("model") for r in runs + responses])
    old = old.join(prices, on="model", how="left").with_columns(
        cost_usd(pl.col("input"), pl.col("output")).alias("cost")
    )
    new = new.join(prices, on="model", how="left").with_columns(
        cached_cost_usd(pl.col("input"), pl.col("cached"), pl.col("output")).alias("cost")
    )
    table = (
        old.select(
            "model",
            runs="count",
            old_input_tokens="input",
            old_output_tokens="output",
            old_cost_usd="cost",
            runs_without_usage="without_usage",
        )
        .join(
            new.select(
                "model",
                responses="count",
                new_input_tokens="input",
                new_output_tokens="output",
                new_cached_tokens="cached",
                new_cost_usd="cost",
                responses_without_usage="without_usage",
            ),
            on="model",
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("runs", "responses", "runs_without_usage", "responses_without_usage").fill_null(0))
        .sort("model")
        .collect()
    )
    total = table.select(
        pl.lit("all").alias("model"),
        *(pl.col(c).sum() for c in (*COLUMNS[1:8], *COLUMNS[11:])),
        *(pl.when(pl.col(c).is_null().all()).then(None).otherwise(pl.col(c).sum()).alias(c) for c in COLUMNS[8:10]),
    )
    table = pl.concat([table, total], how="diagonal_relaxed").with_columns(
        pl.when(pl.col("old_cost_usd") > 0).then(pl.col("new_cost_usd") / pl.col("old_cost_usd")).alias("cost_change")
    )
    money = [pl.col(c).round(9) for c in COLUMNS[8:10]]
    return table.select(COLUMNS).with_columns(*money, pl.col("cost_change").round(4)).to_dicts()


def _side(rows: list[tuple]) -> pl.LazyFrame:
    frame = pl.LazyFrame(rows, schema=_SIDE, orient="row")
    known = pl.col("input").is_not_null().any()  # none of them reported usage: null, not 0
    return frame.group_by("model").agg(
        pl.len().cast(pl.Int64).alias("count"),
        *(pl.when(known).then(pl.col(c).sum()).alias(c) for c in ("input", "output", "cached")),
        pl.col("input").is_null().sum().cast(pl.Int64).alias("without_usage"),
    )


def _n(obj: dict, key: str, name: str) -> int | None:
    value = (obj.get(key) or {}).get(name) if isinstance(obj.get(key), dict) else None
    return value if isinstance(value, int) else None
