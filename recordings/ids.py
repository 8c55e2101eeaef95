"""The one id mapper: recorded id <-> the id a live counterpart uses, applied to any text.

A recorded session's threads, runs, steps, messages and tool calls have ids another server (or
another play of the recording) does not share. `IdMap` holds both directions of that mapping
for one session and rewrites whole ids wherever they appear: paths, query strings, JSON bodies
and SSE streams, whatever the ids look like. Two ways to fill it:

- replay `learn`s from responses: the recorded and the replayed answer are walked side by side,
  objects paired by position and tool calls by function name and arguments, and each id pair is
  kept (the first mapping wins); ids the target already knows by other names are preset.
- serve `bind`s: a recorded id is handed out as itself the first time, and as a fresh id of the
  same shape once another session of the same server has it (`issued` is shared by the server).

Assistant, file and vector-store ids belong to the account, not to a session: they are never
learned or collected, only preset.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from runtap.recordings import toolcalls

# Fields that name objects a session creates (assistant and file ids are deliberately absent).
SESSION_ID_KEYS = frozenset({"id", "thread_id", "run_id", "step_id", "message_id", "tool_call_id"})
_ID_CHAR = r"[\w-]"  # what may continue an id: a match must be a whole id, not part of a longer one
_ALPHABET = string.ascii_letters + string.digits


def session_ids(value: Any) -> set[str]:
    """Every id a JSON value names under a session field (`id`, `run_id`, ...), at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SESSION_ID_KEYS and isinstance(item, str) and item:
                found.add(item)
            else:
                found |= session_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= session_ids(item)
    return found


class IdMap:
    """Recorded id <-> new id for one session.

    `expected` names recorded ids that must be learned before a request may use them (replay);
    `issued` is the set of ids already handed out, shared by every session of one server (serve).
    """

    def __init__(
        self,
        preset: dict[str, str] | None = None,
        *,
        expected: set[str] | None = None,
        issued: set[str] | None = None,
    ) -> None:
        self._new: dict[str, str] = {}
        self._old: dict[str, str] = {}
        self._patterns: dict[bool, re.Pattern | None] = {}
        self.expected: set[str] = set(expected or ())
        self._issued = issued if issued is not None else set()
        for old, new in (preset or {}).items():
            self._add(old, new)

    def get(self, old: str) -> str:
        """The new id of a recorded one (itself when unknown)."""
        return self._new.get(old, old)

    def recorded(self, new: str | None) -> str | None:
        """The recorded id behind a new one (itself when unknown)."""
        return self._old.get(new, new) if new else new

    def items(self) -> dict[str, str]:
        """A copy of every recorded -> new mapping so far."""
        return dict(self._new)

    def missing(self, text: str) -> list[str]:
        """Expected recorded ids that `text` mentions but that have no new id yet."""
        return sorted(old for old in self.expected if old not in self._new and old in text)

    def rewrite(self, text: str | None) -> str | None:
        """`text` with every mapped recorded id replaced by its new id."""
        return self._sub(text, forward=True)

    def restore(self, text: str | None) -> str | None:
        """`text` with every new id replaced by the recorded id it stands for."""
        return self._sub(text, forward=False)

    def bind(self, old: str, new: str | None = None) -> str:
        """Map `old` to `new`; by default to itself if never handed out, else to a fresh id like it."""
        if old in self._new:
            return self._new[old]
        if new is None:
            new = old if old not in self._issued else fresh_like(old, self._issued)
        self._add(old, new)
        return new

    def learn(self, recorded: Any, replayed: Any) -> None:
        """Pair two JSON values side by side and learn every id pair they show (first mapping wins)."""
        if isinstance(recorded, dict) and isinstance(replayed, dict):
            for key in SESSION_ID_KEYS & recorded.keys() & replayed.keys():
                self._learn_id(recorded[key], replayed[key])
            self._learn_tool_calls(recorded, replayed)
            for key in recorded.keys() & replayed.keys():
                if key not in ("tool_calls", "required_action"):
                    self.learn(recorded[key], replayed[key])
        elif isinstance(recorded, list) and isinstance(replayed, list):
            for a, b in zip(recorded, replayed):
                self.learn(a, b)

    def _learn_tool_calls(self, recorded: dict, replayed: dict) -> None:
        """Tool calls pair by function name and arguments, not only by position."""
        calls = toolcalls.run_tool_calls if recorded.get("object") == "thread.run" else toolcalls.step_tool_calls
        for a, b in toolcalls.pair(calls(recorded), calls(replayed)):
            if a is not None and b is not None:
                self._learn_id(a.id, b.id)

    def _learn_id(self, old: Any, new: Any) -> None:
        if isinstance(old, str) and isinstance(new, str) and old and new and old not in self._new:
            self._add(old, new)

    def _add(self, old: str, new: str) -> None:
        self._new[old] = new
        self._old.setdefault(new, old)
        self._issued.add(new)
        self._patterns.clear()

    def _sub(self, text: str | None, *, forward: bool) -> str | None:
        if not text:
            return text
        if forward not in self._patterns:
            table = self._new if forward else self._old
            changed = sorted((k for k, v in table.items() if k != v), key=len, reverse=True)
            alternatives = "|".join(map(re.escape, changed))
            self._patterns[forward] = (
                re.compile(f"(?<!{_ID_CHAR})(?:{alternatives})(?!{_ID_CHAR})") if changed else None
            )
        pattern = self._patterns[forward]
        if pattern is None:
            return text
        table = self._new if forward else self._old
        return pattern.sub(lambda m: table[m.group(0)], text)


def fresh_like(old: str, taken: set[str]) -> str:
    """A random id shaped like `old`, not in `taken`: the prefix up to the first `_` kept, each
    letter or digit after it replaced by a random one, at least 8 characters after the prefix."""
    prefix, sep, tail = old.partition("_") if "_" in old else ("", "", old)
    while True:
        fresh = "".join(secrets.choice(_ALPHABET) if c.isalnum() else c for c in tail.ljust(8, "x"))
        if prefix + sep + fresh not in taken:
            return prefix + sep + fresh
