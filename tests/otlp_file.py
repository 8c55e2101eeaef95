"""Read `runtap export --otlp-file` output with opentelemetry-proto's JSON mapping, for assertions.

Each line is an OTLP/JSON `ExportTraceServiceRequest`. OTLP/JSON writes trace and span ids as
hex where protobuf's JSON mapping expects base64; they are converted back, then
`json_format.ParseDict` parses the line (it rejects unknown fields and wrong types).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_HEX = {"traceId": re.compile(r"^[0-9a-f]{32}$"), "spanId": re.compile(r"^[0-9a-f]{16}$")}
_HEX["parentSpanId"] = _HEX["spanId"]


@dataclass
class Span:
    """One parsed span: ids as hex, attributes as Python values."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: int
    start: int
    end: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)


def value(v: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def parse_line(line: str) -> ExportTraceServiceRequest:
    """Parse one OTLP/JSON line (checking the hex ids) into an ExportTraceServiceRequest."""
    doc = json.loads(line)
    for resource_spans in doc.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key, pattern in _HEX.items():
                    if key in span:
                        assert pattern.match(span[key]), (key, span[key])
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.ParseDict(doc, ExportTraceServiceRequest())


def read_spans(path: str) -> list[Span]:
    """Every span in an OTLP JSON lines file, in file order."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            request = parse_line(line)
            for rs in request.resource_spans:
                resource = {a.key: value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            Span(
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_id=s.parent_span_id.hex() or None,
                                name=s.name,
                                kind=s.kind,
                                start=s.start_time_unix_nano,
                                end=s.end_time_unix_nano,
                                status_code=s.status.code,
                                status_message=s.status.message,
                                attributes={a.key: value(a.value) for a in s.attributes},
                                events=[
                                    (e.name, e.time_unix_nano, {a.key: value(a.value) for a in e.attributes})
                                    for e in s.events
                                ],
                                resource=resource,
                            )
                        )
    return out


def operation(span: Span) -> str:
    """invoke_agent, chat, execute_tool, http or thread."""
    if "http.request.method" in span.attributes:
        return "http"
    return span.attributes.get("gen_ai.operation.name") or span.name
