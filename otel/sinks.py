"""Where spans go: an OTLP/HTTP receiver (the official exporter) or an OTLP JSON lines file.

The file holds one `ExportTraceServiceRequest` per line in the OTLP/JSON encoding, as the
OpenTelemetry "file exporter" format has it: the official encoder (`encode_spans`, what the
OTLP exporters send) turned into JSON by protobuf's own JSON mapping, with the one difference
OTLP/JSON makes: trace and span ids are hex, not base64. (The beta
`opentelemetry-exporter-otlp-json-file` writes the same lines, but pins other betas to exact
versions the HTTP exporter of the same release train does not accept.)
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Sequence
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from runtap.errors import RuntapError

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(request: dict) -> dict:
    for resource_spans in request.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for item in [span, *span.get("links", [])]:
                    for key in _ID_KEYS:
                        if item.get(key):
                            item[key] = base64.b64decode(item[key]).hex()
    return request


def otlp_json_line(spans: Sequence[ReadableSpan]) -> str:
    """One OTLP/JSON `ExportTraceServiceRequest` holding `spans`, as one line."""
    request = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    return json.dumps(_hex_ids(request), separators=(",", ":"), ensure_ascii=False) + "\n"


class JsonLinesExporter(SpanExporter):
    """Appends each batch to a text stream as one OTLP/JSON line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write one line for the batch."""
        self.stream.write(otlp_json_line(spans))
        return SpanExportResult.SUCCESS


def traces_endpoint(url: str) -> str:
    """The OTLP/HTTP traces URL for `--otlp URL`: a base URL gets `/v1/traces`, a path is kept."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntapError(f"--otlp expects an http(s) URL such as http://127.0.0.1:4318, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        raise RuntapError(f"--otlp URL has a bad port: {url!r}") from None
    path = parts.path if parts.path.strip("/") else "/v1/traces"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def innermost(error: BaseException) -> str:
    """The first line of the exception at the bottom of a chain (connection refused, ...)."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class _LastError(logging.Handler):
    """Keeps why the exporter failed, so a failure is reported in one line instead of logged:
    the innermost exception it logged (connection refused, ...), else its last message."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None
        self.cause: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage().splitlines()[0]
        for arg in record.args if isinstance(record.args, tuple) else ():
            if isinstance(arg, BaseException):
                self.cause = innermost(arg)

    @property
    def reason(self) -> str:
        return self.cause or self.message or "the receiver did not accept the spans"


class OtlpHttpSink:
    """The official OTLP/HTTP protobuf exporter; a failed batch raises `RuntapError` with its reason.

    Headers (`OTEL_EXPORTER_OTLP_HEADERS`), timeout, compression and TLS settings come from the
    standard OTEL_EXPORTER_OTLP_* environment variables, as the exporter reads them; `timeout`
    (seconds per batch, retries included) replaces the exporter's default when no variable sets one.
    """

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.endpoint = traces_endpoint(url)
        if any(os.environ.get(f"OTEL_EXPORTER_OTLP{kind}_TIMEOUT") for kind in ("", "_TRACES")):
            timeout = None
        self.exporter = OTLPSpanExporter(endpoint=self.endpoint, timeout=timeout)
        self.errors = _LastError()

    def export(self, spans: Sequence[ReadableSpan]) -> None:
        """Send one batch (retried by the exporter on transient errors)."""
        logger = logging.getLogger("opentelemetry.exporter")
        self.errors.message = self.errors.cause = None  # this batch's reason, not an earlier one's
        logger.addHandler(self.errors)
        propagate, logger.propagate = logger.propagate, False
        try:
            result = self.exporter.export(spans)
        except Exception as exc:  # exporters before 1.3x raised transport errors instead of returning FAILURE
            raise RuntapError(f"OTLP export to {self.endpoint} failed: {innermost(exc)}") from None
        finally:
            logger.removeHandler(self.errors)
            logger.propagate = propagate
        if result is not SpanExportResult.SUCCESS:
            raise RuntapError(f"OTLP export to {self.endpoint} failed: {self.errors.reason}")

    def close(self) -> None:
        """Release the exporter's HTTP session."""
        self.exporter.shutdown()
