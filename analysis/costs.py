"""Per-token prices for the models in a report, from the maintained `genai-prices` data.

A run's usage adds up several model calls, so context-length price tiers cannot be told from it:
prices are the base tier's, taken as the price of 1,000 tokens divided by 1,000 (exact Decimals,
then floats). A model genai-prices does not know gets NULL prices, hence a NULL cost. Cached
input tokens (the Responses API reports them) are priced by genai-prices too: the price of 1,000
input tokens that are all cache reads (the full input price for a model without a cache price).
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

PRICE_SCHEMA = {
    "model": pl.String,
    "input_usd_per_token": pl.Float64,
    "output_usd_per_token": pl.Float64,
    "cached_input_usd_per_token": pl.Float64,
}
_PROBE_TOKENS = 1_000


def _unit_prices(model: str) -> tuple[float | None, float | None, float | None]:
    """(input, output, cached input) USD per token for one model; NULLs if unknown."""
    # Imported here: its price models take ~0.3 s to import, which reports without costs skip
    # and `report html` spends in a thread while DuckDB works (analysis/html.py).
    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=_PROBE_TOKENS, output_tokens=_PROBE_TOKENS)
    cached = Usage(input_tokens=_PROBE_TOKENS, cache_read_tokens=_PROBE_TOKENS, output_tokens=_PROBE_TOKENS)
    try:
        price = calc_price(usage, model_ref=model, provider_id="openai")
        cached_price = calc_price(cached, model_ref=model, provider_id="openai")
    except LookupError:  # genai-prices' "unable to find model"
        return None, None, None
    return (
        float(Decimal(price.input_price) / _PROBE_TOKENS),
        float(Decimal(price.output_price) / _PROBE_TOKENS),
        float(Decimal(cached_price.input_price) / _PROBE_TOKENS),
    )


def price_table(models: list[str | None]) -> pl.LazyFrame:
    """Input, output and cached input USD per token for each distinct model name (NULL when unknown)."""
    rows = [(model, *_unit_prices(model)) for model in sorted({m for m in models if m})]
    return pl.LazyFrame(rows, schema=PRICE_SCHEMA, orient="row")


def cost_usd(prompt_tokens: pl.Expr, completion_tokens: pl.Expr) -> pl.Expr:
    """Cost of token counts at the joined price columns; NULL if a price or the tokens are NULL."""
    return prompt_tokens * pl.col("input_usd_per_token") + completion_tokens * pl.col("output_usd_per_token")


def cached_cost_usd(input_tokens: pl.Expr, cached_tokens: pl.Expr, output_tokens: pl.Expr) -> pl.Expr:
    """Cost of Responses usage at the joined prices: input tokens (which include the cached ones)
    at the input price, less the cached ones, which cost the cached input price."""
    cached = cached_tokens.fill_null(0)
    return (
        (input_tokens - cached) * pl.col("input_usd_per_token")
        + cached * pl.col("cached_input_usd_per_token")
        + output_tokens * pl.col("output_usd_per_token")
    )
