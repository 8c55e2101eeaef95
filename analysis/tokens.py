"""`tokens`: prompt/completion/total tokens, runs and cost in USD per model."""

from __future__ import annotations

import polars as pl

from runtap.analysis.costs import cost_usd
from runtap.analysis.exprs import ratio

TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens")


def tokens(usage_by_model: pl.LazyFrame, prices: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """Per model: runs, runs_with_usage, token sums, averages per run with usage, cost_usd.

    Token sums cover runs that reported usage (v1 runs and unfinished ones do not); cost_usd is
    NULL for a model genai-prices does not know, never 0.
    """
    per_model = (
        usage_by_model.join(prices, on="model", how="left", nulls_equal=True)
        .with_columns(cost_usd=cost_usd(pl.col("prompt_tokens"), pl.col("completion_tokens")))
        .select(
            "model",
            "runs",
            "runs_with_usage",
            *TOKEN_COLUMNS,
            avg_total_tokens_per_run=ratio(pl.col("total_tokens"), pl.col("runs_with_usage")),
            cost_usd="cost_usd",
            avg_cost_usd_per_run=ratio(pl.col("cost_usd"), pl.col("runs_with_usage")),
        )
        .sort(["total_tokens", "model"], descending=[True, False], nulls_last=True)
    )
    return {"tokens": per_model}


def notes(sections: dict[str, pl.DataFrame]) -> list[str]:
    """Say which models have no price and how many runs carried no usage."""
    frame = sections["tokens"]
    out = []
    unpriced = frame.filter(pl.col("cost_usd").is_null() & pl.col("total_tokens").is_not_null())
    if unpriced.height:
        names = ", ".join(str(m) for m in unpriced["model"].to_list())
        out.append(f"no price known to genai-prices for: {names} (cost_usd is null)")
    without = int(frame["runs"].sum() - frame["runs_with_usage"].sum())
    if without:
        out.append(f"{without} run(s) reported no usage (v1 API or unfinished): not in token sums or cost")
    return out
