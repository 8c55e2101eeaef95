"""Request keys and the pure matcher that says why a request differs from a recorded one.

A key is what identifies a request for matching: the operation, the ids in its path, its
query parameters and its normalized JSON body, all in recorded ids. Normalizing drops what
does not change the answer: key order, `null` values and `"stream": false` (the SDK sends it
on polling helpers, other clients omit it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from runtap.recordings.jsondiff import MISSING, json_diff, short

_MAX_REASONS = 3


@dataclass(frozen=True, slots=True)
class RequestKey:
    """What a request is matched on (ids already mapped to recorded ids)."""

    operation: str
    thread_id: str | None
    run_id: str | None
    step_id: str | None
    query: tuple[tuple[str, str], ...]
    body: object

    @property
    def is_read(self) -> bool:
        """Reads (GETs) may repeat; writes change state and are consumed once."""
        return self.operation in {"getRun", "listRuns", "listRunSteps", "getRunStep"}


def normalize_body(text: str | None) -> object:
    """Parse a JSON request body into a comparable value; non-JSON text is kept as a string."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None and not (k == "stream" and v is False)}
    return value


def normalize_query(query: str) -> tuple[tuple[str, str], ...]:
    """Sorted query parameters (repeated keys such as `include[]` kept)."""
    return tuple(sorted(parse_qsl(query, keep_blank_values=True)))


def differences(recorded: RequestKey, got: RequestKey) -> list[str]:
    """Why `got` does not match `recorded`: short human reasons, most important first (pure)."""
    reasons = []
    if recorded.operation != got.operation:
        reasons.append(f"operation: recorded {recorded.operation}, got {got.operation}")
    for name in ("thread_id", "run_id", "step_id"):
        want, have = getattr(recorded, name), getattr(got, name)
        if want != have:
            reasons.append(f"{name}: recorded {want}, got {have}")
    if recorded.query != got.query:
        reasons.append(f"query: recorded {_query_text(recorded.query)}, got {_query_text(got.query)}")
    for path, want, have in json_diff(recorded.body, got.body, "body"):
        if have is MISSING:
            reasons.append(f"{path}: recorded {short(want)}, missing in request")
        elif want is MISSING:
            reasons.append(f"{path}: not in recording, got {short(have)}")
        else:
            reasons.append(f"{path}: recorded {short(want)}, got {short(have)}")
    return reasons


def explain(recorded: RequestKey, got: RequestKey) -> str:
    """`differences` as one line (at most a few reasons)."""
    reasons = differences(recorded, got)
    more = len(reasons) - _MAX_REASONS
    return "; ".join(reasons[:_MAX_REASONS]) + (f"; and {more} more" if more > 0 else "")


def closeness(recorded: RequestKey, got: RequestKey) -> tuple[int, int, int]:
    """A sort key: smaller is closer (same operation first, then same path ids, then fewer diffs)."""
    ids_differ = sum(getattr(recorded, n) != getattr(got, n) for n in ("thread_id", "run_id", "step_id"))
    return (recorded.operation != got.operation, ids_differ, len(differences(recorded, got)))


def _query_text(query: tuple[tuple[str, str], ...]) -> str:
    return "&".join(f"{k}={v}" for k, v in query) or "(none)"
