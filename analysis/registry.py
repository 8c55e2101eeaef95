"""The report catalogue and the one entry point that runs a report against a store file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from runtap.analysis import durations, latency, steps, summary, tokens, transitions
from runtap.analysis.costs import price_table
from runtap.analysis.filters import Filters
from runtap.analysis.loader import LOADERS, is_empty, prepare
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


def load_inputs(con, names: tuple[str, ...], filters: Filters, **options) -> dict[str, pl.LazyFrame]:
    """Load each named input once; `options` are the report's (only durations' loader takes one).

    "prices" are looked up for the models found in the other inputs (frames of a few rows).
    """
    frames = {name: LOADERS[name](con, filters, **options) for name in names if name != "prices"}
    if "prices" in names:
        with_model = [frame.select("model") for frame in frames.values() if "model" in frame.collect_schema()]
        frames["prices"] = price_table(pl.concat(with_model).unique().collect()["model"].to_list())
    return frames


def build_report(spec: ReportSpec, frames: dict[str, pl.LazyFrame], **options) -> ReportResult:
    """Run one report's pure function over loaded frames and collect its sections."""
    lazy = spec.build(**{name: frames[name] for name in spec.inputs}, **options)
    sections = dict(zip(lazy, pl.collect_all(list(lazy.values())), strict=True))
    return ReportResult(spec.name, sections, spec.notes(sections))


def run_report(db: str | Sequence[str], name: str, filters: Filters = Filters(), **options) -> ReportResult:
    """Open the store read-only, load what report `name` needs, and compute it.

    The store is closed before the polars work starts, so a recording proxy waits only for the
    DuckDB queries.
    """
    spec = REPORTS[name]
    with open_sources(db) as con:
        prepare(con)
        if is_empty(con):
            return ReportResult(name, empty_store=True)
        frames = load_inputs(con, spec.inputs, filters, **options)
    return build_report(spec, frames, **options)
