"""`runtap report html`: every report and its charts in one self-contained HTML file."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import importlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import polars as pl

from runtap.analysis import charts
from runtap.analysis.facts import share_run_facts, share_stay_totals
from runtap.analysis.filters import Filters
from runtap.analysis.formats import NULL_MARK, cell
from runtap.analysis.loader import has_responses, is_empty, prepare
from runtap.analysis.registry import API_REPORTS, REPORTS, ReportSpec, build_report, load_each, load_inputs
from runtap.analysis.timeline import timeline
from runtap.analysis.timeline_loader import load_bars, load_slowest, load_status_time
from runtap.analysis.tokens import per_model_by_api
from runtap.analysis.waterfall import WATERFALL_SCRIPT, WATERFALL_STYLE, html_waterfalls
from runtap.store.multi import open_sources

# What the charts draw, besides the reports' own inputs; with Responses traffic, also these.
# Charts summarise (percentiles, counts, sums per model and day): none reads every exchange or run.
CHART_INPUTS = ("daily_usage", "transition_counts")
RESPONSE_INPUTS = (
    "response_transition_counts",
    "usage_by_model",
    "response_usage_by_model",
    "prices",
)

_STYLE = (
    """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccd;padding:3px 8px}th{background:#eef2f8;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.null{color:#999}
.wide{overflow-x:auto}.note{color:#8a5a00}figure{margin:1em 0}svg{max-width:100%;height:auto}
"""
    + WATERFALL_STYLE
)
# Every per-run fact the page's inputs read: the runs are reduced to these once (analysis/facts.py).
# (Not assistant_id: only `report durations --by-assistant` reads it; each fact costs ~0.3 s of CPU
# per 10M snapshots.)
PAGE_FACTS = (
    "model",
    "status",
    "created_at",
    "started_at",
    "ended_at",
    "first_observed_at",
    "last_error_code",
    "incomplete_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "with_usage",
)
# How many runs the page draws a waterfall for (the slowest); `runtap report timeline` draws any.
WATERFALL_RUNS = 50


@dataclass(frozen=True)
class Timelines:
    """What the page's timeline part shows: per model, the mean time per run in each status
    (`load_status_time`); the slowest runs (`load_slowest`) and their bars; how many runs there are."""

    status_time: pl.DataFrame
    slowest: pl.DataFrame
    bars: pl.DataFrame
    total_runs: int


def load_timelines(con, filters: Filters, limit: int = WATERFALL_RUNS) -> Timelines:
    """Load the page's timelines from an open, prepared store."""
    slowest, total = load_slowest(con, filters, limit)
    bars = load_bars(con, "SELECT unnest($ids) AS run_id", {"ids": slowest["run_id"].to_list()})
    return Timelines(load_status_time(con, filters), slowest, timeline(bars.lazy())["timeline"].collect(), total)


def _timeline_part(timelines: Timelines) -> list[str]:
    shown = timelines.slowest.height
    what = "the run" if timelines.total_runs == 1 else f"the {shown:,} slowest of {timelines.total_runs:,} runs"
    if shown == timelines.total_runs and shown > 1:
        what = f"all {shown:,} runs, slowest first"
    return [
        '<h2 id="time-per-status">Where the time goes</h2>',
        (f"<figure>{svg}</figure>" if (svg := charts.status_time_per_model(timelines.status_time)) else ""),
        '<h2 id="timelines">Run timelines</h2>',
        f"<p>Waterfalls of {what} (end to end; runs not observed from creation to their end come last): "
        "status stays, tool calls (requires_action to submit) and requests on each run's own axis. "
        "<code>runtap report timeline --run ID</code> draws any run.</p>",
        '<p><input id="wf-search" type="search" placeholder="filter by run or thread id"> '
        f'<span id="wf-count">{shown:,} shown</span></p>',
        html_waterfalls(timelines.bars, timelines.slowest),
        f"<script>{WATERFALL_SCRIPT}</script>",
    ]


def _table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    numeric = {c for c, t in frame.schema.items() if t.is_numeric()}
    rows = []
    for row in frame.iter_rows(named=True):
        cells = []
        for column, value in row.items():
            text = cell(value, column)
            css = "null" if text is None else ("num" if column in numeric else "")
            cells.append(f'<td class="{css}">{html.escape(NULL_MARK if text is None else text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def report_specs(with_responses: bool) -> dict[str, ReportSpec]:
    """The reports the page shows: with Responses traffic, both APIs side by side where a report
    covers both (`--api all`); otherwise the runs reports."""
    return {name: API_REPORTS.get((name, "all"), spec) if with_responses else spec for name, spec in REPORTS.items()}


def page_inputs(specs: dict[str, ReportSpec], with_responses: bool) -> tuple[str, ...]:
    """The inputs the page loads, each once: the reports' (`specs`) and the charts'."""
    extra = RESPONSE_INPUTS if with_responses else ()
    return tuple(dict.fromkeys([*(n for spec in specs.values() for n in spec.inputs), *CHART_INPUTS, *extra]))


def render_html(
    frames: dict[str, pl.LazyFrame],
    filters: Filters,
    source: str,
    specs: dict[str, ReportSpec] = REPORTS,
    timelines: Timelines | None = None,
) -> str:
    """The whole page: charts first (with Responses traffic: runs and responses per model, next to
    each other), then where the time goes and the run timelines, then every report's sections
    and notes."""
    collected = {name: frame.collect() for name, frame in frames.items()}
    results = {name: build_report(spec, frames) for name, spec in specs.items()}
    with_responses = "response_transition_counts" in collected
    by_api = None
    if with_responses:
        by_api = per_model_by_api(frames["usage_by_model"], frames["response_usage_by_model"], frames["prices"])
        by_api = by_api["by_api"].collect()
    figures = [
        charts.latency_percentiles(results["latency"].main),
        charts.tokens_over_time(collected["daily_usage"], collected["prices"]),
        charts.transition_diagram(collected["transition_counts"]),
    ]
    if with_responses:
        responses = collected["response_transition_counts"]
        figures.append(charts.transition_diagram(responses, "Response status transitions (observed)"))
    body = [
        f"<h1>runtap report</h1><p>Store: {html.escape(source)} &middot; generated "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} &middot; filters: "
        f"{html.escape(_describe(filters))}</p>",
    ]
    if by_api is not None:
        comparison = charts.apis_per_model(by_api)
        body += ["<h2>runs and responses per model</h2>", f"<figure>{comparison}</figure>" if comparison else ""]
        body.append(_table(by_api))
    body.append("<h2>Charts</h2>")
    body += [f"<figure>{svg}</figure>" for svg in figures if svg]
    if timelines is not None:
        body += _timeline_part(timelines)
    for name, result in results.items():
        body.append(f"<h2>{html.escape(name)}</h2>")
        for section, frame in result.sections.items():
            if len(result.sections) > 1:
                body.append(f"<h3>{html.escape(section)}</h3>")
            body.append(_table(frame))
        body += [f'<p class="note">note: {html.escape(n)}</p>' for n in result.notes]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>runtap report</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _describe(filters: Filters) -> str:
    parts = [f"{k}={v}" for k, v in vars(filters).items() if v]
    return ", ".join(parts) or "none"


def share_reductions(con, filters: Filters) -> None:
    """Reduce the runs to their facts (PAGE_FACTS) and stays once on the page's connection
    (analysis/facts.py), for every input to read instead of one reduction each: over a store
    that does not keep the runs' state (several stores read as one, an older runtap's)."""
    # The shared tables need no row order (every input aggregates, or orders what it reads):
    # without one, DuckDB fills them from every thread (the runs' facts from 10M snapshots:
    # 3.3 s wall instead of 5.0 s, the same CPU).
    con.execute("SET preserve_insertion_order = false")
    share_run_facts(con, PAGE_FACTS, filters)
    share_stay_totals(con, filters)


def _import_quietly(name: str) -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module(name)


def write_html(db: str | Sequence[str], out: str, filters: Filters = Filters()) -> bool:
    """Write the HTML report for `db` to `out`; False (nothing written) when the store is empty."""
    # genai-prices is needed only once the inputs are loaded (analysis/costs.py); importing it
    # meanwhile overlaps its ~0.3 s with DuckDB's queries, which release the GIL. (Should it fail,
    # the import where a price is looked up says why.)
    threading.Thread(target=_import_quietly, args=("genai_prices",)).start()
    with open_sources(db) as con:
        prepare(con)
        if is_empty(con):
            return False
        # --assistant and --thread select runs: then the page is about runs only.
        with_responses = not (filters.assistants or filters.threads) and has_responses(con)
        specs = report_specs(with_responses)
        names = page_inputs(specs, with_responses)
        share_reductions(con, filters)
        # The timelines beside the inputs (`load_each`: at once on a store that keeps the runs' state).
        loaded = load_each(
            con,
            {
                "inputs": partial(load_inputs, names=names, filters=filters),
                "timelines": partial(load_timelines, filters=filters),
            },
        )
        frames, timelines = loaded["inputs"], loaded["timelines"]
    page = render_html(frames, filters, db if isinstance(db, str) else ", ".join(db), specs, timelines)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(page)
    return True
