"""Matchers: pure functions comparing a recorded and a replayed observation, saying why they differ.

Each matcher returns a list of `Difference`s (empty when they match). Ids, timestamps and request
ids are never compared (the target assigns its own); outcomes are compared, not poll counts.
`compare_step` runs every step matcher; `match_status_sequence` compares a whole session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runtap.recordings import toolcalls
from runtap.recordings.jsondiff import json_diff, short
from runtap.replay.observe import Outcome

FAILURE, WARNING = "failure", "warning"
TRANSIENT = {"queued", "in_progress", "cancelling"}  # statuses timing alone can change
# Fields the generic object diff skips: compared by a dedicated matcher, or never compared.
_SKIPPED = {"object", "status", "model", "usage", "required_action", "step_details", "delta"}


@dataclass(frozen=True)
class Difference:
    """One way the replay differs from the recording."""

    path: str  # JSON-path-like location, e.g. $.runs[0].status
    recorded: Any
    replayed: Any
    severity: str  # "failure" | "warning"
    message: str


@dataclass(frozen=True)
class MatchOptions:
    """How strict the comparison is."""

    token_tolerance: float = 0.10
    max_slowdown: float | None = None
    ignore: tuple[str, ...] = ()


def match_status_code(rec: Outcome, rep: Outcome) -> list[Difference]:
    """HTTP status must be the same."""
    if rec.status_code == rep.status_code:
        return []
    why = f": {rep.error}" if rep.error else ""
    return [
        Difference(
            "$.status_code",
            rec.status_code,
            rep.status_code,
            FAILURE,
            f"HTTP status {rec.status_code} recorded, {rep.status_code} replayed{why}",
        )
    ]


def match_events(rec: Outcome, rep: Outcome) -> list[Difference]:
    """Stream event types, consecutive repeats collapsed (delta counts never matter)."""
    if not (rec.streamed or rep.streamed):
        return []
    a, b = _dedup(rec.events), _dedup(rep.events)
    if a == b:
        return []
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    got = b[i] if i < len(b) else "end of stream"
    want = a[i] if i < len(a) else "end of stream"
    return [Difference("$.events", a, b, FAILURE, f"stream events differ at #{i}: recorded {want}, replayed {got}")]


def match_runs(rec: Outcome, rep: Outcome, opts: MatchOptions) -> list[Difference]:
    """Final run objects: status, model, tool calls, token usage, then every other field."""
    runs_a, runs_b = rec.of("run"), rep.of("run")
    diffs = _count("runs", runs_a, runs_b)
    for i, (a, b) in enumerate(zip(runs_a, runs_b)):
        path = f"$.runs[{i}]"
        diffs += match_value(
            f"{path}.status",
            a.get("status"),
            b.get("status"),
            "run status",
            _status_severity(a.get("status"), b.get("status")),
        )
        diffs += match_value(f"{path}.model", a.get("model"), b.get("model"), "model")
        diffs += match_tool_calls(
            f"{path}.required_action.tool_calls", toolcalls.run_tool_calls(a), toolcalls.run_tool_calls(b)
        )
        diffs += match_usage(f"{path}.usage", a.get("usage"), b.get("usage"), opts.token_tolerance)
        diffs += diff_objects(path, a, b)
    return diffs


def match_steps(rec: Outcome, rep: Outcome, opts: MatchOptions) -> list[Difference]:
    """Final run steps, in order: type, status, tool calls, token usage, then other fields."""
    steps_a, steps_b = rec.of("step"), rep.of("step")
    diffs = _count("steps", steps_a, steps_b, key="type")
    for i, (a, b) in enumerate(zip(steps_a, steps_b)):
        path = f"$.steps[{i}]"
        diffs += match_value(f"{path}.type", a.get("type"), b.get("type"), "step type")
        diffs += match_value(
            f"{path}.status",
            a.get("status"),
            b.get("status"),
            "step status",
            _status_severity(a.get("status"), b.get("status")),
        )
        diffs += match_tool_calls(f"{path}.tool_calls", toolcalls.step_tool_calls(a), toolcalls.step_tool_calls(b))
        diffs += match_usage(f"{path}.usage", a.get("usage"), b.get("usage"), opts.token_tolerance)
        diffs += diff_objects(path, a, b)
    return diffs


def match_messages(rec: Outcome, rep: Outcome) -> list[Difference]:
    """Messages: content may legitimately vary, so differences are warnings."""
    msgs_a, msgs_b = rec.of("message"), rep.of("message")
    diffs = [
        d.__class__(d.path, d.recorded, d.replayed, WARNING, d.message) for d in _count("messages", msgs_a, msgs_b)
    ]
    for i, (a, b) in enumerate(zip(msgs_a, msgs_b)):
        diffs += diff_objects(f"$.messages[{i}]", a, b)
    return diffs


def match_value(path: str, a: Any, b: Any, what: str, severity: str = FAILURE) -> list[Difference]:
    """Two values must be equal."""
    if a == b:
        return []
    return [Difference(path, a, b, severity, f"{what}: recorded {a!r}, replayed {b!r}")]


def match_tool_calls(
    path: str, rec_calls: list[toolcalls.ToolCall], rep_calls: list[toolcalls.ToolCall]
) -> list[Difference]:
    """Tool calls: function names and arguments (as parsed JSON), paired by name and arguments."""
    diffs = []
    pairs = toolcalls.pair(rec_calls, rep_calls)
    for i, (a, b) in enumerate(pairs):
        where = f"{path}[{i}]"
        if b is None:
            diffs.append(Difference(where, a.name, None, FAILURE, f"tool call {a.name}() missing on replay"))
        elif a is None:
            diffs.append(Difference(where, None, b.name, FAILURE, f"unexpected tool call {b.name}() on replay"))
        elif a.name != b.name:
            diffs.append(
                Difference(
                    f"{where}.function.name",
                    a.name,
                    b.name,
                    FAILURE,
                    f"tool function renamed: recorded {a.name}(), replayed {b.name}()",
                )
            )
        elif a.arguments != b.arguments:
            diffs.append(
                Difference(
                    f"{where}.function.arguments",
                    a.arguments,
                    b.arguments,
                    FAILURE,
                    f"{a.name}() arguments: recorded {short(a.arguments)}, replayed {short(b.arguments)}",
                )
            )
    return diffs


USAGE_KEYS = (
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("total_tokens", "total_tokens"),
)


def match_usage(
    path: str, a: dict | None, b: dict | None, tolerance: float, keys: tuple[tuple[str, str], ...] = USAGE_KEYS
) -> list[Difference]:
    """Token counts must agree within a relative tolerance (0.10 = 10%).

    `keys` pairs each recorded count with the replayed one it is compared to (the same names by
    default; a run's prompt_tokens with a response's input_tokens in a migration).
    """
    if not isinstance(a, dict) or not isinstance(b, dict):
        return (
            []
            if (a is None) == (b is None)
            else [Difference(path, a, b, FAILURE, f"token usage: recorded {a!r}, replayed {b!r}")]
        )
    diffs = []
    for key, other in keys:
        x, y = a.get(key), b.get(other)
        if not isinstance(x, int) or not isinstance(y, int):
            continue
        if abs(y - x) > tolerance * max(abs(x), 1):
            change = f"{y / x:.2f}x" if x else "from 0"
            label = key if key == other else f"{key} -> {other}"
            diffs.append(
                Difference(
                    f"{path}.{key}",
                    x,
                    y,
                    FAILURE,
                    f"{label}: recorded {x}, replayed {y} ({change}, tolerance {tolerance:.0%})",
                )
            )
    return diffs


def match_latency(rec_ms: float | None, rep_ms: float | None, max_slowdown: float | None) -> list[Difference]:
    """Replayed duration must not exceed the recorded one by more than a factor (off when None)."""
    if max_slowdown is None or not rec_ms or rep_ms is None or rep_ms <= rec_ms * max_slowdown:
        return []
    return [
        Difference(
            "$.latency_ms",
            round(rec_ms, 1),
            round(rep_ms, 1),
            FAILURE,
            f"slower: {rep_ms:.0f} ms replayed vs {rec_ms:.0f} ms recorded ({rep_ms / rec_ms:.1f}x > {max_slowdown}x)",
        )
    ]


def match_status_sequence(run: str, rec: list[str], rep: list[str]) -> list[Difference]:
    """A run's status milestones (transient queued/in_progress/cancelling left out, repeats collapsed)."""
    a, b = milestones(rec), milestones(rep)
    if a == b:
        return []
    return [
        Difference(
            f"$.status_sequence.{run}",
            a,
            b,
            FAILURE,
            f"run {run} went {' -> '.join(a) or 'nowhere'} when recorded, {' -> '.join(b) or 'nowhere'} on replay",
        )
    ]


def milestones(statuses: list[str]) -> list[str]:
    """Statuses that do not depend on timing, consecutive repeats collapsed."""
    return _dedup([s for s in statuses if s not in TRANSIENT])


def diff_objects(path: str, a: Any, b: Any) -> list[Difference]:
    """Every other field of two objects, recursively; ids and timestamps skipped; warnings.

    A field one object lacks counts as null there.
    """
    return [
        Difference(p, x, y, WARNING, f"{p.removeprefix('$.')}: recorded {short(x)}, replayed {short(y)}")
        for p, x, y in json_diff(a, b, path, skip=_skipped, missing=None)
    ]


def _skipped(key: str) -> bool:
    return key in _SKIPPED or key == "id" or key.endswith(("_id", "_at"))


def compare_step(
    rec: Outcome, rep: Outcome, opts: MatchOptions, rec_ms: float | None = None, rep_ms: float | None = None
) -> list[Difference]:
    """Run every step matcher; a different HTTP status makes the body comparison moot."""
    diffs = match_status_code(rec, rep)
    if not diffs:
        diffs = (
            match_events(rec, rep) + match_runs(rec, rep, opts) + match_steps(rec, rep, opts) + match_messages(rec, rep)
        )
    diffs += match_latency(rec_ms, rep_ms, opts.max_slowdown)
    return drop_ignored(diffs, opts.ignore)


def drop_ignored(diffs: list[Difference], patterns: tuple[str, ...]) -> list[Difference]:
    """Leave out differences at (or under) any `--ignore` path; `[*]` matches any index."""
    if not patterns:
        return diffs
    regexes = [_path_regex(p) for p in patterns]
    return [d for d in diffs if not any(r.match(d.path) for r in regexes)]


def _path_regex(pattern: str) -> re.Pattern:
    pattern = pattern if pattern.startswith("$") else f"$.{pattern}"
    body = re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]").replace(r"\*", r"[^.\[]*")
    return re.compile(body + r"(?:$|[.\[])")


def _count(what: str, a: list[dict], b: list[dict], key: str | None = None) -> list[Difference]:
    if len(a) == len(b):
        return []
    desc = (lambda xs: [x.get(key) for x in xs]) if key else len
    return [
        Difference(
            f"$.{what}",
            desc(a),
            desc(b),
            FAILURE,
            f"{what}: recorded {len(a)}{_kinds(a, key)}, replayed {len(b)}{_kinds(b, key)}",
        )
    ]


def _kinds(objs: list[dict], key: str | None) -> str:
    return f" ({', '.join(str(o.get(key)) for o in objs)})" if key and objs else ""


def _status_severity(a: Any, b: Any) -> str:
    return WARNING if a in TRANSIENT and b in TRANSIENT else FAILURE


def _dedup(items: list[str]) -> list[str]:
    return [x for i, x in enumerate(items) if i == 0 or items[i - 1] != x]
