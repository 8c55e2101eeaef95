"""Ingest capture files into a runtap store through exactly the live addon's code path.

For every HTTP flow read from a file: `match_recorded` (other traffic is counted and skipped), then
`captured_from_flow` -> `to_exchange` -> `normalize` -> `StoreWriter.put`, in the worker process
the live addon records through (addon/worker.py). Flow-file flows are routed on their state dict
(`FlowState`); the flow object is built (`Flow.from_state`, as FlowReader does) only for flows
that are stored, by the worker, or here when the worker has a backlog, so both cores stay busy.
HAR entries arrive as flow objects and are copied here. The exchange id is the flow id, so a flow
already in the store (an earlier ingest of the same file, or the same flow in two files) is
counted as a duplicate and not stored again.

Each file that stores anything gets one `captures` row (mode "ingest", source = the file).

Memory stays flat on large files: flows are streamed from the file one at a time, at most
`MAX_PENDING` flows wait for the worker, and its writer holds at most `MAX_QUEUED_ROWS` rows (the
worker is lossless: both wait for room instead of dropping).
Every exchange's rows are committed in one transaction, so an interrupted or failed ingest never
leaves half an exchange behind, and running it again stores exactly what is missing.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mitmproxy import http

from runtap.addon.flows import captured_from_flow
from runtap.addon.routes import match_recorded
from runtap.addon.worker import Worker
from runtap.errors import RuntapError
from runtap.ingest.seen import SeenIds
from runtap.ingest.sources import FlowSource, FlowState, detect_format
from runtap.store.version import tool_version

log = logging.getLogger("runtap.ingest")

# Ingest is not on an event loop: larger batches mean fewer connect/commit/close cycles.
BATCH_ROWS = 2_000
MAX_QUEUED_ROWS = 10_000
MAX_PENDING = 800  # flows waiting for the worker (flow states are ~3 KB each)
PROGRESS_EVERY = 250  # flows between progress callbacks


@dataclass
class FileReport:
    """What one ingested file gave."""

    path: str
    format: str
    size: int
    flows_read: int = 0  # flows (HAR entries) read from the file
    stored: int = 0  # runs exchanges written to the store
    skipped: int = 0  # not recorded traffic (other routes, non-HTTP flows)
    duplicates: int = 0  # already in the store (or earlier in this ingest)
    errors: int = 0  # flows or HAR entries that could not be read or converted
    stopped: str | None = None  # where and why reading stopped before the end of the file
    first_bad_entry: str | None = None  # the first HAR entry that could not be read, and why
    bytes_read: int = 0
    capture_id: str | None = None


@dataclass
class IngestReport:
    """The outcome of one `ingest_files` call."""

    db: str
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0
    rows_written: int = 0
    rows_lost: int = 0  # rows the writer could not write (store locked or unwritable until close)

    def total(self, name: str) -> int:
        """Sum one counter (`flows_read`, `stored`, `skipped`, `duplicates`, `errors`) over files."""
        return sum(getattr(f, name) for f in self.files)


Progress = Callable[[FileReport], None]


def ingest_files(
    paths: Sequence[str], db: str, *, redact_extra: Iterable[str] = (), progress: Progress | None = None
) -> IngestReport:
    """Ingest mitmproxy flow files and HAR files into the store at `db`; return the counts.

    Every file is checked first (missing, empty, neither format: RuntapError, nothing written).
    A damaged file gives its flows up to the damage (`FileReport.stopped`). RuntapError when no
    flow at all could be read, or when the store could not take every row.
    """
    if not paths:
        raise RuntapError("no files to ingest")
    formats = [detect_format(path) for path in paths]
    report = IngestReport(db)
    started = time.perf_counter()
    worker = Worker(
        db,
        redact=tuple(redact_extra),
        batch_rows=BATCH_ROWS,
        max_queued_rows=MAX_QUEUED_ROWS,
        max_pending=MAX_PENDING,
        log_level="WARNING",
    )
    worker.start()
    try:
        seen = SeenIds.load(db)
        for path, fmt in zip(paths, formats):
            file_report = FileReport(path, fmt, os.path.getsize(path))
            report.files.append(file_report)
            _ingest_one(FlowSource(path, fmt), file_report, worker, seen, progress)
    finally:
        result = worker.close()
    report.seconds = time.perf_counter() - started
    by_capture = {f.capture_id: f for f in report.files if f.capture_id}
    for capture_id, errors in result.errors.items():
        by_capture[capture_id].stored -= errors
        by_capture[capture_id].errors += errors
    report.rows_written, report.rows_lost = result.rows_written, result.rows_lost
    if report.total("flows_read") == 0:
        reasons = "; ".join(f"{f.path}: {f.stopped}" for f in report.files if f.stopped)
        raise RuntapError(f"nothing could be read{': ' + reasons if reasons else ' (no flows in the files)'}")
    if report.rows_lost:
        raise RuntapError(
            f"{report.rows_lost} rows could not be written to {db} "
            f"({result.last_error or 'store busy'}); run the same ingest again to add them"
        )
    return report


def _ingest_one(
    source: FlowSource, report: FileReport, worker: Worker, seen: SeenIds, progress: Progress | None
) -> None:
    capture_id = str(uuid.uuid4())
    for n, item in enumerate(source.flows(), 1):
        if n % PROGRESS_EVERY == 0 and progress is not None:
            _update(report, source)
            progress(report)
        if isinstance(item, FlowState):
            # Routed on the state; the worker builds the flow object of stored flows.
            routed = item.is_http and match_recorded(item.method, item.path) is not None
            flow_id, payload = item.id, item
        else:
            routed = (
                isinstance(item, http.HTTPFlow) and match_recorded(item.request.method, item.request.url) is not None
            )
            flow_id, payload = item.id, None
        if not routed:
            report.skipped += 1
            continue
        if flow_id in seen:
            report.duplicates += 1
            continue
        try:
            upstream = payload.upstream if payload is not None else _upstream(item)
            if payload is None or worker.busy():
                # Building the flow object is the costly half of reading: the worker does it,
                # unless it is the one behind (then this process takes its share).
                payload = captured_from_flow(item if payload is None else payload.to_flow())
        except Exception as exc:  # a flow object with odd state costs that flow only
            report.errors += 1
            log.error("could not read flow %s of %s: %s", flow_id, source.path, exc)
            continue
        if report.capture_id is None:  # the capture row only once something is stored
            report.capture_id = capture_id
            worker.write_capture(_capture_row(capture_id, source.path, upstream))
        worker.put(payload)
        seen.add(flow_id)
        report.stored += 1
    _update(report, source)
    report.stopped = source.stopped
    report.errors += source.bad_entries + (source.stopped is not None)
    report.first_bad_entry = source.first_bad_entry
    if progress is not None:
        progress(report)


def _update(report: FileReport, source: FlowSource) -> None:
    report.flows_read = source.flows_read
    report.bytes_read = source.offset


def _upstream(flow: http.HTTPFlow) -> str:
    request = flow.request
    return f"{request.scheme}://{request.host}:{request.port}"


def _capture_row(capture_id: str, path: str, upstream: str) -> dict:
    return {
        "capture_id": capture_id,
        "started_at": datetime.now(UTC),
        "upstream": upstream,
        "mode": "ingest",
        "tool_version": tool_version(),
        "source": os.path.abspath(path),
    }
