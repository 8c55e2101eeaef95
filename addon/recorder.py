"""The runtap mitmproxy addon: records Assistants runs and Responses traffic into a DuckDB store.

Usable from `runtap proxy` or as `mitmdump -s addon/script.py --set runtap_db=FILE`; both stop
the same way: on SIGTERM (or SIGINT) the addon drains the exchanges in flight
(addon/drain.py), then mitmproxy shuts down and the worker flushes.

Hooks stay one-liners on mitmproxy's event loop: they copy plain data off the flow and queue
it. The worker process (addon/worker.py) decodes, parses, normalizes and batches rows into
DuckDB, so none of that competes with the event loop for the GIL. Answers on recorded routes
(runs, Responses, Conversations) are streamed through a `StreamTap`, so SSE events reach the
client as they arrive; every other response is streamed through untouched and unrecorded.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ProxyMode

from runtap.addon.drain import Drain
from runtap.addon.flows import captured_from_flow
from runtap.addon.redact import DEFAULT_REDACTED
from runtap.addon.routes import match_recorded
from runtap.addon.stream_tap import StreamTap
from runtap.addon.worker import Worker
from runtap.errors import RuntapError
from runtap.store.paths import check_store_path
from runtap.store.version import tool_version
from runtap.store.writer import DEFAULT_MAX_QUEUED_ROWS

log = logging.getLogger("runtap.addon")

# mitmproxy's termlog verbosity -> the worker process's logging level
_LOG_LEVELS = {"error": "ERROR", "warn": "WARNING", "info": "INFO", "alert": "INFO", "debug": "DEBUG"}


class Recorder:
    """mitmproxy addon that taps runs and Responses routes and records them into a runtap store."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.drain = Drain()
        self.capture_id = str(uuid.uuid4())
        self._taps: dict[str, StreamTap] = {}
        self._redact_extra: tuple[str, ...] = ()

    # --- options ----------------------------------------------------------------------------
    def load(self, loader) -> None:
        """Declare the addon's options (all prefixed `runtap_`)."""
        loader.add_option("runtap_db", str, "runtap.duckdb", "DuckDB store file to record into.")
        loader.add_option(
            "runtap_redact",
            Sequence[str],
            [],
            f"Extra header names to redact (always redacted: {', '.join(DEFAULT_REDACTED)}).",
        )
        loader.add_option(
            "runtap_max_queued_rows",
            int,
            DEFAULT_MAX_QUEUED_ROWS,
            "Rows kept in memory while the store cannot be written (a reader holds the file, the disk "
            "is full); past it new rows are dropped, with a warning.",
        )

    def configure(self, updated) -> None:
        """Validate options; switch stores when `runtap_db` changes while running."""
        if "runtap_redact" in updated:
            self._redact_extra = tuple(ctx.options.runtap_redact)
        if "runtap_db" in updated:
            try:
                check_store_path(ctx.options.runtap_db)
            except RuntapError as exc:
                raise exceptions.OptionsError(str(exc)) from None
        if "runtap_max_queued_rows" in updated and ctx.options.runtap_max_queued_rows < 1:
            raise exceptions.OptionsError("runtap_max_queued_rows must be at least 1")
        if self.worker is not None and {"runtap_db", "runtap_redact"} & set(updated):
            self._close_worker()  # changed at run time: a new worker process takes over
            self._open_worker()

    def running(self) -> None:
        """Make SIGTERM/SIGINT drain first; start the worker, which opens the store."""
        self.drain.install(ctx.master)
        self._open_worker()

    def done(self) -> None:
        """Flush everything queued before mitmproxy exits (after the drain, on a signal)."""
        self._close_worker()

    # --- hooks: one-liners on the event loop ---------------------------------------------
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """An exchange starts: it is in flight until its response or error."""
        self.drain.requestheaders(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Stream every response, tap the ones on recorded routes; while draining, close after it."""
        self._install_stream(flow)
        self.drain.responseheaders(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        """A complete exchange: queue it for normalization, then count it out of the ones in flight."""
        self._finish(flow)
        self.drain.response(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """A broken exchange (client gone, upstream closed mid-stream): record what was seen."""
        self._finish(flow)
        self.drain.error(flow)

    # --- work ---------------------------------------------------------------------------------
    def _install_stream(self, flow: http.HTTPFlow) -> None:
        if not _is_recorded_route(flow.request.method, flow.request.path):
            flow.response.stream = True  # pass through untouched, unbuffered, unrecorded
            return
        tap = StreamTap()
        self._taps[flow.id] = tap
        flow.response.stream = tap

    def _finish(self, flow: http.HTTPFlow) -> None:
        tap = self._taps.pop(flow.id, None)
        if tap is None and not _is_recorded_route(flow.request.method, flow.request.path):
            return
        try:
            captured = captured_from_flow(flow, tap.chunks if tap else None)
        except Exception as exc:  # never raise into mitmproxy
            log.error("runtap: could not read flow %s: %s", flow.id, exc)
            return
        if self.worker is not None:
            self.worker.put(captured)

    def _open_worker(self) -> None:
        level = _LOG_LEVELS.get(getattr(ctx.options, "termlog_verbosity", "info"), "INFO")
        worker = Worker(
            ctx.options.runtap_db,
            redact=self._redact_extra,
            max_queued_rows=ctx.options.runtap_max_queued_rows,
            log_level=level,
        )
        try:
            worker.start()
        except RuntapError as exc:  # keep proxying: traffic matters more than the recording
            log.error("runtap: not recording: %s", exc)
            return
        modes = list(ctx.options.mode)
        worker.write_capture(
            {
                "capture_id": self.capture_id,
                "started_at": datetime.now(UTC),
                "upstream": _upstream_from_modes(modes),
                "mode": ",".join(modes),
                "tool_version": tool_version(),
                "source": "proxy",
            }
        )
        self.worker = worker

    def _close_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


@functools.lru_cache(maxsize=4096)
def _is_recorded_route(method: str, path: str) -> bool:
    # Cached: clients poll the same run or response (same path) many times; the full match costs ~7 us.
    return match_recorded(method, path) is not None


def _upstream_from_modes(modes: list[str]) -> str:
    for spec in modes:
        try:
            mode = ProxyMode.parse(spec)
        except ValueError:
            continue
        if mode.type_name in ("reverse", "upstream"):
            return mode.data
    return ""
