"""The runtap mitmproxy addon: records Assistants runs and Responses traffic into a DuckDB store.

Usable from `runtap proxy` or as `mitmdump -s addon/script.py --set runtap_db=FILE`; both stop
the same way: on SIGTERM (or SIGINT) the addon drains the exchanges in flight
(addon/drain.py), then mitmproxy shuts down and the recorder process applies the rest.

Write path: every exchange on a recorded route (runs, Responses, Conversations) is appended to
the store's journal (addon/journal.py) on mitmproxy's event loop before its client can have the
whole response; the recorder process
(addon/worker.py, started and restarted by addon/recorder_process.py) tails the journal into
DuckDB. When the record is written:

- a response with a Content-Length, streamed through a `StreamTap`: when its last chunk passes
  the tap, before mitmproxy sends that chunk (the client is done at its last byte);
- any other tapped response (SSE: chunked or ending with the connection): in the `response`
  hook, which mitmproxy runs after the last chunk and before it ends the message (the last
  chunk of chunked encoding, HTTP/2's END_STREAM, the close);
- a response mitmproxy buffered (no body) or made itself: the `response` hook, which runs
  before anything of it is sent; a broken exchange: the `error` hook.

With `runtap_fsync` the journal is also fsynced, batched, and the client waits for it: Content-
Length responses are then buffered (not tapped), and the `response` and `error` hooks wait for
the fsync that covers their record before mitmproxy sends the response (or its end).

Hooks stay cheap: headers are redacted on their raw bytes, and the flow's fields are copied by
reference and written with one `write()`. Secrets never reach the journal. Responses on recorded
routes are streamed through the tap, so SSE events reach the client as they arrive; every other
response is streamed through untouched and unrecorded.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Sequence

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ProxyMode

from runtap.addon.drain import Drain
from runtap.addon.flows import flow_record
from runtap.addon.journal import DEFAULT_LIMIT_MB, FLOW, JournalWriter
from runtap.addon.recorder_process import RecorderProcess
from runtap.addon.redact import DEFAULT_REDACTED, RawRedactor
from runtap.addon.routes import match_recorded
from runtap.addon.stream_tap import StreamTap
from runtap.errors import RuntapError
from runtap.store.paths import check_store_path
from runtap.store.version import tool_version

log = logging.getLogger("runtap.addon")

# mitmproxy's termlog verbosity -> the worker process's logging level
_LOG_LEVELS = {"error": "ERROR", "warn": "WARNING", "info": "INFO", "alert": "INFO", "debug": "DEBUG"}
_REOPEN = {"runtap_db", "runtap_redact", "runtap_fsync", "runtap_journal_limit", "runtap_otlp"}


class Recorder:
    """mitmproxy addon that taps runs and Responses routes and records them into a runtap store.

    `stream_requests`: send a recorded route's request on upstream as it arrives instead of
    after the `request` hook (mitmproxy's `flow.request.stream`), so that hook's round trip is
    not on the way to the first SSE event (benchmarks/README.md). Only where no other addon can
    need to change the request in its `request` hook: `runtap proxy` sets it; in plain
    mitmdump, `--modify-headers`, map rules or a user's script may.
    """

    stream_requests = False

    def __init__(self) -> None:
        self.journal: JournalWriter | None = None
        self.process: RecorderProcess | None = None
        self.drain = Drain()
        self.capture_id = str(uuid.uuid4())
        self._taps: dict[str, StreamTap] = {}
        self._redact_extra: tuple[str, ...] = ()
        self._redact = RawRedactor()
        self._fsync = False

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
            "runtap_journal_limit",
            int,
            DEFAULT_LIMIT_MB,
            "MB of journal the recorder process may fall behind by (store locked, recorder down); past "
            "it new exchanges are not recorded, with an error line. Traffic always passes.",
        )
        loader.add_option(
            "runtap_fsync",
            bool,
            False,
            "Also fsync the journal (batched) before a response is handed over: survives power loss.",
        )
        loader.add_option(
            "runtap_otlp",
            str,
            "",
            "OTLP/HTTP receiver (e.g. http://127.0.0.1:4318) the recorder process sends each run's spans "
            "to once the run ends (runs still open: at shutdown). Empty: none.",
        )

    def configure(self, updated) -> None:
        """Validate options; switch stores when `runtap_db` changes while running."""
        if "runtap_redact" in updated:
            self._redact_extra = tuple(ctx.options.runtap_redact)
            self._redact = RawRedactor(self._redact_extra)
        if "runtap_db" in updated:
            try:
                check_store_path(ctx.options.runtap_db)
            except RuntapError as exc:
                raise exceptions.OptionsError(str(exc)) from None
        if "runtap_otlp" in updated and ctx.options.runtap_otlp:
            from runtap.otel.sinks import traces_endpoint  # the exporter's imports stay out of the proxy

            try:
                traces_endpoint(ctx.options.runtap_otlp)
            except RuntapError as exc:
                raise exceptions.OptionsError(str(exc)) from None
        if "runtap_journal_limit" in updated and ctx.options.runtap_journal_limit < 1:
            raise exceptions.OptionsError("runtap_journal_limit must be at least 1 (MB)")
        if "runtap_fsync" in updated:
            self._fsync = ctx.options.runtap_fsync
            # The hooks that wait for the fsync are async; without it they stay plain calls.
            for hook in ("response", "error"):
                if self._fsync:
                    setattr(self, hook, getattr(self, f"_{hook}_synced"))
                else:
                    self.__dict__.pop(hook, None)
        if self.journal is not None and _REOPEN & set(updated):
            self._close()  # changed at run time: a new journal and recorder process take over
            self._open()

    def running(self) -> None:
        """Make SIGTERM/SIGINT drain first; open the journal and start the recorder process."""
        self.drain.install(ctx.master)
        self._open()

    def done(self) -> None:
        """Close the journal; the recorder process applies the rest (after the drain, on a signal)."""
        self._close()

    # --- hooks: one-liners on the event loop ---------------------------------------------
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """An exchange starts: it is in flight until its response or error."""
        if self.stream_requests and _is_recorded_route(flow.request.method, flow.request.path):
            flow.request.stream = StreamTap()  # its body goes on before the `request` hook; kept for the record
        self.drain.requestheaders(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Stream every response, tap the ones on recorded routes; while draining, close after it."""
        self._install_stream(flow)
        self.drain.responseheaders(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        """A complete exchange: journal it (unless its tap did), then count it out of those in flight."""
        self._finish(flow)
        self.drain.response(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """A broken exchange (client gone, upstream closed mid-stream): journal what was seen."""
        self._finish(flow)
        self.drain.error(flow)

    async def _response_synced(self, flow: http.HTTPFlow) -> None:
        """`response` with `runtap_fsync`: mitmproxy sends the response once its record is synced."""
        ticket = self._finish(flow)
        if self.journal is not None:
            await self.journal.synced(ticket)
        self.drain.response(flow)

    async def _error_synced(self, flow: http.HTTPFlow) -> None:
        """`error` with `runtap_fsync` (mitmproxy's own error response waits too)."""
        ticket = self._finish(flow)
        if self.journal is not None:
            await self.journal.synced(ticket)
        self.drain.error(flow)

    # --- work ---------------------------------------------------------------------------------
    def _install_stream(self, flow: http.HTTPFlow) -> None:
        if not _is_recorded_route(flow.request.method, flow.request.path):
            flow.response.stream = True  # pass through untouched, unbuffered, unrecorded
            return
        length = _content_length(flow.response.headers.fields)
        if length is not None and self._fsync:
            return  # buffered: the response hook waits for the fsync before anything is sent
        tap = StreamTap(flow, length, self._complete if length is not None else None)
        self._taps[flow.id] = tap
        flow.response.stream = tap

    def _complete(self, tap: StreamTap) -> None:
        """The last chunk of a Content-Length body is passing: journal before it is sent."""
        flow, tap.flow = tap.flow, None
        self._record(flow, tap.chunks)

    def _finish(self, flow: http.HTTPFlow) -> int:
        tap = self._taps.pop(flow.id, None)
        if tap is None:
            if not _is_recorded_route(flow.request.method, flow.request.path):
                return 0
            return self._record(flow, None)
        if tap.flow is None:
            return 0  # journaled when its last chunk passed
        tap.flow = None
        return self._record(flow, tap.chunks)

    def _record(self, flow: http.HTTPFlow, chunks: list | None) -> int:
        """Journal one exchange; its ticket for `JournalWriter.synced` (0: not journaled)."""
        if self.journal is None:
            return 0
        try:
            request = flow.request
            if request.raw_content is None and isinstance(request.stream, StreamTap):
                request.raw_content = b"".join(chunk for _, chunk in request.stream.chunks)  # streamed on
            return self.journal.append((FLOW, *flow_record(flow, chunks, self._redact)))
        except Exception as exc:  # never raise into mitmproxy
            log.error("runtap: could not record flow %s: %s", flow.id, exc)
            return 0

    def _open(self) -> None:
        db = ctx.options.runtap_db
        modes = list(ctx.options.mode)
        capture = (self.capture_id, time.time(), _upstream_from_modes(modes), ",".join(modes), tool_version(), "proxy")
        journal = JournalWriter(db, capture, limit_bytes=ctx.options.runtap_journal_limit << 20, fsync=self._fsync)
        level = _LOG_LEVELS.get(getattr(ctx.options, "termlog_verbosity", "info"), "INFO")
        process = RecorderProcess(db, redact=self._redact_extra, log_level=level, otlp=ctx.options.runtap_otlp or None)
        try:
            journal.lock()  # before the process: a second proxy on the store stops here
            try:
                journal.open(after=process.start())
            except RuntapError:
                journal.close()
                raise
        except RuntapError as exc:  # keep proxying: traffic matters more than the recording
            if process._proc is not None:
                process.close()
            log.error("runtap: not recording: %s", exc)
            return
        process.journal = journal
        process.watch()
        self.journal, self.process = journal, process

    def _close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if self.process is not None:
            self.process.close()
            self.process = None


def _content_length(fields) -> int | None:
    """The Content-Length of raw header fields; None without one (or with Transfer-Encoding)."""
    length = None
    for name, value in fields:
        if len(name) == 14 and name.lower() == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            return None
    return length


@functools.lru_cache(maxsize=4096)
def _is_recorded_route(method: str, path: str) -> bool:
    # Cached: clients poll the same run (same path) many times; the full match costs ~7 us.
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
