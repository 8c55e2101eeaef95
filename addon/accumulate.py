"""Rebuild a run step's ``step_details`` from the ``thread.run.step.delta`` events of a stream.

Deltas follow the API's streaming convention (the one the openai SDK's ``accumulate_delta``
implements): list items carry an ``index`` and merge with the earlier item of that index;
strings such as ``function.arguments`` or ``code_interpreter.input`` are concatenated; ids,
types and names are set once; other values are replaced by the newest non-null one.
"""

from __future__ import annotations

from typing import Any

_SET_ONCE = frozenset({"id", "type", "name", "index"})


def _merge_dict(acc: dict, delta: dict) -> dict:
    for key, value in delta.items():
        current = acc.get(key)
        if value is None:
            acc.setdefault(key, None)
        elif current is None:
            acc[key] = _fresh(value)
        elif key in _SET_ONCE:
            continue
        elif isinstance(current, str) and isinstance(value, str):
            acc[key] = current + value
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge_dict(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            _merge_list(current, value)
        else:
            acc[key] = _fresh(value)
    return acc


def _merge_list(acc: list, delta: list) -> list:
    for item in delta:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            acc.append(_fresh(item))  # nothing to merge with: keep it as it came
            continue
        for existing in acc:
            if isinstance(existing, dict) and existing.get("index") == index:
                _merge_dict(existing, item)
                break
        else:
            acc.append(_merge_dict({}, item))
    return acc


def _fresh(value: Any) -> Any:
    """A copy of a delta value, so later merges never alter the parsed event they came from."""
    if isinstance(value, dict):
        return _merge_dict({}, value)
    if isinstance(value, list):
        return _merge_list([], value)
    return value


def _index(item: Any) -> int:
    index = item.get("index") if isinstance(item, dict) else None
    return index if isinstance(index, int) else 1 << 62


def _public(value: Any) -> Any:
    """The accumulated value in the shape of a full object: list items in order, without ``index``."""
    if isinstance(value, dict):
        return {key: _public(item) for key, item in value.items() if key != "index"}
    if isinstance(value, list):
        return [_public(item) for item in sorted(value, key=_index)]
    return value


class StepDeltas:
    """The accumulated step details of every step seen in one stream, keyed by step id."""

    def __init__(self) -> None:
        self._steps: dict[str, dict] = {}

    def add(self, step_id: str, delta: Any) -> None:
        """Merge one event's ``delta`` (the object holding ``step_details``) into its step."""
        if isinstance(delta, dict) and isinstance(delta.get("step_details"), dict):
            _merge_dict(self._steps.setdefault(step_id, {}), delta["step_details"])

    def details(self, step_id: str) -> dict | None:
        """Return the step details accumulated so far for a step, or None if it had no deltas."""
        acc = self._steps.get(step_id)
        return None if acc is None else _public(acc)

    def merged(self, step_id: str, own: Any) -> Any:
        """Return a step snapshot's own ``step_details`` completed by the accumulated deltas.

        The snapshot's own values win (a ``step.completed`` event carries the full details); the
        deltas fill in what it lacks, notably the tool calls an in-progress snapshot lists as [].
        """
        acc = self._steps.get(step_id)
        if acc is None or not isinstance(own, dict):
            return own if acc is None else _public(acc)
        merged = dict(own)
        for key, value in acc.items():
            own_value = own.get(key)
            if key == "tool_calls" and isinstance(own_value, list) and isinstance(value, list):
                known = len(own_value)
                merged[key] = own_value + _public([c for c in value if _index(c) >= known])
            elif own_value is None:
                merged[key] = _public(value)
        return merged
