"""Terminal output of `runtap ingest`: a progress bar with flows/s, and the end-of-run summary."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from runtap.ingest.pipeline import FileReport, IngestReport
from runtap.ingest.pipeline import Progress as ProgressCallback


@contextlib.contextmanager
def progress_bar(console: Console) -> Iterator[ProgressCallback]:
    """Yield an `ingest_files` progress callback drawing one bar per file (bytes, flows, flows/s).

    Drawn only when `console` is a terminal: piped output and CI logs get the summary alone.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[flows]:,} flows, {task.fields[rate]:,.0f} flows/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=False) as bar:
        tasks: dict[str, tuple[int, float]] = {}

        def update(report: FileReport) -> None:
            if report.path not in tasks:
                tasks[report.path] = (
                    bar.add_task(os.path.basename(report.path), total=report.size, flows=0, rate=0.0),
                    time.perf_counter(),
                )
            task, started = tasks[report.path]
            rate = report.flows_read / max(time.perf_counter() - started, 1e-6)
            bar.update(task, completed=report.bytes_read, flows=report.flows_read, rate=rate)

        yield update


def summary_lines(report: IngestReport) -> list[str]:
    """One line per file (with where a damaged file stopped), then the totals."""
    lines = []
    for f in report.files:
        lines.append(f"{f.path} ({f.format}): {_counts(f.flows_read, f.stored, f.skipped, f.duplicates, f.errors)}")
        if f.stopped:
            lines.append(f"  damaged: stopped at {f.stopped}; the flows before it were ingested")
        if f.first_bad_entry:
            lines.append(f"  skipped unreadable entries, the first: {f.first_bad_entry}")
    rate = report.total("flows_read") / max(report.seconds, 1e-6)
    lines.append(
        f"total: {_counts(*(report.total(n) for n in ('flows_read', 'stored', 'skipped', 'duplicates', 'errors')))}"
        f" in {report.seconds:.1f}s ({rate:,.0f} flows/s) into {report.db}"
    )
    return lines


def _counts(read: int, stored: int, skipped: int, duplicates: int, errors: int) -> str:
    return (
        f"{read:,} flows read, {stored:,} stored, {skipped:,} skipped (not runs or Responses traffic), "
        f"{duplicates:,} duplicates, {errors:,} errors"
    )
