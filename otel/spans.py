"""The span model: one session's recorded facts become one trace of OpenTelemetry spans.

    thread                              INTERNAL  OpenInference CHAIN   root of a thread's trace
    ├─ invoke_agent {assistant_id}      CLIENT    AGENT  one per run: creation -> terminal status,
    │  │                                                 an event per observed status change
    │  ├─ chat {model}                  CLIENT    LLM    one per run step, with the step's usage
    │  ├─ execute_tool {function}       INTERNAL  TOOL   one per tool call: required_action -> submit
    │  └─ {METHOD} {url.template}       CLIENT           one per exchange of the run (http_spans)
    └─ {METHOD} {url.template}          CLIENT           exchanges on the thread but no run
A run on no thread is the root of its own trace, and so is an exchange on neither. Responses
API traffic has its own shape, one trace per conversation or response chain (`response_spans`).

GenAI attributes follow the OpenTelemetry semantic conventions (`gen_ai.*`), with OpenInference's
(`openinference.span.kind`, `llm.*`, `session.id`) beside them for Phoenix. Phoenix counts tokens
only on LLM spans, so tokens are on the `chat` spans (and, as the conventions ask, summed on
`invoke_agent`). When a run reported more usage than its observed steps (a client that never
listed the steps), one more `chat {model}` span carries the rest, so per model the LLM spans add
up to the run usage `report tokens` shows. Span ids derive from the recorded ids (`ids`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from runtap.otel import ids
from runtap.otel.content import RunContent, run_contents, tool_call_content
from runtap.otel.http_spans import exchange_span_fields
from runtap.otel.load import Session
from runtap.otel.response_spans import is_response_key, response_spans
from runtap.otel.response_spans import root_span as response_root_span
from runtap.otel.status import status_events
from runtap.otel.timing import lifetime_window, step_window, tool_window

PROVIDER = {"gen_ai.provider.name": "openai", "llm.provider": "openai", "llm.system": "openai"}
# gen_ai.tool.type of the Assistants tool types (the conventions' function / extension / datastore).
TOOL_TYPES = {"function": "function", "code_interpreter": "extension", "file_search": "datastore"}
_USAGE = ("prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class SpanModel:
    """Builds the spans of one session; `include_content` adds messages and tool arguments/results."""

    resource: Resource
    scope: InstrumentationScope
    include_content: bool = False

    def spans(self, session: Session) -> list[ReadableSpan]:
        """Every span of one session's trace: root first, then in start order."""
        if is_response_key(session.key):
            return response_spans(self, session)
        trace = ids.trace_id(session.key)
        exchanges = sorted(session.exchanges, key=lambda e: (e["request_started_at"], e["exchange_id"]))
        contents = run_contents(exchanges) if self.include_content else {}
        out: list[ReadableSpan] = []
        runs = {run["run_id"]: run for run in session.runs}
        root = None
        if session.thread_id is not None:
            root = self.context(trace, ids.span_id("thread", session.thread_id))
        agents = {}
        for run in sorted(session.runs, key=lambda r: (lifetime_window(r)[0], r["run_id"])):
            agent = self.context(trace, ids.span_id("run", run["run_id"]))
            agents[run["run_id"]] = agent
            out += self._run_spans(session, run, agent, root, contents.get(run["run_id"]))
        for exchange in exchanges:
            parent = agents.get(exchange.get("run_id"), root)
            fields = exchange_span_fields(exchange)
            context = self.context(trace, ids.span_id("exchange", exchange["exchange_id"]))
            out.append(self.span(context=context, parent=parent, **fields))
        if root is not None and out:
            start, end = min(s.start_time for s in out), max(s.end_time for s in out)
            out.insert(0, self.thread_span(session.thread_id, start, end, len(runs)))
        return out

    def context(self, trace: int, span: int) -> SpanContext:
        """A sampled span context from two derived ids."""
        return SpanContext(trace, span, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    def span(self, *, name, context, parent, kind, start, end, attributes, events=(), status=None) -> ReadableSpan:
        """A finished span of this model's resource and scope; None attributes are left out."""
        return ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes={k: v for k, v in attributes.items() if v is not None},
            events=events,
            kind=kind,
            status=status or Status(StatusCode.UNSET),
            start_time=start,
            end_time=max(start, end),
            instrumentation_scope=self.scope,
        )

    def root_span(self, key: str, start: int, end: int, count: int) -> ReadableSpan:
        """The root span of the trace of session `key` (a thread, conversation or response chain)
        over `start`..`end`, with `count` runs or responses."""
        if is_response_key(key):
            return response_root_span(self, key, start, end, count)
        return self.thread_span(key.partition(":")[2], start, end, count)

    def thread_span(self, thread_id: str, start: int, end: int, runs: int) -> ReadableSpan:
        """The root span of a thread's trace, over `start`..`end` (its children's extent)."""
        return self.span(
            name="thread",
            context=self.context(ids.trace_id(f"thread:{thread_id}"), ids.span_id("thread", thread_id)),
            parent=None,
            kind=SpanKind.INTERNAL,
            start=start,
            end=end,
            attributes={
                "gen_ai.conversation.id": thread_id,
                "gen_ai.provider.name": "openai",
                "session.id": thread_id,
                "openinference.span.kind": "CHAIN",
                "runtap.runs": runs,
            },
        )

    def _run_spans(self, session, run, agent, root, content: RunContent | None) -> list[ReadableSpan]:
        start, end = lifetime_window(run)
        model = run.get("model")
        run_id = run["run_id"]
        common = {"gen_ai.conversation.id": run.get("thread_id"), "session.id": run.get("thread_id")}
        common |= {"gen_ai.request.model": run.get("request_model") or model, "gen_ai.response.model": model}
        common |= {"llm.model_name": model, **PROVIDER}
        error_type, status = run_outcome(run)
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": run.get("assistant_id"),
            "gen_ai.response.id": run_id,
            "gen_ai.usage.input_tokens": run.get("prompt_tokens"),
            "gen_ai.usage.output_tokens": run.get("completion_tokens"),
            "error.type": error_type,
            "openinference.span.kind": "AGENT",
            "agent.name": run.get("assistant_id"),
            "runtap.run.id": run_id,
            "runtap.run.status": run.get("status"),
            "runtap.run.last_error.code": run.get("last_error_code"),
            "runtap.run.incomplete_reason": run.get("incomplete_reason"),
            "runtap.run.ended": run.get("ended_at") is not None,
            **common,
        }
        if content is not None:
            attributes |= content.attributes()
        transitions = [t for t in session.transitions if t["run_id"] == run_id]
        spans = [
            self.span(
                name=f"invoke_agent {run.get('assistant_id') or ''}".rstrip(),
                context=agent,
                parent=root,
                kind=SpanKind.CLIENT,
                start=start,
                end=end,
                attributes=attributes,
                events=status_events(run, transitions),
                status=status,
            )
        ]
        steps = sorted((s for s in session.steps if s["run_id"] == run_id), key=lambda s: s["step_id"])
        windows = {s["step_id"]: step_window(s, start, end) for s in steps}
        for step in steps:
            spans.append(self._step_span(step, windows[step["step_id"]], agent, model, common))
        spans += self._rest_of_usage(run, steps, agent, (start, end), common)
        tools = sorted((t for t in session.tools if t["run_id"] == run_id), key=lambda t: t["tool_call_id"])
        for tool in tools:
            window = tool_window(tool, windows.get(tool.get("step_id")), transitions, (start, end))
            spans.append(self._tool_span(tool, window, agent, run.get("thread_id")))
        return spans[:1] + sorted(spans[1:], key=lambda s: (s.start_time, s.name))

    def _step_span(self, step: dict, window, agent, model, common) -> ReadableSpan:
        failed = step.get("status") in ("failed", "expired")
        return self.span(
            name=f"chat {model}" if model else "chat",
            context=self.context(agent.trace_id, ids.span_id("step", step["step_id"])),
            parent=agent,
            kind=SpanKind.CLIENT,
            start=window[0],
            end=window[1],
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.response.id": step["step_id"],
                **_usage_attributes(step.get("prompt_tokens"), step.get("completion_tokens")),
                "openinference.span.kind": "LLM",
                "runtap.step.id": step["step_id"],
                "runtap.step.type": step.get("type"),
                "runtap.step.status": step.get("status"),
                "runtap.step.timing": "observed" if window[2] else "api_seconds",
                "error.type": (step.get("last_error_code") or step.get("status")) if failed else None,
                **common,
            },
            status=Status(StatusCode.ERROR, step.get("last_error_code")) if failed else None,
        )

    def _rest_of_usage(self, run, steps, agent, window, common) -> list[ReadableSpan]:
        """One `chat` span for run usage that no observed step accounts for."""
        rest = [(run.get(c) or 0) - sum(s.get(c) or 0 for s in steps) for c in _USAGE]
        if run.get("prompt_tokens") is None or max(rest) <= 0:
            return []
        model = run.get("model")
        return [
            self.span(
                name=f"chat {model}" if model else "chat",
                context=self.context(agent.trace_id, ids.span_id("run-usage", run["run_id"])),
                parent=agent,
                kind=SpanKind.CLIENT,
                start=window[0],
                end=window[1],
                attributes={
                    "gen_ai.operation.name": "chat",
                    **_usage_attributes(max(rest[0], 0), max(rest[1], 0)),
                    "openinference.span.kind": "LLM",
                    "runtap.usage.source": "run usage not attributed to an observed step",
                    **common,
                },
            )
        ]

    def _tool_span(self, tool: dict, window, agent, thread_id) -> ReadableSpan:
        kind = tool.get("type") or "function"
        name = tool.get("function_name") if kind == "function" else kind
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": tool["tool_call_id"],
            "gen_ai.tool.type": TOOL_TYPES.get(kind, kind),
            "gen_ai.conversation.id": thread_id,
            "session.id": thread_id,
            "openinference.span.kind": "TOOL",
            "tool.name": name,
            "tool_call.id": tool["tool_call_id"],
            "tool_call.function.name": tool.get("function_name"),
            "runtap.step.id": tool.get("step_id"),
            "runtap.tool.submitted": tool.get("submitted_at") is not None if kind == "function" else None,
        }
        if self.include_content:
            attributes |= tool_call_content(tool)
        return self.span(
            name=f"execute_tool {name}" if name else "execute_tool",
            context=self.context(agent.trace_id, ids.span_id("tool", tool["tool_call_id"])),
            parent=agent,
            kind=SpanKind.INTERNAL,
            start=window[0],
            end=window[1],
            attributes=attributes,
        )


def _usage_attributes(prompt: int | None, completion: int | None) -> dict[str, Any]:
    total = None if prompt is None and completion is None else (prompt or 0) + (completion or 0)
    return {
        "gen_ai.usage.input_tokens": prompt,
        "gen_ai.usage.output_tokens": completion,
        "llm.token_count.prompt": prompt,
        "llm.token_count.completion": completion,
        "llm.token_count.total": total,
    }


def run_outcome(run: dict) -> tuple[str | None, Status]:
    """`error.type` and span status of a run: errors for failed, expired and incomplete runs."""
    status = run.get("status")
    if status == "failed":
        code, message = run.get("last_error_code"), run.get("last_error_message")
        return code or "failed", Status(StatusCode.ERROR, ": ".join(x for x in (code, message) if x) or "failed")
    if status == "expired":
        return "expired", Status(StatusCode.ERROR, "expired")
    if status == "incomplete":
        reason = run.get("incomplete_reason")
        return "incomplete", Status(StatusCode.ERROR, f"incomplete: {reason}" if reason else "incomplete")
    if status == "completed":
        return None, Status(StatusCode.OK)
    return None, Status(StatusCode.UNSET)
