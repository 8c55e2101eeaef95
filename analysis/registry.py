"""The report catalogue and the one entry point that runs a report against a store file."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import duckdb
import polars as pl

from runtap.analysis import durations, latency, steps, summary, tokens, transitions
from runtap.analysis.costs import price_table
from runtap.analysis.filters import Filters
from runtap.analysis.loader import LOADERS, is_empty, prepare
from runtap.analysis.response_loader import RESPONSE_LOADERS
from runtap.errors import RuntapError
from runtap.store import derived
from runtap.store.multi import open_sources

Sections = dict[str, pl.DataFrame]


@dataclass(frozen=True)
class ReportSpec:
    """A report: its inputs (loader names, plus "prices"), its pure build function, its notes."""

    name: str
    inputs: tuple[str, ...]
    build: Callable[..., dict[str, pl.LazyFrame]]
    notes: Callable[[Sections], list[str]] = lambda sections: []


@dataclass
class ReportResult:
    """A computed report: named sections (the first is the main one), notes, and whether the store was empty."""

    name: str
    sections: Sections = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    empty_store: bool = False

    @property
    def main(self) -> pl.DataFrame:
        """The report's main section (the one `--format json` prints by default)."""
        return next(iter(self.sections.values()))


REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec("summary", ("outcomes", "overview", "prices"), summary.summary, summary.notes),
        ReportSpec("latency", ("operation_latency",), latency.latency),
        ReportSpec("durations", ("duration_stats",), durations.durations),
        ReportSpec("transitions", ("transition_counts", "endings"), transitions.transitions),
        ReportSpec("tokens", ("usage_by_model", "prices"), tokens.tokens, tokens.notes),
        ReportSpec("steps", ("step_cube",), steps.steps),
    )
}


# `--api`: the reports that also cover the Responses API, and their variants ("runs" is REPORTS).
API_REPORTS: dict[tuple[str, str], ReportSpec] = {
    (spec.name, api): spec
    for api, specs in (
        (
            "responses",
            (
                ReportSpec(
                    "summary",
                    ("response_outcomes", "response_overview", "prices"),
                    summary.response_summary,
                    summary.response_notes,
                ),
                ReportSpec("latency", ("response_operation_latency",), latency.response_latency),
                ReportSpec(
                    "transitions", ("response_transition_counts", "response_endings"), transitions.response_transitions
                ),
                ReportSpec(
                    "tokens", ("response_usage_by_model", "prices"), tokens.response_tokens, tokens.response_notes
                ),
            ),
        ),
        (
            "all",
            (
                ReportSpec(
                    "summary",
                    ("outcomes", "overview", "response_outcomes", "response_overview", "prices"),
                    summary.all_summary,
                    summary.all_notes,
                ),
                ReportSpec("latency", ("operation_latency", "response_operation_latency"), latency.all_latency),
                ReportSpec(
                    "transitions",
                    ("transition_counts", "endings", "response_transition_counts", "response_endings"),
                    transitions.all_transitions,
                ),
                ReportSpec(
                    "tokens",
                    ("usage_by_model", "response_usage_by_model", "prices"),
                    tokens.all_tokens,
                    tokens.all_notes,
                ),
            ),
        ),
    )
    for spec in specs
}
_LOADERS = LOADERS | RESPONSE_LOADERS


def report_spec(name: str, api: str = "runs") -> ReportSpec:
    """The spec of report `name` for `api` (runs, responses or all); RuntapError when it has none."""
    if api == "runs":
        return REPORTS[name]
    if (name, api) not in API_REPORTS:
        raise RuntapError(f"report {name} covers runs only; --api {api} is not available for it")
    return API_REPORTS[(name, api)]


def load_inputs(con, names: tuple[str, ...], filters: Filters, **options) -> dict[str, pl.LazyFrame]:
    """Load each named input once (`load_each`); `options` are the report's (only durations' loader
    takes one).

    "prices" are looked up for the models found in the other inputs (frames of a few rows).
    """
    loads = {name: partial(_LOADERS[name], filters=filters, **options) for name in names if name != "prices"}
    frames = load_each(con, loads)
    if "prices" in names:
        with_model = [frame.select("model") for frame in frames.values() if "model" in frame.collect_schema()]
        frames["prices"] = price_table(pl.concat(with_model).unique().collect()["model"].to_list())
    return frames


def load_each[T](con, loads: dict[str, Callable[[duckdb.DuckDBPyConnection], T]]) -> dict[str, T]:
    """Each `load(connection)`'s result by name. On a store that keeps the runs' state
    (store/derived.py) two run at a time, each on a cursor of its own (DuckDB runs one query at a
    time per connection; a cursor is another connection to the same database), with half the
    cores each: one query's single-threaded parts (quantiles, the transfer to polars) overlap the
    other's, and DuckDB's parallel aggregation, whose partial results are merged at the end,
    costs less CPU on fewer threads. `runtap report html` on 1M runs, the whole command (medians
    of 5, alternated, 2 cores): 4.42 s with two threads each, 4.04 s with one. Otherwise one
    after another on `con`, whose temporary tables (the page's shared reductions, several
    stores' views) a cursor would not see."""
    if len(loads) < 2 or not derived.current(con):
        return {name: load(con) for name, load in loads.items()}

    def on_cursor(load: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        with con.cursor() as cursor:
            prepare(cursor)  # a cursor starts from the database's defaults, not `con`'s settings
            return load(cursor)

    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute(f"SET threads = {max(1, (os.cpu_count() or 2) // 2)}")  # the database's: every cursor's
    try:
        with ThreadPoolExecutor(2) as pool:
            return dict(zip(loads, pool.map(on_cursor, loads.values()), strict=True))
    finally:
        con.execute(f"SET threads = {threads}")


def build_report(spec: ReportSpec, frames: dict[str, pl.LazyFrame], **options) -> ReportResult:
    """Run one report's pure function over loaded frames and collect its sections."""
    lazy = spec.build(**{name: frames[name] for name in spec.inputs}, **options)
    sections = dict(zip(lazy, pl.collect_all(list(lazy.values())), strict=True))
    return ReportResult(spec.name, sections, spec.notes(sections))


def run_report(
    db: str | Sequence[str], name: str, filters: Filters = Filters(), *, api: str = "runs", **options
) -> ReportResult:
    """Open the store read-only, load what report `name` needs for `api`, and compute it.

    The store is closed before the polars work starts, so a recording proxy waits only for the
    DuckDB queries.
    """
    spec = report_spec(name, api)
    if api != "runs":
        filters.check_responses()
    with open_sources(db) as con:
        prepare(con)
        if is_empty(con):
            return ReportResult(name, empty_store=True)
        frames = load_inputs(con, spec.inputs, filters, **options)
    return build_report(spec, frames, **options)
