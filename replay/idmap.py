"""Recorded id -> replayed id, learned from responses, applied to later requests.

The target assigns new thread, run, step, message and tool-call ids. After each step the recorded
and replayed observations are paired (objects of a kind by position, tool calls by function name
and arguments) and every id pair is learned; later request paths, query strings and JSON bodies
(`tool_outputs[].tool_call_id` included) are rewritten. Ids the target must already know
(assistants, files, vector stores) stay as recorded unless preset with `--map-id`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from runtap.replay import toolcalls
from runtap.replay.observe import KINDS, Observation, required_tool_calls, step_tool_calls

# Fields that reference objects the session created; assistant/file ids are deliberately absent.
_REFERENCE_KEYS = {"id", "thread_id", "run_id", "step_id", "message_id", "tool_call_id"}


class IdMap:
    """The mapping for one session; `expected` holds recorded ids the replay must learn first."""

    def __init__(self, preset: dict[str, str] | None = None, expected: set[str] | None = None) -> None:
        self._map: dict[str, str] = dict(preset or {})
        self.expected: set[str] = set(expected or ())

    def get(self, old: str) -> str:
        """The replayed id for a recorded one (itself when unknown)."""
        return self._map.get(old, old)

    def items(self) -> dict[str, str]:
        """A copy of every mapping learned so far."""
        return dict(self._map)

    def learn(self, recorded: Observation, replayed: Observation) -> None:
        """Pair the objects two observations showed and learn their ids (first mapping wins)."""
        for kind in KINDS.values():
            for rec, rep in zip(recorded.of(kind), replayed.of(kind)):
                self._learn_value(rec, rep)

    def missing(self, text: str) -> list[str]:
        """Recorded ids in a request (path or body) the replay never learned a new id for."""
        return sorted(old for old in self.expected if old not in self._map and old in text)

    def rewrite_target(self, target: str) -> str:
        """Rewrite ids in a recorded path and query string."""
        parts = urlsplit(target)
        path = "/".join(self.get(seg) for seg in parts.path.split("/"))
        if not parts.query:
            return path
        query = urlencode([(k, self.get(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
        return f"{path}?{query}"

    def rewrite_body(self, body: str | None) -> str | None:
        """Rewrite ids in a JSON request body (every string value equal to a mapped id)."""
        if not body:
            return body
        try:
            value = json.loads(body)
        except ValueError:
            return body
        return json.dumps(self._rewrite(value), separators=(",", ":"))

    def _rewrite(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.get(value)
        if isinstance(value, list):
            return [self._rewrite(v) for v in value]
        if isinstance(value, dict):
            return {k: self._rewrite(v) for k, v in value.items()}
        return value

    def _learn(self, old: Any, new: Any) -> None:
        if isinstance(old, str) and isinstance(new, str) and old and new and old not in self._map:
            self._map[old] = new

    def _learn_value(self, rec: Any, rep: Any) -> None:
        if isinstance(rec, dict) and isinstance(rep, dict):
            for key in _REFERENCE_KEYS & rec.keys() & rep.keys():
                self._learn(rec[key], rep[key])
            self._learn_tool_calls(rec, rep)
            for key in rec.keys() & rep.keys():
                if key not in ("tool_calls", "required_action"):
                    self._learn_value(rec[key], rep[key])
        elif isinstance(rec, list) and isinstance(rep, list):
            for a, b in zip(rec, rep):
                self._learn_value(a, b)

    def _learn_tool_calls(self, rec: dict, rep: dict) -> None:
        """Tool calls pair by function name and arguments, not only by position."""
        if rec.get("object") == "thread.run":
            calls = (required_tool_calls(rec), required_tool_calls(rep))
        else:
            calls = (step_tool_calls(rec), step_tool_calls(rep))
        for a, b in toolcalls.pair(
            [toolcalls.from_raw(c) for c in calls[0]], [toolcalls.from_raw(c) for c in calls[1]]
        ):
            if a is not None and b is not None:
                self._learn(a.id, b.id)
