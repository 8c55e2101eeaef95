"""The migration's comparisons: a recorded run, step by step, against the responses standing for it.

Built from the runs replay's matchers (HTTP status, tool calls by name and parsed arguments,
token usage within a tolerance, latency, `--ignore`), through the mapping tables of `mapping`:
statuses, stream events, and usage (prompt -> input, completion -> output). Ids and timestamps
are never compared. Each message says what the run did and what the response did.
"""

from __future__ import annotations

import json
from typing import Any

from runtap.addon.sse import parse_sse_text
from runtap.recordings.toolcalls import run_tool_calls
from runtap.replay.matchers import (
    FAILURE,
    WARNING,
    Difference,
    MatchOptions,
    drop_ignored,
    match_latency,
    match_status_code,
    match_tool_calls,
    match_usage,
)
from runtap.replay.migrate import mapping
from runtap.replay.migrate.observe import ResponseView
from runtap.replay.observe import Outcome
from runtap.replay.sessions import Step

USAGE_KEYS = (
    ("prompt_tokens", "input_tokens"),
    ("completion_tokens", "output_tokens"),
    ("total_tokens", "total_tokens"),
)
_CALLS_COMPARED = {"requires_action", "completed", "incomplete"}  # run statuses whose tool calls are final
_RESPONSE_TRANSIENT = {"queued", "in_progress", None}


def compare_step(
    step: Step,
    run_id: str | None,
    rec: Outcome,
    view: ResponseView,
    responses: dict[str, dict],
    opts: MatchOptions,
    replayed_ms: float | None,
) -> tuple[list[Difference], list[str]]:
    """Differences between a recorded step and its translation's answer, and what is not comparable.

    `responses` holds every response standing for the step's run so far (their usage adds up to
    the run's); a different HTTP status makes the rest moot.
    """
    notes: list[str] = []
    diffs = match_status_code(rec, Outcome(status_code=view.status_code, error=view.error))
    if not diffs:
        diffs = match_stream(step, rec, view)
        run = rec.objects["run"].get(run_id) if run_id else None
        if run is not None and view.response is not None:
            found, notes = match_run(run, view, responses, opts)
            diffs += found
    diffs += match_latency(step.duration_ms, replayed_ms, opts.max_slowdown)
    return drop_ignored(diffs, opts.ignore), notes


def match_run(
    run: dict, view: ResponseView, responses: dict[str, dict], opts: MatchOptions
) -> tuple[list[Difference], list[str]]:
    """A run's state against the response's: status (mapped), function calls, usage, model, errors."""
    status, got = run.get("status"), view.status
    if status in mapping.NO_STATUS:
        return [], [f"run status {status}: {mapping.NO_STATUS[status]}"]
    if status not in mapping.STATUS:
        return [], [f"run status {status!r} has no Responses counterpart"]
    wanted = mapping.STATUS[status]
    diffs = []
    if got != wanted:
        transient = status in mapping.TRANSIENT and got in _RESPONSE_TRANSIENT
        why = f" ({view.error or _error(view.response)})" if got == "failed" else ""
        diffs.append(
            Difference(
                "$.status",
                status,
                got,
                WARNING if transient else FAILURE,
                f"status: the run was {status}, the response is {got}{why} (a {status} run maps to {wanted})",
            )
        )
    if status in _CALLS_COMPARED and got not in _RESPONSE_TRANSIENT:
        recorded_calls = run_tool_calls(run) if status == "requires_action" else []
        diffs += match_tool_calls("$.function_calls", recorded_calls, view.function_calls())
    if isinstance(run.get("usage"), dict):
        diffs += match_usage("$.usage", run["usage"], summed_usage(responses), opts.token_tolerance, USAGE_KEYS)
    response = view.response or {}
    if run.get("model") and response.get("model") and run["model"] != response["model"]:
        diffs.append(
            Difference(
                "$.model",
                run["model"],
                response["model"],
                WARNING,
                f"model: run {run['model']}, response {response['model']}",
            )
        )
    if status == got == "failed" and _code(run.get("last_error")) != _code(response.get("error")):
        a, b = _code(run.get("last_error")), _code(response.get("error"))
        diffs.append(Difference("$.error.code", a, b, WARNING, f"error code: run {a}, response {b}"))
    if status == got == "incomplete":
        a = (run.get("incomplete_details") or {}).get("reason")
        b = (response.get("incomplete_details") or {}).get("reason")
        if mapping.INCOMPLETE_REASON.get(a, a) != b:
            diffs.append(
                Difference("$.incomplete_details.reason", a, b, WARNING, f"incomplete because: run {a}, response {b}")
            )
    return diffs, []


def match_stream(step: Step, rec: Outcome, view: ResponseView) -> list[Difference]:
    """Stream events through the mapping (`mapping.RUN_EVENTS` ~ `mapping.RESPONSE_EVENTS`), repeats collapsed."""
    if not (rec.streamed or view.streamed):
        return []
    a = _collapse(
        [
            (mapping.run_event(e.event, _json(e.data)), e.event)
            for e in parse_sse_text(step.last.response_body or "", None)
        ]
    )
    b = _collapse([(mapping.response_event(name), name) for name in view.events])
    if [t for t, _ in a] == [t for t, _ in b]:
        return []
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x[0] != y[0]), min(len(a), len(b)))  # first change
    want = f"{a[i][0]} ({a[i][1]})" if i < len(a) else "end of stream"
    got = f"{b[i][0]} ({b[i][1]})" if i < len(b) else "end of stream" + (f" ({view.error})" if view.error else "")
    return [
        Difference(
            "$.events",
            [t for t, _ in a],
            [t for t, _ in b],
            FAILURE,
            f"stream events differ at #{i}: the run streamed {want}, the response {got}",
        )
    ]


def summed_usage(responses: dict[str, dict]) -> dict[str, int]:
    """The usage of every response standing for a run, added up (a response without usage adds 0)."""
    total = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    for response in responses.values():
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        for key in total:
            total[key] += usage.get(key) or 0
    return total


def match_message(run_id: str, recorded: bool, responses: dict[str, dict]) -> list[Difference]:
    """An assistant message wherever the recorded run produced one."""
    wrote = any(
        item.get("type") == "message" and item.get("role", "assistant") == "assistant"
        for response in responses.values()
        for item in response.get("output") or []
    )
    if not recorded or wrote or not responses:
        return []
    statuses = ", ".join(str(r.get("status")) for r in responses.values())
    why = f"run {run_id} wrote an assistant message; the responses standing for it wrote none (they ended {statuses})"
    return [Difference(f"$.runs.{run_id}.message", True, False, FAILURE, why)]


def _collapse(pairs: list[tuple[str | None, str]]) -> list[tuple[str, str]]:
    """Tokens with no counterpart dropped, consecutive repeats collapsed (each with its first event)."""
    out: list[tuple[str, str]] = []
    for token, name in pairs:
        if token is not None and (not out or out[-1][0] != token):
            out.append((token, name))
    return out


def _json(data: str) -> Any:
    try:
        return json.loads(data or "")
    except ValueError:
        return None


def _code(error: Any) -> str | None:
    return error.get("code") if isinstance(error, dict) else None


def _error(response: dict | None) -> str | None:
    error = (response or {}).get("error")
    return error.get("message") if isinstance(error, dict) else None
