"""Translate one recorded Assistants session into Responses API actions (pure: nothing is sent here).

Each logical step of the session (`replay.sessions`) becomes one `Action`:

- createThread (messages, metadata): `POST /conversations` with the messages as items;
- createMessage: `POST /conversations/{id}/items`;
- createRun: `POST /responses` in the conversation, with the run's model, instructions (then
  `additional_instructions`), function tools in the flat shape, metadata and sampling settings;
  `additional_messages` as input items; a streamed run with `stream: true`, a polled one with
  `background: true`;
- createThreadAndRun: `POST /conversations` (the thread's messages), then the response as createRun;
- a getRun poll loop: `GET /responses/{id}` until the mapped outcome, honouring poll-after;
- submitToolOutputsToRun: a follow-up `POST /responses` in the same conversation whose input is
  `function_call_output` items: the recorded outputs, with the call ids the new response made;
- cancelRun: `POST /responses/{id}/cancel`;
- listRuns, listRunSteps, getRunStep, modifyRun and anything else: not sent, reported as not
  comparable with the reason (`mapping.NO_COUNTERPART`).

The model, instructions and tools come from the recorded run object (which carries the
assistant's; the request usually only names the assistant), the request filling what it lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from runtap.addon.routes import match_route
from runtap.replay.migrate import mapping
from runtap.replay.observe import Outcome
from runtap.replay.runner import recorded_observation
from runtap.replay.sessions import Session, Step

RUN_CREATES = {"createRun", "createThreadAndRun"}
UNKNOWN_START = "the thread was created before the recording: its earlier messages are not in the conversation"


@dataclass(frozen=True)
class Action:
    """What one recorded step becomes on the Responses API."""

    step: Step
    kind: str  # conversation | items | response | poll | cancel | none (not sent)
    run_id: str | None = None
    items: tuple[dict, ...] = ()  # conversation items (the thread's messages)
    inputs: tuple[dict, ...] = ()  # a response's input items (a run's additional_messages)
    metadata: dict | None = None  # a new conversation's metadata
    stream: bool = False
    background: bool = False
    outputs: tuple[tuple[str, str], ...] = ()  # submit_tool_outputs: (recorded call id, output)
    not_comparable: tuple[str, ...] = ()  # what of this step is not compared, and why

    @property
    def sent(self) -> bool:
        """False for a step that has no counterpart and is not sent."""
        return self.kind != "none"


@dataclass
class Translation:
    """A recorded session as Responses actions, with the recorded answers to compare them with."""

    session: Session
    actions: list[Action]
    recorded: list[Outcome]  # per step, observed as the runs replay observes it
    templates: dict[str, dict] = field(default_factory=dict)  # run id -> createResponse fields
    prefix: str = "/v1"  # the recorded path prefix (`/v1`, Azure's `/openai`, ...)
    query: str = ""  # kept from the recorded query string: `api-version` only

    @property
    def comparable(self) -> bool:
        """True when at least one step has a counterpart."""
        return any(a.sent for a in self.actions)


def translate(session: Session) -> Translation:
    """Translate a session's steps into actions (pure)."""
    recorded = [recorded_observation(step) for step in session.steps]
    runs = _run_objects(recorded)
    cancelled = {_route_run(s) for s in session.steps if s.first.operation == "cancelRun"}
    translation = Translation(session, [], recorded, prefix=_prefix(session), query=_query(session))
    has_conversation = False
    # A thread created before the recording: its earlier messages are unknown (said once).
    unknown_start = not any(s.first.operation in ("createThread", "createThreadAndRun") for s in session.steps)
    for step, rec in zip(session.steps, recorded):
        op = step.first.operation
        if op in RUN_CREATES:
            action = _create(step, rec, runs, translation, cancelled)
        elif op in ("createThread", "createMessage"):
            action = _conversation(step, op, has_conversation)
        elif op in ("getRun", "cancelRun", "submitToolOutputsToRun"):
            action = _on_run(step, op, rec, translation)
        else:
            reason = mapping.NO_COUNTERPART.get(op or "", f"{op or step.first.method} has no Responses counterpart")
            action = Action(step, "none", _route_run(step), not_comparable=(reason,))
        if action.kind in ("conversation", "items", "response"):
            if unknown_start and not has_conversation:
                action = replace(action, not_comparable=(UNKNOWN_START, *action.not_comparable))
            has_conversation = True
        translation.actions.append(action)
    return translation


def _create(step: Step, rec: Outcome, runs: dict, translation: Translation, cancelled: set) -> Action:
    refused = _refused(step, rec)
    run_id = next(iter(rec.objects["run"]), None)
    if refused or run_id is None:
        why = refused or "the recorded answer shows no run"
        return Action(step, "none", run_id, not_comparable=(f"{step.first.operation} not translated: {why}",))
    request = _body(step)
    template, notes = response_template(runs[run_id], request)
    translation.templates[run_id] = template
    items: tuple[dict, ...] = ()
    metadata = None
    if step.first.operation == "createThreadAndRun":
        thread = request.get("thread") if isinstance(request.get("thread"), dict) else {}
        items, notes_items = _items(thread.get("messages"))
        metadata = thread.get("metadata")
        if len(items) > 20:
            notes_items.append(
                f"{len(items) - 20} thread messages beyond the 20 a conversation is created with: not sent"
            )
    else:
        notes_items = []
    inputs, notes_inputs = _items(request.get("additional_messages"))
    streamed = step.first.streamed
    return Action(
        step,
        "response",
        run_id,
        items=items,
        inputs=inputs,
        metadata=metadata if isinstance(metadata, dict) else None,
        stream=streamed,
        background=not streamed or run_id in cancelled,  # only background responses can be cancelled
        not_comparable=tuple(notes + notes_items + notes_inputs),
    )


def _conversation(step: Step, op: str, has_conversation: bool) -> Action:
    body = _body(step)
    messages = body.get("messages") if op == "createThread" else [body]
    items, notes = _items(messages)
    if op == "createThread" and body.get("tool_resources"):
        notes.append("thread tool_resources have no conversation counterpart (file_search takes vector stores)")
    metadata = body.get("metadata") if op == "createThread" else None
    kind = "conversation" if op == "createThread" or not has_conversation else "items"
    return Action(
        step, kind, items=items, metadata=metadata if isinstance(metadata, dict) else None, not_comparable=tuple(notes)
    )


def _on_run(step: Step, op: str, rec: Outcome, translation: Translation) -> Action:
    run_id = _route_run(step)
    if run_id not in translation.templates:
        why = "the run was created before the recording (or not translated): its request is unknown"
        return Action(step, "none", run_id, not_comparable=(f"{op}: {why}",))
    if op in ("getRun", "cancelRun"):
        return Action(step, "poll" if op == "getRun" else "cancel", run_id)
    refused = _refused(step, rec)
    if refused:
        return Action(step, "none", run_id, not_comparable=(f"submitToolOutputsToRun not translated: {refused}",))
    body = _body(step)
    outputs = tuple(
        (str(o.get("tool_call_id")), o["output"] if isinstance(o.get("output"), str) else json.dumps(o.get("output")))
        for o in body.get("tool_outputs") or []
        if isinstance(o, dict)
    )
    streamed = step.first.streamed
    return Action(step, "response", run_id, stream=streamed, background=not streamed, outputs=outputs)


def response_template(run: dict, request: dict) -> tuple[dict, list[str]]:
    """The createResponse fields that stand for a run (model, instructions, tools, ...), and what
    could not be carried over. The run object wins; the request fills what it lacks."""

    def pick(name: str) -> Any:
        value = run.get(name)
        return request.get(name) if value is None else value

    notes: list[str] = []
    resources = pick("tool_resources") or {}
    tools = []
    for raw in pick("tools") or []:
        flat, why = mapping.tool(raw, resources if isinstance(resources, dict) else {})
        if flat is not None:
            tools.append(flat)
        else:
            notes.append(f"tool not sent: {why}")
    fields = {
        "model": pick("model"),
        "instructions": mapping.instructions(run, request),
        "tools": tools,
        "tool_choice": mapping.tool_choice(pick("tool_choice")),
        "parallel_tool_calls": pick("parallel_tool_calls"),
        "metadata": pick("metadata") or None,
        # 1 is both APIs' default, and reasoning models refuse the parameters even then
        "temperature": _unless_default(pick("temperature")),
        "top_p": _unless_default(pick("top_p")),
        "max_output_tokens": pick("max_completion_tokens"),
        "text": mapping.text_format(pick("response_format")),
        "reasoning": {"effort": pick("reasoning_effort")} if pick("reasoning_effort") else None,
    }
    truncation = pick("truncation_strategy")
    if isinstance(truncation, dict):
        fields["truncation"] = "auto"
        if truncation.get("type") == "last_messages":
            notes.append(
                f"truncation_strategy last_messages={truncation.get('last_messages')}: sent as truncation auto"
            )
    if pick("max_prompt_tokens") is not None:
        notes.append(f"max_prompt_tokens {pick('max_prompt_tokens')} has no Responses counterpart: not sent")
    if not tools:
        fields.pop("tool_choice")  # a tool choice without tools is refused
    return {k: v for k, v in fields.items() if v is not None}, notes


def _unless_default(value: Any) -> Any:
    return None if value == 1 else value


def _items(messages: Any) -> tuple[tuple[dict, ...], list[str]]:
    items, notes = [], []
    for message in messages if isinstance(messages, list) else []:
        item, why = mapping.message_item(message)
        if item is not None:
            items.append(item)
        notes += why
    return tuple(items), notes


def _run_objects(recorded: list[Outcome]) -> dict[str, dict]:
    """Each run's first recorded state (it carries what the run was created with)."""
    runs: dict[str, dict] = {}
    for obs in recorded:
        for run_id, run in obs.objects["run"].items():
            runs.setdefault(run_id, run)
    return runs


def _refused(step: Step, rec: Outcome) -> str | None:
    if rec.status_code is not None and rec.status_code < 400:
        return None
    return f"the recorded server answered HTTP {rec.status_code}" + (f" ({rec.error})" if rec.error else "")


def _body(step: Step) -> dict:
    try:
        body = json.loads(step.first.request_body or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _route_run(step: Step) -> str | None:
    route = match_route(step.first.method, step.first.path)
    return route.run_id if route else None


def _prefix(session: Session) -> str:
    path = session.steps[0].first.path if session.steps else "/v1/threads"
    return path[: path.rfind("/threads")] if "/threads" in path else "/v1"


def _query(session: Session) -> str:
    query = session.steps[0].first.query if session.steps else ""
    return urlencode([(k, v) for k, v in parse_qsl(query) if k == "api-version"])
