"""`runtap export --otlp URL | --otlp-file FILE`: a recording's runs and responses as OpenTelemetry traces.

Reads the stores `--db` names (`store.multi.open_sources`), filtered as the reports are, one
session at a time (`load`), turns each into spans (`spans.SpanModel`) and sends them in batches
of whole traces to the sink. Exporting the same recording twice gives the same trace and span ids.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from runtap.analysis.filters import Filters
from runtap.errors import RuntapError
from runtap.otel.load import load_sessions
from runtap.otel.sinks import JsonLinesExporter, OtlpHttpSink
from runtap.otel.spans import SpanModel
from runtap.store.multi import open_sources
from runtap.store.version import tool_version

BATCH_SPANS = 1000
# Phoenix files spans under this project unless the receiver is told otherwise (an
# `x-project-name` header in OTEL_EXPORTER_OTLP_HEADERS); other receivers ignore it.
PROJECT = "runtap"


@dataclass
class OtelExportResult:
    """What was exported: traces and spans, by span name's first word (thread, invoke_agent, ...)."""

    target: str
    traces: int = 0
    spans: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts and where they went."""
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_operation.items()))
        return f"exported {self.traces} traces, {self.spans} spans ({kinds or 'nothing recorded'}) to {self.target}"


def span_model(include_content: bool = False) -> SpanModel:
    """The span model with runtap's resource and instrumentation scope.

    `Resource(...)`, not `Resource.create(...)`: create() adds a random service.instance.id and
    reads the environment, and the output would differ from one export to the next.
    """
    version = tool_version()
    resource = Resource({"service.name": "runtap", "service.version": version, "openinference.project.name": PROJECT})
    return SpanModel(resource, InstrumentationScope("runtap", version), include_content)


def export_traces(
    dbs: str | Sequence[str],
    filters: Filters | None = None,
    *,
    otlp: str | None = None,
    otlp_file: str | None = None,
    include_content: bool = False,
) -> OtelExportResult:
    """Export the runs and responses of the stores `dbs` as traces to an OTLP/HTTP receiver or an
    OTLP JSON lines file."""
    if (otlp is None) == (otlp_file is None):
        raise RuntapError("give one of --otlp URL or --otlp-file FILE")
    model = span_model(include_content)
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(open_sources(dbs))
        if otlp is not None:
            sink = OtlpHttpSink(otlp)
            stack.callback(sink.close)
            result = OtelExportResult(sink.endpoint)
        else:
            directory = os.path.dirname(os.path.abspath(otlp_file))
            if not os.path.isdir(directory):
                raise RuntapError(f"directory {directory} does not exist")
            sink = JsonLinesExporter(stack.enter_context(open(otlp_file, "w", encoding="utf-8")))
            result = OtelExportResult(otlp_file)
        batch: list[ReadableSpan] = []
        for session in load_sessions(con, filters or Filters(), include_content=include_content):
            spans = model.spans(session)
            if not spans:
                continue
            result.traces += 1
            for span in spans:
                operation = _operation(span)
                result.by_operation[operation] = result.by_operation.get(operation, 0) + 1
            batch += spans
            if len(batch) >= BATCH_SPANS:
                sink.export(batch)
                result.spans += len(batch)
                batch = []
        if batch:
            sink.export(batch)
            result.spans += len(batch)
    return result


def _operation(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    if "http.request.method" in attributes:
        return "http"
    return str(attributes.get("gen_ai.operation.name") or span.name)
