"""The reports' inputs for the Responses API: DuckDB SQL over `response_snapshots` reduced to the
grain a report needs (per model, per status, per operation), as analysis/loader.py does for runs."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from runtap.analysis.filters import Filters
from runtap.analysis.loader import (
    _frame,
    daily_token_sums,
    load_exchange_timings,
    load_operation_latency,
    load_overview,
)
from runtap.analysis.response_facts import matching_responses, restrict_responses
from runtap.store.latest import RESPONSE_TOKENS, status_changes

_USAGE_FACTS = (*RESPONSE_TOKENS, "with_usage")  # the token facts, and whether any snapshot carried usage


def _token_sums() -> str:
    """Sums of the token facts (NULL when no response of the group had usage)."""
    return ", ".join(f"sum({c})::BIGINT AS {c}" for c in RESPONSE_TOKENS)


def _per_response(con, filters: Filters, facts: tuple[str, ...], select: str) -> pl.LazyFrame:
    """Run `select` (which reads the CTE `matching_responses`) over the matching responses' `facts`."""
    cte, params = matching_responses(facts, filters)
    return _frame(con, f"WITH {cte} {select}", params)


def load_response_usage_by_model(con, filters: Filters) -> pl.LazyFrame:
    """Per model: responses, responses_with_usage and the token sums of those (input, output,
    total, cached, reasoning; NULL when no response had usage)."""
    return _per_response(
        con,
        filters,
        ("model", *_USAGE_FACTS),
        f"""SELECT model, count(*) AS responses, count(*) FILTER (WHERE with_usage) AS responses_with_usage,
               {_token_sums()}
        FROM matching_responses GROUP BY model""",
    )


def load_response_outcomes(con, filters: Filters) -> pl.LazyFrame:
    """Per model and final status: responses and token sums."""
    return _per_response(
        con,
        filters,
        ("model", "status", *_USAGE_FACTS),
        f"""SELECT model, status, count(*) AS responses, {_token_sums()}
        FROM matching_responses GROUP BY model, status""",
    )


def load_response_endings(con, filters: Filters) -> pl.LazyFrame:
    """Responses per final status, error_code and incomplete_reason."""
    return _per_response(
        con,
        filters,
        ("status", "error_code", "incomplete_reason"),
        "SELECT status, error_code, incomplete_reason, count(*) AS responses FROM matching_responses GROUP BY ALL",
    )


def load_response_daily_usage(con, filters: Filters) -> pl.LazyFrame:
    """Per UTC day of creation (or first sight) and model: token sums of responses with usage."""
    return _per_response(
        con,
        filters,
        ("model", *_USAGE_FACTS, "created_at", "first_observed_at"),
        daily_token_sums("matching_responses", RESPONSE_TOKENS),
    )


def load_response_transition_counts(con, filters: Filters) -> pl.LazyFrame:
    """Status transitions (consecutive distinct statuses of a response), counted: from_status, to_status, count."""
    cte, params = matching_responses((), filters)
    changes = status_changes(restrict_responses(filters), table="response_snapshots", by="response_id")
    sql = f"""WITH {cte}
        SELECT from_status, to_status, count(*) AS count FROM ({changes}) GROUP BY ALL"""
    return _frame(con, sql, params)


RESPONSE_LOADERS: dict[str, Callable[..., pl.LazyFrame]] = {
    "response_usage_by_model": load_response_usage_by_model,
    "response_outcomes": load_response_outcomes,
    "response_endings": load_response_endings,
    "response_daily_usage": load_response_daily_usage,
    "response_transition_counts": load_response_transition_counts,
    "response_operation_latency": lambda con, filters: load_operation_latency(con, filters, "responses"),
    "response_exchange_timings": lambda con, filters: load_exchange_timings(con, filters, "responses"),
    "response_overview": lambda con, filters: load_overview(con, filters, "responses"),
}
