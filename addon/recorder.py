"""The runtap mitmproxy addon: records Assistants runs traffic into a DuckDB store.

Usable from `runtap proxy` or as `mitmdump -s addon/script.py --set runtap_db=FILE`.

Hooks stay one-liners on mitmproxy's event loop: they copy plain data off the flow and queue
it. A worker thread decodes, parses and normalizes; the store's writer thread batches rows
into DuckDB. Responses on runs routes are streamed through a `StreamTap`, so SSE events reach
the client as they arrive; every other response is streamed through untouched and unrecorded.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ProxyMode

from addon.flows import CapturedFlow, captured_from_flow, to_exchange
from addon.normalize import normalize
from addon.redact import DEFAULT_REDACTED
from addon.routes import match_route
from addon.stream_tap import StreamTap
from store.errors import RuntapError
from store.paths import check_store_path
from store.writer import StoreWriter

log = logging.getLogger("runtap.addon")

_STOP = object()


def _tool_version() -> str:
    try:
        return version("runtap")
    except PackageNotFoundError:
        return "0.0.0+source"


class Recorder:
    """mitmproxy addon that taps runs routes and records them into a runtap store."""

    def __init__(self) -> None:
        self.writer: StoreWriter | None = None
        self.capture_id = str(uuid.uuid4())
        self._taps: dict[str, StreamTap] = {}
        self._pending: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._redact_extra: tuple[str, ...] = ()
        self.normalize_errors = 0

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
            "runtap_upstream", str, "", "Upstream written to the capture record (default: from the mode)."
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
            if self.writer is not None:  # changed at run time: reopen
                self._close_writer()
                self._open_writer()

    def running(self) -> None:
        """Open the store and write this proxy run's `captures` row."""
        self._open_writer()
        modes = list(ctx.options.mode)
        upstream = ctx.options.runtap_upstream or _upstream_from_modes(modes)
        self.writer.write_capture(
            {
                "capture_id": self.capture_id,
                "started_at": datetime.now(UTC),
                "upstream": upstream,
                "mode": ",".join(modes),
                "tool_version": _tool_version(),
                "source": "proxy",
            }
        )

    def done(self) -> None:
        """Flush everything queued before mitmproxy exits (SIGINT/SIGTERM included)."""
        self._close_writer()

    # --- hooks: one-liners on the event loop ---------------------------------------------
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Stream every response; tap the ones on runs routes."""
        self._install_stream(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        """A complete exchange: queue it for normalization."""
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """A broken exchange (client gone, upstream closed mid-stream): record what was seen."""
        self._finish(flow)

    # --- work ---------------------------------------------------------------------------------
    def _install_stream(self, flow: http.HTTPFlow) -> None:
        if match_route(flow.request.method, flow.request.url) is None:
            flow.response.stream = True  # pass through untouched, unbuffered, unrecorded
            return
        tap = StreamTap()
        self._taps[flow.id] = tap
        flow.response.stream = tap

    def _finish(self, flow: http.HTTPFlow) -> None:
        tap = self._taps.pop(flow.id, None)
        if tap is None and match_route(flow.request.method, flow.request.url) is None:
            return
        try:
            captured = captured_from_flow(flow, tap.chunks if tap else None)
        except Exception as exc:  # never raise into mitmproxy
            log.error("runtap: could not read flow %s: %s", flow.id, exc)
            return
        self._pending.put(captured)

    def _open_writer(self) -> None:
        writer = StoreWriter(ctx.options.runtap_db)
        writer.start()
        self.writer = writer
        self._start_worker()

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="runtap-normalize", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while (item := self._pending.get()) is not _STOP:
            self._record(item)

    def _record(self, captured: CapturedFlow) -> None:
        try:
            rows = normalize(to_exchange(captured, self.capture_id), redact_extra=self._redact_extra)
        except Exception as exc:  # normalize never raises by contract; belt and braces
            self.normalize_errors += 1
            log.error("runtap: could not normalize exchange %s: %s", captured.flow_id, exc)
            return
        if self.writer is not None:
            self.writer.put(rows)

    def _close_writer(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._pending.put(_STOP)
            self._worker.join()
        self._worker = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _upstream_from_modes(modes: list[str]) -> str:
    for spec in modes:
        try:
            mode = ProxyMode.parse(spec)
        except ValueError:
            continue
        if mode.type_name in ("reverse", "upstream"):
            return mode.data
    return ""
