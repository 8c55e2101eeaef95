"""Deterministic behaviour: what a run does, decided from the seed and the request's content.

Never from ids (they are fresh on every instance): the key is the seed, model, instructions,
tool names and the thread's user message texts, so replaying the same conversation against a
fresh simulator with the same seed yields the same outcome, tool calls and token usage.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

KEYWORDS = {
    "[fail]": "failed",
    "[incomplete]": "incomplete",
    "[expire]": "expired",
    "[slow]": "slow",
    "[complete]": "completed",
}
ERROR_CODES = ("server_error", "rate_limit_exceeded")
ERROR_MESSAGES = {
    "server_error": "Sorry, something went wrong.",
    "rate_limit_exceeded": "Rate limit reached. Please try again later.",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


class Dice:
    """Stable pseudo-random numbers from a key: same key and label, same number."""

    def __init__(self, *parts: object) -> None:
        self._key = json.dumps(parts, sort_keys=True, default=str)

    def int(self, label: str, low: int, high: int) -> int:
        """An integer in [low, high], fixed by the key and `label`."""
        digest = hashlib.sha256(f"{self._key}\x00{label}".encode()).digest()
        return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


@dataclass(frozen=True)
class ToolCallPlan:
    """One function call the run will request: the function's name and JSON arguments."""

    name: str
    arguments: str


@dataclass(frozen=True)
class Plan:
    """A run's decided behaviour; the engine plays it out over time."""

    outcome: str  # completed | failed | incomplete | expired | slow
    error_code: str | None
    incomplete_reason: str | None
    tool_calls: tuple[ToolCallPlan, ...]
    base_prompt_tokens: int
    token_factor: float
    dice: Dice


def choose_outcome(dice: Dice, metadata: dict, last_user_text: str, weights: dict) -> str:
    """The hinted outcome (metadata `sim_outcome`, then a keyword), else a weighted pick."""
    hinted = (metadata or {}).get("sim_outcome")
    if hinted in KEYWORDS.values():
        return hinted
    lowered = last_user_text.lower()
    for keyword, outcome in KEYWORDS.items():
        if keyword in lowered:
            return outcome
    names = sorted(k for k, v in weights.items() if v > 0)
    roll = dice.int("outcome", 1, sum(weights[n] for n in names))
    for name in names:
        roll -= weights[name]
        if roll <= 0:
            return name
    return names[-1]


def plan_run(
    *,
    seed: int,
    model: str,
    instructions: str,
    tools: list[dict],
    user_texts: list[str],
    metadata: dict,
    weights: dict,
    tool_choice: object = "auto",
    parallel_tool_calls: bool = True,
    max_prompt_tokens: int | None = None,
    max_completion_tokens: int | None = None,
    forced_outcome: str | None = None,
    renames: dict[str, str] | None = None,
    token_factor: float = 1.0,
) -> Plan:
    """Decide a run's (or a response's) outcome, function calls and token base from its content.

    `tools` may be in the Assistants shape (`{"type": "function", "function": {...}}`) or the
    Responses shape (`{"type": "function", "name": ...}`): the same functions give the same plan.
    """
    functions = function_specs(tools)
    dice = Dice(seed, model, instructions, sorted(f.get("name", "") for f in functions), user_texts)
    last = user_texts[-1] if user_texts else ""
    outcome = forced_outcome or choose_outcome(dice, metadata, last, weights)
    calls: tuple[ToolCallPlan, ...] = ()
    if functions and tool_choice != "none" and outcome != "failed":
        calls = _tool_calls(dice, functions, last, parallel_tool_calls, renames or {})
    reason = None
    if outcome == "incomplete":
        only_prompt = max_prompt_tokens is not None and max_completion_tokens is None
        reason = "max_prompt_tokens" if only_prompt else "max_completion_tokens"
    text_len = len(instructions) + sum(len(t) for t in user_texts)
    return Plan(
        outcome=outcome,
        error_code=ERROR_CODES[dice.int("error", 0, 1)] if outcome == "failed" else None,
        incomplete_reason=reason,
        tool_calls=calls,
        base_prompt_tokens=60 + text_len // 4 + dice.int("prompt", 0, 40),
        token_factor=token_factor,
        dice=dice,
    )


def function_specs(tools: list[dict]) -> list[dict]:
    """The function definitions (name, parameters, ...) of `tools`, nested or flat."""
    specs = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        spec = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if spec.get("name"):
            specs.append(spec)
    return specs


def step_usage(plan: Plan, label: str, extra_prompt: int, completion_text: str) -> dict:
    """Token usage of one step: prompt grows with context, completion with generated text."""
    prompt = plan.base_prompt_tokens + extra_prompt
    completion = 5 + len(completion_text) // 4 + plan.dice.int(label, 0, 30)
    prompt, completion = round(prompt * plan.token_factor), round(completion * plan.token_factor)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def reply_text(plan: Plan, model: str, user_texts: list[str], tool_outputs: list[str]) -> str:
    """The assistant message a completed run writes, derived from the conversation."""
    words = _WORD.findall(user_texts[-1] if user_texts else "") or ["your", "request"]
    topic = " ".join(words[:6])
    text = f"Here is what I found about {topic}."
    if tool_outputs:
        text += " The tools returned " + "; ".join(o[:80] for o in tool_outputs) + "."
    return text + f" (simulated {model}, variant {plan.dice.int('reply', 1, 999)})"


def split_text(text: str, parts: int = 3) -> list[str]:
    """Split `text` into up to `parts` consecutive non-empty chunks (for streamed deltas)."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _tool_calls(
    dice: Dice, functions: list[dict], text: str, parallel: bool, renames: dict[str, str]
) -> tuple[ToolCallPlan, ...]:
    count = dice.int("calls", 1, 2) if parallel else 1
    calls = []
    for i in range(count):
        function = functions[dice.int(f"fn{i}", 0, len(functions) - 1)]
        name = function.get("name", "function")
        args = _arguments(dice, f"args{i}", function.get("parameters") or {}, text)
        calls.append(ToolCallPlan(name=renames.get(name, name), arguments=json.dumps(args)))
    return tuple(calls)


def _names(text: str) -> list[str]:
    """Capitalized words that do not start a sentence ("Paris", "San Francisco"): likely names."""
    names: list[str] = []
    for sentence in re.split(r"[.!?]\s+", text):
        words = _WORD.findall(sentence)[1:]
        run: list[str] = []
        for word in words + [""]:
            if word[:1].isupper():
                run.append(word)
            elif run:
                names.append(" ".join(run))
                run = []
    return names


def _arguments(dice: Dice, label: str, schema: dict, text: str) -> dict:
    """Arguments for a function's JSON-schema parameters, filled from the message text."""
    properties = schema.get("properties") or {}
    names = list(properties)
    words = _names(text) or _WORD.findall(text) or ["unknown"]
    args: dict = {}
    for i, name in enumerate(names):
        prop = properties[name] if isinstance(properties[name], dict) else {}
        kind = prop.get("type", "string")
        if prop.get("enum"):
            args[name] = prop["enum"][dice.int(f"{label}.{name}", 0, len(prop["enum"]) - 1)]
        elif kind in ("integer", "number"):
            args[name] = dice.int(f"{label}.{name}", 1, 100)
        elif kind == "boolean":
            args[name] = bool(dice.int(f"{label}.{name}", 0, 1))
        elif kind == "array":
            args[name] = words[:2]
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = words[(i + dice.int(f"{label}.{name}", 0, 3)) % len(words)]
    return args
