"""Trace and span ids derived from recorded ids, so exporting the same recording twice gives the same ids.

An id is the leading bytes of SHA-256 over a namespace and the recorded ids: 16 bytes for a trace
(one per thread), 8 for a span. A zero id is invalid in OpenTelemetry; SHA-256 gives one with
negligible probability, and it is mapped to 1 then.
"""

from __future__ import annotations

import hashlib


def _digest(kind: str, parts: tuple[str, ...], size: int) -> int:
    text = "\x1f".join(("runtap", kind, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big") or 1


def trace_id(key: str) -> int:
    """The 128-bit trace id of one session (a thread id, or the key of a thread-less run or exchange)."""
    return _digest("trace", (key,), 16)


def span_id(kind: str, *recorded_ids: str) -> int:
    """The 64-bit id of the span of one recorded thing, e.g. `span_id("run", run_id)`."""
    return _digest(kind, recorded_ids, 8)
