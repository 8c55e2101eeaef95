"""The filters every report shares, and how they become DuckDB predicates with bound parameters.

A run matches on its latest model/assistant/thread, on its creation time (the API's `created_at`,
or when the proxy first saw it), and on a capture when any observation of it came from one.
An exchange matches on its own time, thread and capture; model and assistant filters keep the
exchanges of matching runs only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from runtap.errors import RuntapError

# What a report can cover (`--api`): the Assistants runs API, the Responses API, or both.
APIS = ("runs", "responses", "all")


def parse_instant(value: str, *, end_of_day: bool = False, option: str | None = None) -> dt.datetime:
    """Parse an ISO date or datetime into an aware UTC datetime; naive values are UTC.

    The one parser of `--since`/`--until` for reports and replay. A bare date means the start of
    that day, or with `end_of_day` the start of the next one, so `--until 2026-01-31` includes the
    whole of January 31st. `option` names the option in the error message when the caller's
    error handling does not.
    """
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        hint = "(try 2026-01-31 or 2026-01-31T12:00)"
        if option:
            raise RuntapError(f"{option} expects an ISO date or datetime, got {value!r} {hint}") from None
        raise RuntapError(f"not an ISO date or datetime: {value!r} {hint}") from None
    is_date = len(value.strip()) <= 10
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    if is_date and end_of_day:
        parsed += dt.timedelta(days=1)
    return parsed.astimezone(dt.UTC)


@dataclass(frozen=True)
class Filters:
    """Which runs and exchanges a report covers; empty tuples and None mean "no restriction".

    `until` is exclusive. Several values of one filter are alternatives (OR); filters combine
    with AND.
    """

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    models: tuple[str, ...] = ()
    assistants: tuple[str, ...] = ()
    threads: tuple[str, ...] = ()
    captures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise RuntapError(f"--since ({self.since.isoformat()}) must be before --until ({self.until.isoformat()})")

    @property
    def selects_runs(self) -> bool:
        """True when a filter can only be decided on the run (model, assistant)."""
        return bool(self.models or self.assistants)

    @property
    def run_facts(self) -> tuple[str, ...]:
        """The per-run facts (store.latest.RUN_FACTS) that `run_where` reads."""
        needed = ("created_at", "first_observed_at") if self.since or self.until else ()
        for fact, values in (("model", self.models), ("assistant_id", self.assistants), ("thread_id", self.threads)):
            needed += (fact,) if values else ()
        return needed

    def run_where(self) -> tuple[str, dict]:
        """A WHERE clause over the loader's per-run facts (one row per run), and its params."""
        clauses, params = [], {}
        if self.since:
            clauses.append("coalesce(created_at, first_observed_at) >= $since")
            params["since"] = self.since
        if self.until:
            clauses.append("coalesce(created_at, first_observed_at) < $until")
            params["until"] = self.until
        for name, column, values in (
            ("models", "model", self.models),
            ("assistants", "assistant_id", self.assistants),
            ("threads", "thread_id", self.threads),
        ):
            if values:
                clauses.append(f"list_contains(${name}, {column})")
                params[name] = list(values)
        if self.captures:
            clauses.append(
                "run_id IN (SELECT s.run_id FROM run_snapshots s JOIN exchanges e USING (exchange_id)"
                " WHERE list_contains($captures, e.capture_id))"
            )
            params["captures"] = list(self.captures)
        return (" AND ".join(clauses) or "true"), params

    @property
    def response_facts(self) -> tuple[str, ...]:
        """The per-response facts (store.latest.RESPONSE_FACTS) that `response_where` reads."""
        needed = ("created_at", "first_observed_at") if self.since or self.until else ()
        return needed + (("model",) if self.models else ())

    def check_responses(self) -> None:
        """RuntapError when a filter only selects runs (assistant, thread) and responses are asked for."""
        if self.assistants or self.threads:
            raise RuntapError("--assistant and --thread select runs; they do not apply to --api responses or all")

    def response_where(self) -> tuple[str, dict]:
        """A WHERE clause over the per-response facts (one row per response), and its params:
        created (or first seen) in the time range, of the models, observed in the captures."""
        self.check_responses()
        clauses, params = [], {}
        if self.since:
            clauses.append("coalesce(created_at, first_observed_at) >= $since")
            params["since"] = self.since
        if self.until:
            clauses.append("coalesce(created_at, first_observed_at) < $until")
            params["until"] = self.until
        if self.models:
            clauses.append("list_contains($models, model)")
            params["models"] = list(self.models)
        if self.captures:
            clauses.append(
                "response_id IN (SELECT s.response_id FROM response_snapshots s JOIN exchanges e USING (exchange_id)"
                " WHERE list_contains($captures, e.capture_id))"
            )
            params["captures"] = list(self.captures)
        return (" AND ".join(clauses) or "true"), params

    def exchange_where(self, matching_runs: str, key: str = "run_id") -> tuple[str, dict]:
        """A WHERE clause over `exchanges` and its params; `matching_runs` is a subquery of the
        `key` column (run_id, or response_id for the Responses API's exchanges)."""
        clauses, params = [], {}
        if self.since:
            clauses.append("request_started_at >= $since")
            params["since"] = self.since
        if self.until:
            clauses.append("request_started_at < $until")
            params["until"] = self.until
        if self.threads:
            clauses.append("list_contains($threads, thread_id)")
            params["threads"] = list(self.threads)
        if self.captures:
            clauses.append("list_contains($captures, capture_id)")
            params["captures"] = list(self.captures)
        if self.selects_runs:
            clauses.append(f"{key} IN ({matching_runs})")
        return (" AND ".join(clauses) or "true"), params
