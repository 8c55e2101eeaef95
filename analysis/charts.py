"""Charts for the HTML report, returned as inline SVG (no scripts, no CDN).

pygal draws the bar and line charts; drawsvg draws the transition diagram, whose boxes sit at
fixed places (`_POSITIONS`). Both are pure Python and light: importing them and drawing every
chart of a page costs ~0.2 s of CPU, where matplotlib cost ~1.5 s (1.0 s of it the import),
a third of what the page may take on a million runs (issue 16).
"""

from __future__ import annotations

import math
import sys

import drawsvg
import polars as pl
import pygal
from pygal.etree import etree
from pygal.style import Style

# pygal appends a legacy import hook (find_module only, for its map plugins, which runtap does not
# use) to sys.meta_path; whatever asks every hook for find_spec fails on it (pytest's importlib
# import mode does). Take it back out.
sys.meta_path[:] = [hook for hook in sys.meta_path if not isinstance(hook, pygal.PluginImportFixer)]

# Where each known status sits in the transition diagram (x: life-cycle stage, y: lane, up).
_POSITIONS = {
    "queued": (0.0, 0.5),
    "in_progress": (1.0, 0.5),
    "requires_action": (1.0, 1.4),
    "cancelling": (1.0, -0.5),
    "completed": (2.2, 1.4),
    "incomplete": (2.2, 0.8),
    "failed": (2.2, 0.2),
    "cancelled": (2.2, -0.4),
    "expired": (2.2, -1.0),
}
_BLUE, _LIGHT, _INK = "#4a6fa5", "#eef2f8", "#223"
_FONT = "system-ui, sans-serif"
_STYLE = {
    "font_family": _FONT,
    "background": "white",
    "plot_background": "white",
    "foreground": _INK,
    "foreground_strong": _INK,
    "foreground_subtle": "#8a94a6",
    "title_font_size": 14,
    "label_font_size": 11,
    "major_label_font_size": 11,
    "legend_font_size": 11,
    "value_font_size": 10,
    "guide_stroke_color": "#e3e6ee",
    "major_guide_stroke_color": "#c9cedb",
    "guide_stroke_dasharray": "none",
    "major_guide_stroke_dasharray": "none",
}
# Models and series: the same colour cycle in every chart.
_CYCLE = ("#4a6fa5", "#d08c2e", "#5b9a5b", "#b03030", "#8e6bb8", "#7a7a7a", "#2e9fa8", "#c46a9a")


def _chart(kind, *, height: int, colors=_CYCLE, **config):
    """A pygal chart of `kind` with the page's style: 800 px wide, no tooltips script, at most
    7 labelled values on its value axis (pygal's default, 16, crowds long cost figures)."""
    return kind(
        width=800,
        height=height,
        style=Style(colors=tuple(colors), **_STYLE),
        js=[],
        disable_xml_declaration=True,
        explicit_size=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=6,
        truncate_legend=-1,
        truncate_label=-1,
        max_scale=7,
        **config,
    )


def _svg(chart) -> str:
    """The chart's SVG without pygal's inline tooltip configuration (the page loads no pygal script,
    so it would be dead weight, one per chart)."""
    tree = chart.render_tree()
    for defs in tree.iter("{http://www.w3.org/2000/svg}defs"):
        for script in [e for e in defs if e.tag.endswith("script")]:
            defs.remove(script)
    return etree.tostring(tree, encoding="unicode")


def _top_down(chart, labels: list[str], series: list[tuple[str, list]]) -> str:
    """A horizontal chart's SVG with its first label on top (pygal draws the first at the bottom)."""
    chart.x_labels = labels[::-1]
    for name, values in series:
        chart.add(name, values[::-1])
    return _svg(chart)


def _usd(value) -> str:
    """A cost axis' label: whole dollars from 100 up, two significant digits below (0.0024)."""
    return "" if value is None else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2g}"


def _thousands(value) -> str:
    return "" if value is None else f"{value:,.0f}"


def latency_percentiles(latency: pl.DataFrame) -> str | None:
    """p50, p90, p99 and max of duration_ms per operation (the latency report's figures, log
    scale, one group of bars per operation). None without exchanges.

    Drawn from the report's percentiles, not from every exchange: the chart costs the same on a
    store of a million runs as on ten."""
    timed = latency.filter(pl.col("p50_ms").is_not_null() & (pl.col("max_ms") > 0)).sort("operation", nulls_last=True)
    if timed.is_empty():
        return None
    values = [v for c in ("p50_ms", "max_ms") for v in timed[c].to_list() if v and v > 0]
    # The log axis' labels: the powers of ten around every bar (pygal's own leave most unlabelled).
    decades = range(math.floor(math.log10(min(values))), math.ceil(math.log10(max(values))) + 1)
    chart = _chart(
        pygal.HorizontalBar,
        height=140 + 34 * timed.height,
        colors=("#223", "#4a6fa5", "#9fb6d9", "#b03030"),
        logarithmic=True,
        title="Latency per operation (ms, request start to response end, log scale)",
        value_formatter=lambda v: f"{v:g}",
        y_labels=[10.0**k for k in decades],  # a horizontal chart: its y labels are the values
        zero=10.0**decades.start,  # bars start at the axis (else at the smallest value: no bar)
    )
    # A log axis has no place for 0 ms: such a bar is left out.
    series = [
        (label, [v if v and v > 0 else None for v in timed[column].to_list()])
        for column, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("max_ms", "max"))
    ]
    return _top_down(chart, [str(op) for op in timed["operation"]], series)


# Where a run's time goes, in the order a run passes through (stacked left to right).
STACKED_STATUSES = (
    ("queued", "#d9a400"),
    ("in_progress", "#3b7dd8"),
    ("requires_action", "#b04fc4"),
    ("cancelling", "#e07a2e"),
)


def status_time_per_model(status_time: pl.DataFrame) -> str | None:
    """Per model, the mean time per run in each status (stacked bars; runs observed from creation
    to their end); None when no run was. A status no run of any model was in is left out."""
    if status_time.is_empty():
        return None
    statuses = [(s, c) for s, c in STACKED_STATUSES if (status_time[f"{s}_mean_ms"] > 0).any()]
    chart = _chart(
        pygal.HorizontalStackedBar,
        height=150 + 45 * status_time.height,
        colors=[c for _, c in statuses],
        title="Where each model's time goes: mean ms per run in each status (estimated from the stays)",
        value_formatter=_thousands,
    )
    models = [
        f"{m} ({n:,} run{'' if n == 1 else 's'})"
        for m, n in zip(status_time["model"], status_time["runs"], strict=True)
    ]
    return _top_down(chart, models, [(s, status_time[f"{s}_mean_ms"].to_list()) for s, _ in statuses])


def tokens_over_time(daily_usage: pl.DataFrame, prices: pl.DataFrame) -> str | None:
    """Total tokens (stacked bars) and cost in USD (lines) per model and UTC day: two charts."""
    daily = (
        daily_usage.filter(pl.col("total_tokens").is_not_null())
        .join(prices, on="model", how="left", nulls_equal=True)
        .with_columns(
            cost_usd=pl.col("prompt_tokens") * pl.col("input_usd_per_token")
            + pl.col("completion_tokens") * pl.col("output_usd_per_token")
        )
        .sort("day")
    )
    if daily.is_empty():
        return None
    daily = daily.with_columns(pl.col("day").dt.strftime("%Y-%m-%d"))  # categorical axis: one slot per day
    days = daily["day"].unique().sort().to_list()
    common = {
        "height": 320,
        "x_label_rotation": 30 if len(days) > 8 else 0,
        "x_labels_major_count": 16,  # many days: 16 of them labelled
        "show_minor_x_labels": False,
    }
    tokens = _chart(
        pygal.StackedBar,
        title="Total tokens per model and UTC day",
        value_formatter=_thousands,
        **common,
    )
    cost = _chart(
        pygal.Line,
        title="Cost (USD) per model and UTC day (models without a price have no line)",
        value_formatter=_usd,
        **common,
    )
    tokens.x_labels = cost.x_labels = days
    # One stack order and colour per model whatever order DuckDB grouped the rows in.
    parts = daily.partition_by("model", as_dict=True)
    for model, frame in sorted(parts.items(), key=lambda item: (item[0][0] is None, str(item[0][0]))):
        by_day = dict(zip(frame["day"], frame["total_tokens"], strict=True))
        tokens.add(str(model[0]), [by_day.get(d, 0) for d in days])
        priced = dict(zip(frame["day"], frame["cost_usd"], strict=True))
        # A model without a price keeps its colour slot with an empty line.
        cost.add(str(model[0]), [priced.get(d) for d in days])
    return _svg(tokens) + _svg(cost)


def apis_per_model(by_api: pl.DataFrame) -> str | None:
    """Runs and responses per model side by side: total tokens and cost (grouped bars, two charts)."""
    if by_api.is_empty():
        return None
    svgs = []
    for figure, title, formatter in (
        ("total_tokens", "Runs and responses per model: total tokens", _thousands),
        (
            "cost_usd",
            "Runs and responses per model: cost (USD; models without a price have none)",
            _usd,
        ),
    ):
        chart = _chart(
            pygal.HorizontalBar,
            height=140 + 50 * by_api.height,
            colors=("#4a6fa5", "#d08c2e"),
            title=title,
            value_formatter=formatter,
        )
        series = [(f"{api}s", [v or 0 for v in by_api[f"{api}_{figure}"].to_list()]) for api in ("run", "response")]
        svgs.append(_top_down(chart, [str(m) for m in by_api["model"]], series))
    return "".join(svgs)


def transition_diagram(transition_counts: pl.DataFrame, title: str = "Run status transitions (observed)") -> str | None:
    """Statuses as boxes, transitions as arrows labelled with their count (width grows with it)."""
    if transition_counts.is_empty():
        return None
    positions = dict(_POSITIONS)
    statuses = set(transition_counts["from_status"]) | set(transition_counts["to_status"])
    for i, status in enumerate(sorted(s for s in statuses if s not in positions)):
        positions[status] = (3.2, 1.4 - 0.6 * i)  # unknown statuses get their own column
    xs, ys = zip(*(positions[s] for s in statuses), strict=True)
    width, margin, top_space = 800.0, 70.0, 40.0
    unit = (width - 2 * margin) / ((max(xs) - min(xs)) or 1.0)
    height = (max(ys) - min(ys)) * unit * 0.6 + 2 * margin + top_space

    def at(status) -> tuple[float, float]:  # diagram units to pixels (y grows downwards)
        x, y = positions[status]
        return margin + (x - min(xs)) * unit, top_space + margin + (max(ys) - y) * unit * 0.6

    def box_width(status) -> float:
        return 7.2 * len(str(status)) + 18

    def to_edge(status, ux: float, uy: float) -> float:
        """From a box's centre to its edge along (ux, uy), and a little gap."""
        across = box_width(status) / 2 / abs(ux) if ux else math.inf
        return min(across, 12 / abs(uy) if uy else math.inf) + 5

    drawing = drawsvg.Drawing(width, height, font_family=_FONT, font_size=12)
    drawing.append(drawsvg.Text(title, 14, width / 2, 22, text_anchor="middle", fill=_INK))
    # Arrowheads in pixels, not in multiples of each arrow's width.
    head = drawsvg.Marker(0, -2, 4, 2, scale=2.5, orient="auto", markerUnits="userSpaceOnUse")
    head.append(drawsvg.Lines(0, -2, 4, 0, 0, 2, close=True, fill=_BLUE))
    drawing.append(head)
    most = max(transition_counts["count"])
    # Drawn in a fixed order (the SVG is the same for the same counts, whatever the rows' order).
    for row in transition_counts.sort("from_status", "to_status", nulls_last=True).iter_rows(named=True):
        (x1, y1), (x2, y2) = at(row["from_status"]), at(row["to_status"])
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        # From box edge to box edge; the arrowhead (10 px) goes on beyond the line's end.
        start, end = to_edge(row["from_status"], ux, uy), to_edge(row["to_status"], ux, uy) + 10
        sx, sy, ex, ey = x1 + ux * start, y1 + uy * start, x2 - ux * end, y2 - uy * end
        # Bend to the left of the direction of travel: A -> B and B -> A take different arcs.
        cx, cy = (sx + ex) / 2 + uy * 0.15 * length, (sy + ey) / 2 - ux * 0.15 * length
        stroke = 0.8 + 3.5 * row["count"] / most
        path = drawsvg.Path(stroke=_BLUE, stroke_width=stroke, fill="none", marker_end=head)
        drawing.append(path.M(sx, sy).Q(cx, cy, ex, ey))
        label_x, label_y = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4  # the curve's midpoint
        drawing.append(drawsvg.Text(f"{row['count']:,}", 11, label_x, label_y - 4, text_anchor="middle", fill=_INK))
    for status in sorted(statuses, key=str):
        x, y = at(status)
        box = box_width(status)
        drawing.append(drawsvg.Rectangle(x - box / 2, y - 12, box, 24, rx=8, fill=_LIGHT, stroke=_BLUE))
        drawing.append(drawsvg.Text(str(status), 12, x, y + 4, text_anchor="middle", fill=_INK))
    return drawing.as_svg().split("?>", 1)[-1].strip()
