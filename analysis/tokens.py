"""`tokens`: prompt/completion/total tokens, runs and cost in USD per model."""

from __future__ import annotations

import polars as pl

from runtap.analysis.costs import cached_cost_usd, cost_usd
from runtap.analysis.exprs import api_order, ratio

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


RESPONSE_TOKEN_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")


def response_tokens(response_usage_by_model: pl.LazyFrame, prices: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """`--api responses`. Per model: responses, responses_with_usage, input/output/total tokens
    (cached and reasoning tokens, which input and output include), average per response with
    usage, cost_usd (cached input tokens at genai-prices' cached price; NULL for an unknown model).
    """
    per_model = (
        response_usage_by_model.join(prices, on="model", how="left", nulls_equal=True)
        .with_columns(
            cost_usd=cached_cost_usd(pl.col("input_tokens"), pl.col("cached_tokens"), pl.col("output_tokens"))
        )
        .select(
            "model",
            "responses",
            "responses_with_usage",
            *RESPONSE_TOKEN_COLUMNS,
            avg_total_tokens_per_response=ratio(pl.col("total_tokens"), pl.col("responses_with_usage")),
            cost_usd="cost_usd",
            avg_cost_usd_per_response=ratio(pl.col("cost_usd"), pl.col("responses_with_usage")),
        )
        .sort(["total_tokens", "model"], descending=[True, False], nulls_last=True)
    )
    return {"tokens": per_model}


def all_tokens(
    usage_by_model: pl.LazyFrame, response_usage_by_model: pl.LazyFrame, prices: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """`--api all`: runs and responses side by side, one row per api and model (a model's rows
    next to each other). `count` is runs or responses, `with_usage` those that reported usage;
    a run's prompt and completion tokens are its input and output tokens."""
    runs = tokens(usage_by_model, prices)["tokens"].select(
        api=pl.lit("runs"),
        model="model",
        count="runs",
        with_usage="runs_with_usage",
        input_tokens="prompt_tokens",
        output_tokens="completion_tokens",
        total_tokens="total_tokens",
        cached_tokens=pl.lit(None, pl.Int64),
        reasoning_tokens=pl.lit(None, pl.Int64),
        cost_usd="cost_usd",
    )
    responses = response_tokens(response_usage_by_model, prices)["tokens"].select(
        pl.lit("responses").alias("api"),
        "model",
        pl.col("responses").alias("count"),
        pl.col("responses_with_usage").alias("with_usage"),
        *RESPONSE_TOKEN_COLUMNS,
        "cost_usd",
    )
    both = pl.concat([runs, responses], how="vertical_relaxed").sort([pl.col("model"), api_order()], nulls_last=True)
    return {"tokens": both}


def _notes(frame: pl.DataFrame, count: str, with_usage: str, unit: str) -> list[str]:
    out = []
    unpriced = frame.filter(pl.col("cost_usd").is_null() & pl.col("total_tokens").is_not_null())
    if unpriced.height:
        names = ", ".join(sorted({str(m) for m in unpriced["model"].to_list()}))
        out.append(f"no price known to genai-prices for: {names} (cost_usd is null)")
    without = int(frame[count].sum() - frame[with_usage].sum())
    if without:
        out.append(f"{without} {unit} reported no usage (cancelled or unfinished): not in token sums or cost")
    return out


def response_notes(sections: dict[str, pl.DataFrame]) -> list[str]:
    """Say which models have no price and how many responses carried no usage."""
    return _notes(sections["tokens"], "responses", "responses_with_usage", "response(s)")


def all_notes(sections: dict[str, pl.DataFrame]) -> list[str]:
    """Say which models have no price and how many runs or responses carried no usage."""
    return _notes(sections["tokens"], "count", "with_usage", "run(s) or response(s)")


def per_model_by_api(
    usage_by_model: pl.LazyFrame, response_usage_by_model: pl.LazyFrame, prices: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """Runs and responses per model next to each other (the HTML report's comparison): model,
    runs, responses, run_/response_ total tokens and cost_usd (NULL where a model has none)."""
    runs = tokens(usage_by_model, prices)["tokens"].select(
        "model", "runs", run_total_tokens="total_tokens", run_cost_usd="cost_usd"
    )
    responses = response_tokens(response_usage_by_model, prices)["tokens"].select(
        "model", "responses", response_total_tokens="total_tokens", response_cost_usd="cost_usd"
    )
    joined = runs.join(responses, on="model", how="full", coalesce=True, nulls_equal=True).select(
        "model",
        pl.col("runs").fill_null(0),
        pl.col("responses").fill_null(0),
        "run_total_tokens",
        "response_total_tokens",
        "run_cost_usd",
        "response_cost_usd",
    )
    return {"by_api": joined.sort("model", nulls_last=True)}
