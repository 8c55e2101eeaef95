"""Waterfalls of timeline bars (analysis/timeline.py's frame): in the terminal with rich, and as
HTML for the report page. Both draw the same rows, in the same order, on each run's own axis.

Status stays are solid bars coloured by status; a terminal status, which a run never leaves, is
a diamond where it began; a stay still open when the recording ended runs to the axis' end and
ends in an arrow. Tool calls and requests are thinner bars in their own colours.
"""

from __future__ import annotations

import html
import sys

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runtap.analysis.formats import NULL_MARK, cell, console_for, render_report

WIDTH = 60  # characters of the terminal time axis
STATUS_COLOURS = {
    "queued": "#d9a400",
    "in_progress": "#3b7dd8",
    "requires_action": "#b04fc4",
    "cancelling": "#e07a2e",
    "completed": "#2e9e4f",
    "incomplete": "#8a8f2e",
    "failed": "#d1363b",
    "cancelled": "#777777",
    "expired": "#9b5b2a",
}
LANE_COLOURS = {"tool_call": "#c2185b", "request": "#5f7f8f"}
OTHER_COLOUR = "#999999"
TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")


def colour(row: dict) -> str:
    """The colour of a bar: its status for a stay, its lane otherwise."""
    if row["lane"] == "status":
        return STATUS_COLOURS.get(row["name"], OTHER_COLOUR)
    return LANE_COLOURS.get(row["lane"], OTHER_COLOUR)


def label(row: dict) -> str:
    """What a bar is, in a few words: `status queued`, `tool get_weather`, `GET getRun 200`."""
    if row["lane"] == "status":
        return f"status {row['name']}"
    if row["lane"] == "tool_call":
        return f"tool {row['name'] or '?'}"
    code = "" if row["status_code"] is None else f" {row['status_code']}"
    return f"{row['method'] or ''} {row['name'] or '?'}{' stream' if row['streamed'] else ''}{code}".strip()


def span(frame: pl.DataFrame) -> float:
    """The length of a run's axis in ms: to its latest start or end (at least 1 ms)."""
    ends = [v for v in (frame["start_ms"].max(), frame["end_ms"].max()) if v is not None]
    return max([1.0, *ends])


def shape(row: dict) -> str:
    """How a bar is drawn: `bar` (start to end), `open` (to the axis' end), `mark` (terminal)."""
    if row["end_ms"] is not None:
        return "bar"
    return "mark" if row["lane"] == "status" and row["name"] in TERMINAL else "open"


def _bar_text(row: dict, total: float) -> Text:
    scale = (WIDTH - 1) / total
    start = min(WIDTH - 1, int(row["start_ms"] * scale))
    kind = shape(row)
    glyph = "█" if row["lane"] == "status" else ("▓" if row["lane"] == "tool_call" else "━")
    text = Text(" " * start)
    if kind == "mark":
        text.append("◆", style=colour(row))
    else:
        end = WIDTH if kind == "open" else max(start + 1, round(row["end_ms"] * scale))
        text.append(glyph * (end - start - (kind == "open")), style=colour(row))
        if kind == "open":
            text.append("▸", style=colour(row))
    text.pad_right(WIDTH - len(text))
    return text


def _axis(total: float) -> str:
    right = f"{total:,.0f} ms"
    return "0 ms" + right.rjust(WIDTH - 4)


def _run_title(frame: pl.DataFrame, total: float) -> str:
    first = frame.row(0, named=True)
    stays = frame.filter(pl.col("lane") == "status")
    end_to_end = stays["duration_ms"].sum() if stays.height else None
    parts = [first["run_id"], f"thread {first['thread_id'] or NULL_MARK}"]
    if stays.height:
        parts.append(f"last status {stays['name'][-1]}")
        parts.append(f"stays {end_to_end:,.1f} ms")
    parts.append(f"axis {total:,.0f} ms")
    return " · ".join(parts)


def waterfall_tables(frame: pl.DataFrame) -> list[Table]:
    """One rich Table per run: what, start and duration (ms), uncertainty, and the bar."""
    tables = []
    for run in frame.partition_by("run_id", maintain_order=True):
        total = span(run)
        table = Table(title=_run_title(run, total), title_justify="left")
        table.add_column("what")
        table.add_column("start ms", justify="right")
        table.add_column("duration ms", justify="right")
        table.add_column("± ms", justify="right")
        table.add_column(_axis(total), no_wrap=True)
        for row in run.iter_rows(named=True):
            duration = cell(row["duration_ms"], "duration_ms")
            kind = shape(row)
            table.add_row(
                label(row),
                cell(row["start_ms"], "start_ms"),
                duration if duration is not None else Text("open" if kind == "open" else NULL_MARK, style="dim"),
                Text(NULL_MARK, style="dim") if row["uncertainty_ms"] is None else cell(row["uncertainty_ms"], "u_ms"),
                _bar_text(row, total),
            )
        tables.append(table)
    return tables


def render_timeline(result, fmt: str, source: str, *, out=None, err=None) -> None:
    """Print a timeline (`ReportResult` of analysis.timeline): `table` draws the waterfalls;
    json, csv and markdown print the bars as data (render_report)."""
    out = out or sys.stdout
    if fmt != "table" or result.empty_store:
        render_report(result, fmt, None, source, out=out, err=err)
        return
    console: Console = console_for(out)
    for table in waterfall_tables(result.main):
        console.print(table)


def _html_bar(row: dict, total: float) -> str:
    left = 100.0 * row["start_ms"] / total
    kind = shape(row)
    if kind == "mark":
        width, css = 0.0, "mark"
    else:
        end = total if kind == "open" else row["end_ms"]
        width, css = max(0.0, 100.0 * (end - row["start_ms"]) / total), kind
    duration = NULL_MARK if row["duration_ms"] is None else f"{row['duration_ms']:,.1f} ms"
    tip = f"{label(row)}: start {row['start_ms']:,.1f} ms, duration {duration}"
    if row["uncertainty_ms"] is not None:
        tip += f" ± {row['uncertainty_ms']:,.1f} ms"
    return (
        f'<div class="wf-row wf-{row["lane"]}"><span class="wf-label">{html.escape(label(row))}</span>'
        f'<span class="wf-track"><span class="wf-bar wf-{css}" title="{html.escape(tip)}" '
        f'style="left:{left:.3f}%;width:{width:.3f}%;background:{colour(row)}"></span></span>'
        f'<span class="wf-num">{html.escape(duration)}</span></div>'
    )


def html_waterfalls(frame: pl.DataFrame, runs: pl.DataFrame) -> str:
    """One section per run of `runs` (run_id, model, status, end_to_end_ms; in that order), with
    its bars from `frame`; `data-run`/`data-thread` attributes for the page's search box."""
    by_run = {key[0]: part for key, part in frame.partition_by("run_id", as_dict=True).items()}
    sections = []
    for info in runs.iter_rows(named=True):
        bars = by_run.get(info["run_id"])
        if bars is None:
            continue
        total = span(bars)
        thread = bars["thread_id"][0] or ""
        e2e = NULL_MARK if info["end_to_end_ms"] is None else f"{info['end_to_end_ms']:,.1f} ms"
        head = (
            f"<b>{html.escape(info['run_id'])}</b> &middot; thread {html.escape(thread or NULL_MARK)} &middot; "
            f"{html.escape(str(info['model']))} &middot; {html.escape(str(info['status']))} &middot; "
            f"end to end {html.escape(e2e)} &middot; axis {total:,.0f} ms"
        )
        rows = "".join(_html_bar(row, total) for row in bars.iter_rows(named=True))
        sections.append(
            f'<section class="wf" data-run="{html.escape(info["run_id"])}" data-thread="{html.escape(thread)}">'
            f'<div class="wf-head">{head}</div>{rows}</section>'
        )
    return "".join(sections)


WATERFALL_STYLE = """
.wf{border:1px solid #dde;border-radius:4px;margin:.6em 0;padding:.3em .6em}
.wf-head{font-size:12px;margin-bottom:.3em}
.wf-row{display:flex;align-items:center;height:14px;font-size:11px}
.wf-label{flex:0 0 260px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.wf-track{flex:1;position:relative;height:100%;background:#f6f7fa}
.wf-bar{position:absolute;top:2px;bottom:2px;min-width:2px}
.wf-request .wf-bar,.wf-tool_call .wf-bar{top:4px;bottom:4px}
.wf-open{border-right:3px solid #000}
.wf-mark{width:8px!important;margin-left:-4px;transform:rotate(45deg) scale(.7)}
.wf-num{flex:0 0 90px;text-align:right;font-variant-numeric:tabular-nums}
#wf-search{width:24em;padding:3px}
"""

# Filters the waterfalls by run or thread id as the user types (the page stays one file).
WATERFALL_SCRIPT = """
document.getElementById('wf-search').addEventListener('input', function (e) {
  var q = e.target.value.trim().toLowerCase(), shown = 0;
  document.querySelectorAll('section.wf').forEach(function (s) {
    var hit = !q || s.dataset.run.toLowerCase().includes(q) || s.dataset.thread.toLowerCase().includes(q);
    s.style.display = hit ? '' : 'none'; shown += hit;
  });
  document.getElementById('wf-count').textContent = shown + ' shown';
});
"""
