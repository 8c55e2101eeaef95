"""The simulator's configuration (`SimConfig`) and the `--assistants FILE` loader."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from runtap.errors import RuntapError
from runtap.simulator.faults import OUTCOMES, Fault, parse_faults

DEFAULT_WEIGHTS = {"completed": 85, "failed": 8, "incomplete": 7}


@dataclass
class SimConfig:
    """Everything that shapes what the simulator serves.

    Times are milliseconds. `run_ms` is one turn of a run (queued + in_progress); `slow` runs
    take `slow_factor` times longer; a run left in `requires_action` expires after `expire_ms`.
    `assistants` preloads assistants with fixed ids (dicts with id, model, instructions, tools);
    `faults` takes `Fault` objects or `--fault` spec strings (parsed and validated here).
    `outcome_weights` chooses outcomes for runs without a hint (deterministically by content).
    """

    seed: int = 0
    latency_ms: int = 0
    run_ms: int = 300
    event_gap_ms: int = 5
    poll_after_ms: int = 50
    expire_ms: int = 600_000
    slow_factor: float = 10.0
    default_model: str = "gpt-4o"
    strict_assistants: bool = False
    assistants: list[dict] = field(default_factory=list)
    faults: list[Fault | str] = field(default_factory=list)
    outcome_weights: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    ground_truth_path: str | None = None

    @classmethod
    def from_command_line(
        cls, *, assistants_file: str | None, outcome_weights: str, faults: tuple[str, ...], **options
    ) -> SimConfig:
        """`runtap simulate`'s options as given: the assistants file loaded (the demo's always
        added), outcome weights parsed, every other option by its field name."""
        from runtap.simulator.demo_assistants import with_demo_assistants

        assistants = with_demo_assistants(load_assistants(assistants_file) if assistants_file else [])
        return cls(
            assistants=assistants, outcome_weights=parse_weights(outcome_weights), faults=list(faults), **options
        )

    def __post_init__(self) -> None:
        for name in ("latency_ms", "run_ms", "event_gap_ms", "poll_after_ms", "expire_ms"):
            if int(getattr(self, name)) < 0:
                raise RuntapError(f"{name} must be >= 0")
        self.faults = parse_faults(self.faults)
        self.assistants = [_check_assistant(a, i) for i, a in enumerate(self.assistants)]
        bad = [k for k in self.outcome_weights if k not in OUTCOMES]
        if bad or not any(v > 0 for v in self.outcome_weights.values()):
            raise RuntapError(f"outcome weights need positive weights for {', '.join(OUTCOMES)}")


def load_assistants(path: str | Path) -> list[dict]:
    """Read a JSON list of assistants ({id, model, instructions, tools}) for preloading."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuntapError(f"cannot read assistants file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RuntapError(f"assistants file {path} is not valid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise RuntapError(f"assistants file {path} must hold a JSON list")
    return data


def parse_weights(text: str) -> dict[str, int]:
    """Parse `completed=85,failed=8,incomplete=7` into a weights dict."""
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in OUTCOMES or not value.isdigit():
            raise RuntapError(f"bad outcome weight {part!r} (expected OUTCOME=INT)")
        weights[name] = int(value)
    return weights


def _check_assistant(item: object, index: int) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise RuntapError(f"assistant #{index} needs a string 'id'")
    tools = item.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RuntapError(f"assistant {item['id']}: 'tools' must be a list of objects")
    return item
