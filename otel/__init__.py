"""OpenTelemetry traces from a recording: `runtap export --otlp URL | --otlp-file FILE`, `runtap proxy --otlp URL`.

- `load`: the facts of each session (thread) from the store's views, filtered as the reports are;
- `spans`: the span model (thread -> invoke_agent -> chat / execute_tool / HTTP exchanges), with
  `timing` (when each span starts and ends), `status` (status stays as events), `http_spans`,
  `content` (opt-in messages) and `ids` (ids derived from recorded ids);
- `sinks`: the official OTLP/HTTP exporter, or OTLP JSON lines;
- `export`: `export_traces`, what the command calls;
- `live`: `runtap proxy --otlp URL`, the same spans sent from the recorder process as runs end.
"""
