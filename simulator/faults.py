"""Fault injection: the compact `--fault` syntax, its validation, and request matching.

A fault spec is `KIND=VALUE` followed by optional comma-separated filters:

    status=429|500|503     answer with that HTTP status and an OpenAI error body
    delay=MS               wait MS milliseconds before sending the response headers
    cut=N                  close a streamed response's connection after N SSE events
    outcome=NAME           force matching runs' (responses') outcome (completed|failed|incomplete|expired|slow)
    rename=OLD:NEW         generated tool calls to function OLD call NEW instead
    tokens=FACTOR          multiply matching runs' (responses') token usage by FACTOR

    op=NAME[|NAME...]      only these operations (createRun, getRun, createResponse, getResponse, ...)
    match=TEXT             only requests whose path or body contains TEXT (for outcome, rename
                           and tokens: the run's request or its thread's messages; the response's
                           request or its conversation's messages)
    count=N                apply to the first N matching requests (runs) only; default: all
    skip=N                 let the first N matching requests pass untouched
    retry_after=S          the `retry-after` header of a 429 (default 1)

Example: `status=429,op=createRun,count=1` or `outcome=failed,match=Paris`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runtap.errors import RuntapError

HTTP_KINDS = ("status", "delay", "cut")
BEHAVIOUR_KINDS = ("outcome", "rename", "tokens")
STATUS_CODES = (429, 500, 503)
OUTCOMES = ("completed", "failed", "incomplete", "expired", "slow")
OPERATIONS = (
    "createAssistant",
    "getAssistant",
    "createThread",
    "getThread",
    "createMessage",
    "listMessages",
    "createRun",
    "createThreadAndRun",
    "listRuns",
    "getRun",
    "modifyRun",
    "cancelRun",
    "submitToolOutputsToRun",
    "listRunSteps",
    "getRunStep",
    "createResponse",
    "getResponse",
    "cancelResponse",
    "deleteResponse",
    "listInputItems",
    "createConversation",
    "getConversation",
    "updateConversation",
    "deleteConversation",
    "createConversationItems",
    "listConversationItems",
    "getConversationItem",
    "deleteConversationItem",
)


@dataclass
class Fault:
    """One parsed fault: what it does (`kind`, `value`) and which requests it hits."""

    kind: str
    value: object
    ops: tuple[str, ...] = ()
    match: str | None = None
    count: int | None = None
    skip: int = 0
    retry_after: int = 1
    spec: str = ""
    seen: int = field(default=0, compare=False)
    applied: int = field(default=0, compare=False)

    def matches(self, op: str, text: str) -> bool:
        """Whether this fault applies to a request of `op` whose path/body is `text`.

        Counts the match, so call it once per request (or run) and only when it would act.
        """
        if self.ops and op not in self.ops:
            return False
        if self.match is not None and self.match not in text:
            return False
        if self.count is not None and self.applied >= self.count:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.applied += 1
        return True


def parse_fault(spec: str) -> Fault:
    """Parse one `--fault` spec (see the module docstring); raise `RuntapError` if malformed."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise RuntapError("empty --fault spec")
    kind, value = _pair(parts[0], spec)
    fault = Fault(kind=kind, value=_parse_value(kind, value, spec), spec=spec)
    for part in parts[1:]:
        key, raw = _pair(part, spec)
        if key == "op":
            ops = tuple(o for o in raw.split("|") if o)
            unknown = [o for o in ops if o not in OPERATIONS]
            if unknown or not ops:
                raise RuntapError(f"--fault {spec!r}: unknown operation {'|'.join(unknown)!r}")
            fault.ops = ops
        elif key == "match":
            fault.match = raw
        elif key in ("count", "skip", "retry_after"):
            setattr(fault, key, _int(raw, f"--fault {spec!r}: {key}", minimum=0))
        else:
            raise RuntapError(f"--fault {spec!r}: unknown filter {key!r}")
    return fault


def behaviour_overrides(faults: list[Fault], op: str, text: str) -> tuple[str | None, dict[str, str], float]:
    """The forced outcome, function renames and token factor that `faults` impose on a new
    run or response of `op` whose request and user messages are `text` (counts the matches)."""
    forced, renames, factor = None, {}, 1.0
    for fault in faults:
        if fault.kind in BEHAVIOUR_KINDS and fault.matches(op, text):
            if fault.kind == "outcome":
                forced = fault.value
            elif fault.kind == "rename":
                renames[fault.value[0]] = fault.value[1]
            else:
                factor *= fault.value
    return forced, renames, factor


def parse_faults(specs: list[str | Fault] | tuple[str | Fault, ...]) -> list[Fault]:
    """Parse a list of specs; `Fault` objects pass through unchanged."""
    return [s if isinstance(s, Fault) else parse_fault(s) for s in specs]


def _pair(part: str, spec: str) -> tuple[str, str]:
    key, sep, value = part.partition("=")
    if not sep or not key.strip():
        raise RuntapError(f"--fault {spec!r}: expected KEY=VALUE, got {part!r}")
    return key.strip(), value.strip()


def _parse_value(kind: str, value: str, spec: str) -> object:
    where = f"--fault {spec!r}"
    if kind == "status":
        code = _int(value, f"{where}: status", minimum=0)
        if code not in STATUS_CODES:
            raise RuntapError(f"{where}: status must be one of {', '.join(map(str, STATUS_CODES))}")
        return code
    if kind == "delay":
        return _int(value, f"{where}: delay", minimum=0)
    if kind == "cut":
        return _int(value, f"{where}: cut", minimum=0)
    if kind == "outcome":
        if value not in OUTCOMES:
            raise RuntapError(f"{where}: outcome must be one of {', '.join(OUTCOMES)}")
        return value
    if kind == "rename":
        old, sep, new = value.partition(":")
        if not sep or not old or not new:
            raise RuntapError(f"{where}: rename expects OLD:NEW")
        return (old, new)
    if kind == "tokens":
        try:
            factor = float(value)
        except ValueError:
            factor = -1.0
        if factor < 0:
            raise RuntapError(f"{where}: tokens expects a non-negative number")
        return factor
    kinds = ", ".join(HTTP_KINDS + BEHAVIOUR_KINDS)
    raise RuntapError(f"{where}: unknown fault kind {kind!r} (expected one of {kinds})")


def _int(value: str, what: str, minimum: int) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise RuntapError(f"{what} expects an integer >= {minimum}, got {value!r}")
    return int(value)
