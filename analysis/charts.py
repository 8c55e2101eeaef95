"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG (no scripts, no CDN)."""

from __future__ import annotations

import io

import matplotlib
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

# Figures are made with `Figure`, not pyplot: no display, no global figure list, and the page's
# imports 0.25 s of CPU lighter (pyplot pulls in every backend's machinery).
matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 9, "figure.dpi": 96})

# Where each known status sits in the transition diagram (x: life-cycle stage, y: lane).
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


def _figure(*grid: int, figsize: tuple[float, float], **options):
    """A new figure and its axes (`Figure.subplots`' arguments)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **options)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def latency_percentiles(latency: pl.DataFrame) -> str | None:
    """p50, p90, p99 and max of duration_ms per operation (the latency report's figures, log
    scale): a bar from p50 to p90, a line on to p99, a cross at the max. None without exchanges.

    Drawn from the report's percentiles, not from every exchange: the chart costs the same on a
    store of a million runs as on ten."""
    timed = latency.filter(pl.col("p50_ms").is_not_null() & (pl.col("max_ms") > 0)).sort(
        "operation", descending=True, nulls_last=False
    )
    if timed.is_empty():
        return None
    floor = 0.01  # log scale: a 0 ms figure sits at the axis' left edge
    names = [str(op) for op in timed["operation"]]
    rows = range(timed.height)
    p50, p90, p99, top = (
        [max(floor, v or floor) for v in timed[c].to_list()] for c in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
    )
    fig, ax = _figure(figsize=(8, 0.6 + 0.32 * timed.height))
    ax.hlines(list(rows), p90, p99, color="#4a6fa5", lw=1)
    ax.barh(list(rows), [b - a for a, b in zip(p50, p90, strict=True)], left=p50, height=0.5, color="#9fb6d9")
    ax.plot(p50, list(rows), "|", color="#223", markersize=12)
    ax.plot(top, list(rows), "x", color="#b03030", markersize=5)
    ax.set_yticks(list(rows), names)
    ax.set_xscale("log")
    # Plain "10", "100" tick labels: the default 10^n labels go through mathtext, the dearest
    # part of drawing this chart (~0.5 s).
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    ax.set_xlim(min(p50) / 1.5, max(top) * 1.5)  # barh leaves log limits to chance
    ax.set_xlabel("duration (ms, request start to response end, log scale)")
    ax.set_title("Latency per operation: p50 |, bar to p90, line to p99, x max")
    return _svg(fig)


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
    models = [
        f"{m} ({n:,} run{'' if n == 1 else 's'})"
        for m, n in zip(status_time["model"], status_time["runs"], strict=True)
    ]
    rows = list(range(len(models)))
    fig, ax = _figure(figsize=(8, 0.9 + 0.4 * len(models)))
    left = [0.0] * len(models)
    for status, colour in statuses:
        values = status_time[f"{status}_mean_ms"].to_list()
        ax.barh(rows, values, left=left, height=0.6, color=colour, label=status)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks(rows, models)
    ax.invert_yaxis()
    ax.set_xlabel("mean ms per run (estimated from the recorded stays)")
    ax.legend(fontsize=7, ncols=len(statuses), loc="upper center", bbox_to_anchor=(0.5, -0.25 - 0.1 / len(models)))
    ax.set_title("Where each model's time goes: queued, in_progress, requires_action")
    return _svg(fig)


def tokens_over_time(daily_usage: pl.DataFrame, prices: pl.DataFrame) -> str | None:
    """Total tokens (stacked bars) and cost in USD (lines) per model and UTC day."""
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
    fig, (top, bottom) = _figure(2, 1, figsize=(8, 5), sharex=True)
    base = [0] * len(days)
    # One stack order and colour per model whatever order DuckDB grouped the rows in.
    parts = daily.partition_by("model", as_dict=True)
    for model, frame in sorted(parts.items(), key=lambda item: (item[0][0] is None, str(item[0][0]))):
        by_day = dict(zip(frame["day"], frame["total_tokens"], strict=True))
        values = [by_day.get(d, 0) for d in days]
        top.bar(days, values, bottom=base, label=str(model[0]), width=0.8)
        base = [b + v for b, v in zip(base, values, strict=True)]
        priced = frame.filter(pl.col("cost_usd").is_not_null())
        if priced.height:
            bottom.plot(priced["day"].to_list(), priced["cost_usd"].to_list(), marker="o", label=str(model[0]))
    top.set_ylabel("total tokens / day")
    top.legend(fontsize=7)
    top.set_title("Tokens and cost per model (UTC days; models without a price have no cost line)")
    bottom.set_ylabel("cost (USD) / day")
    fig.autofmt_xdate()
    return _svg(fig)


def apis_per_model(by_api: pl.DataFrame) -> str | None:
    """Runs and responses per model side by side: total tokens and cost (grouped bars)."""
    if by_api.is_empty():
        return None
    models = [str(m) for m in by_api["model"]]
    rows = range(len(models))
    fig, axes = _figure(1, 2, figsize=(8, 0.8 + 0.5 * len(models)), sharey=True)
    for ax, (figure, label) in zip(axes, (("total_tokens", "total tokens"), ("cost_usd", "cost (USD)")), strict=True):
        for offset, (api, color) in ((-0.2, ("run", "#4a6fa5")), (0.2, ("response", "#d08c2e"))):
            values = [v or 0 for v in by_api[f"{api}_{figure}"].to_list()]
            ax.barh([r + offset for r in rows], values, height=0.4, color=color, label=f"{api}s")
        ax.set_xlabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(4))  # cost labels are long: few of them
    axes[0].set_yticks(list(rows), models)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7)
    fig.suptitle("Runs and responses per model (models without a price have no cost)")
    return _svg(fig)


def transition_diagram(transition_counts: pl.DataFrame, title: str = "Run status transitions (observed)") -> str | None:
    """Statuses as boxes, transitions as arrows labelled with their count (width grows with it)."""
    if transition_counts.is_empty():
        return None
    positions = dict(_POSITIONS)
    statuses = set(transition_counts["from_status"]) | set(transition_counts["to_status"])
    for i, status in enumerate(sorted(s for s in statuses if s not in positions)):
        positions[status] = (3.2, 1.4 - 0.6 * i)  # unknown statuses get their own column
    top = max(transition_counts["count"])
    fig, ax = _figure(figsize=(8, 4.5))
    # Drawn in a fixed order (the SVG is the same for the same counts, whatever the rows' order).
    for row in transition_counts.sort("from_status", "to_status", nulls_last=True).iter_rows(named=True):
        start, end = positions[row["from_status"]], positions[row["to_status"]]
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops={
                "arrowstyle": "-|>",
                "connectionstyle": "arc3,rad=0.15",
                "shrinkA": 28,
                "shrinkB": 28,
                "lw": 0.8 + 3.5 * row["count"] / top,
                "color": "#4a6fa5",
            },
        )
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.08)
        ax.text(*mid, f"{row['count']:,}", ha="center", fontsize=8, color="#223")
    for status in sorted(statuses, key=str):
        ax.text(
            *positions[status],
            status,
            ha="center",
            va="center",
            bbox={"boxstyle": "round", "fc": "#eef2f8", "ec": "#4a6fa5"},
        )
    xs, ys = zip(*(positions[s] for s in statuses), strict=True)
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.4, max(ys) + 0.4)
    ax.axis("off")
    ax.set_title(title)
    return _svg(fig)
