"""Render a computed report: rich tables, JSON (one array), CSV, or Markdown.

Nulls stay nulls: `null` in JSON, an empty CSV field, a dim "—" in tables and Markdown; never 0.
Table and Markdown show every section; JSON and CSV print one section (the main one unless
asked), so their output stays a single array / a single header.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from runtap.errors import RuntapError

if TYPE_CHECKING:  # frames are only passed through: the CLI imports this module without polars
    import polars as pl

FORMATS = ("table", "json", "csv", "markdown")
NULL_MARK = "—"


def cell(value, column: str) -> str | None:
    """A value as display text, None for a null; unit-aware precision for floats."""
    if value is None:
        return None
    if isinstance(value, float):
        if column.endswith("_usd") or "_usd_" in column:
            return f"{value:.6f}"
        if column.endswith("rate") or column == "share":
            return f"{value:.1%}"
        return f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def select_section(sections: dict[str, pl.DataFrame], name: str | None) -> pl.DataFrame:
    """The named section, or the first one; RuntapError naming the choices for an unknown name."""
    if name is None:
        return next(iter(sections.values()))
    if name not in sections:
        raise RuntapError(f"no section {name!r} in this report (choose from: {', '.join(sections)})")
    return sections[name]


def to_json(frame: pl.DataFrame) -> str:
    """One JSON array of row objects; datetimes as ISO 8601 strings."""
    return json.dumps(frame.to_dicts(), default=lambda v: v.isoformat(), indent=2)


def to_csv(frame: pl.DataFrame) -> str:
    """CSV with a header row; nulls as empty fields."""
    return frame.write_csv(null_value="", datetime_format="%Y-%m-%dT%H:%M:%S%.3f%z")


def to_markdown(sections: dict[str, pl.DataFrame]) -> str:
    """A `###` heading and a pipe table per section."""
    parts = []
    for name, frame in sections.items():
        lines = [f"### {name}", "", "| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
        for row in frame.iter_rows(named=True):
            texts = (cell(v, c) for c, v in row.items())
            lines.append("| " + " | ".join(NULL_MARK if t is None else t.replace("|", "\\|") for t in texts) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def rich_tables(sections: dict[str, pl.DataFrame], title: str) -> list[Table]:
    """One rich Table per section, numbers right-aligned, nulls as a dim dash."""
    tables = []
    for name, frame in sections.items():
        table = Table(title=f"{title}: {name}" if len(sections) > 1 else title, title_justify="left")
        for column, dtype in frame.schema.items():
            table.add_column(column, justify="right" if dtype.is_numeric() else "left")
        for row in frame.iter_rows(named=True):
            table.add_row(*(Text(NULL_MARK, style="dim") if (t := cell(v, c)) is None else t for c, v in row.items()))
        tables.append(table)
    return tables


def print_table(console: Console, sections: dict[str, pl.DataFrame], title: str, notes: list[str]) -> None:
    """Print every section as a table, then the notes."""
    for table in rich_tables(sections, title):
        console.print(table)
    for note in notes:
        console.print(f"note: {note}", style="yellow")


def render_report(result, fmt: str, section: str | None, source: str, *, out=None, err=None) -> None:
    """Print a computed report (`ReportResult`) in `fmt` to `out` (stdout), notes to `err` (stderr).

    JSON and CSV print one section on stdout with notes on stderr, so they pipe cleanly; an empty
    store says so (JSON still prints `[]`). Tables never wrap when stdout is not a terminal.
    """
    out, err = out or sys.stdout, err or sys.stderr
    if result.empty_store:
        print(f"no runs recorded in {source} yet", file=err if fmt in ("json", "csv") else out)
        if fmt == "json":
            print("[]", file=out)
        return
    if fmt in ("json", "csv"):
        frame = select_section(result.sections, section)
        print(to_json(frame) if fmt == "json" else to_csv(frame), end="\n" if fmt == "json" else "", file=out)
        for note in result.notes:
            print(f"note: {note}", file=err)
    elif fmt == "markdown":
        print(to_markdown(result.sections) + "".join(f"\n> note: {n}\n" for n in result.notes), file=out)
    else:
        print_table(console_for(out), result.sections, f"runtap report {result.name}", result.notes)


def console_for(stream=None) -> Console:
    """A rich Console on `stream` (stdout); a pipe or file has no width, so tables never wrap there."""
    stream = stream or sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 1000)
