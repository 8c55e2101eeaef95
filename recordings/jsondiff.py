"""The one JSON diff: where two JSON values differ, as paths, for messages that say why.

Serve explains why a request matches no recorded one (`body.assistant_id: recorded ..., got
...`); replay reports the fields of a run or step that changed (`$.runs[0].instructions`). Both
walk the values with `json_diff` and word the result themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


class _Missing:
    """The value of a key that one side does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def json_diff(
    a: Any,
    b: Any,
    path: str = "$",
    *,
    skip: Callable[[str], bool] | None = None,
    missing: Any = MISSING,
) -> list[tuple[str, Any, Any]]:
    """Every place two JSON values differ, as `(path, a's value, b's value)`, in key order (pure).

    Objects are compared key by key (`path.key`), arrays of the same length item by item
    (`path[i]`); anything else is compared whole. A key one side lacks has the value `missing`
    there (`MISSING`, or e.g. None to treat an absent key like a null one). `skip(key)` leaves a
    key out at every depth.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(a.keys() | b.keys()):
            if skip is None or not skip(key):
                out += json_diff(a.get(key, missing), b.get(key, missing), f"{path}.{key}", skip=skip, missing=missing)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b)) for d in json_diff(x, y, f"{path}[{i}]", skip=skip, missing=missing)
        ]
    return [] if a == b else [(path, a, b)]


def short(value: Any, limit: int = 60) -> str:
    """A value as compact JSON for a one-line message, cut to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
