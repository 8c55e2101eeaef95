"""Consistent id mapping between a recording and what one client sees.

A recorded session's thread, run, step, message and tool-call ids are handed out as recorded
the first time the session is played; when it is played again (the same test suite run twice
against one server), each recorded id gets a fresh id of the same shape, so two clients never
share a thread. Assistant, file and vector-store ids are not mapped: they belong to the
account, not to the session.
"""

from __future__ import annotations

import re
import secrets
import string

# An OpenAI-style id token: prefix, underscore, letters and digits.
_TOKEN = re.compile(r"\b(?:thread|run|step|msg|call)_[A-Za-z0-9]+")
# The same token as a JSON string value (not a key such as "thread_id": ...).
_VALUE = re.compile(r'"((?:thread|run|step|msg|call)_[A-Za-z0-9]+)"(?!\s*:)')
_ALPHABET = string.ascii_letters + string.digits


def ids_in_json_text(text: str | None) -> set[str]:
    """Return the session-scoped ids that appear as string values in JSON (or SSE data) text."""
    return set(_VALUE.findall(text or ""))


class IdMap:
    """Recorded id <-> served id for one live session; `issued` is shared by the whole server."""

    def __init__(self, issued: set[str]) -> None:
        self._issued = issued
        self._to_served: dict[str, str] = {}
        self._to_recorded: dict[str, str] = {}

    def bind(self, recorded: str, served: str | None = None) -> str:
        """Map `recorded` to `served` (default: itself if never handed out, else a fresh id)."""
        if recorded in self._to_served:
            return self._to_served[recorded]
        if served is None:
            served = recorded if recorded not in self._issued else _fresh_like(recorded, self._issued)
        self._issued.add(served)
        self._to_served[recorded] = served
        self._to_recorded[served] = recorded
        return served

    def served(self, recorded: str | None) -> str | None:
        """The served id of a recorded id (unknown ids are returned unchanged)."""
        return self._to_served.get(recorded, recorded) if recorded else recorded

    def recorded(self, served: str | None) -> str | None:
        """The recorded id behind a served id (unknown ids are returned unchanged)."""
        return self._to_recorded.get(served, served) if served else served

    def to_served_text(self, text: str) -> str:
        """Rewrite every mapped recorded id in `text` (a JSON body, SSE stream or path)."""
        return _TOKEN.sub(lambda m: self._to_served.get(m.group(0), m.group(0)), text)

    def to_recorded_text(self, text: str) -> str:
        """Rewrite every served id in a client's `text` back to the recorded id."""
        return _TOKEN.sub(lambda m: self._to_recorded.get(m.group(0), m.group(0)), text)


def _fresh_like(recorded: str, taken: set[str]) -> str:
    """A random id with the prefix and length of `recorded` (at least 8 characters after `_`), not yet handed out."""
    prefix, _, tail = recorded.partition("_")
    while True:
        candidate = f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(max(len(tail), 8)))}"
        if candidate not in taken:
            return candidate
