"""Hold times: how long a run stays in each status, chosen per run so tests know the truth.

Run metadata `sim_hold_ms` names milliseconds per status, one group per turn of the run (the
first turn, then the turn after tool outputs), groups separated by `;`:

    sim_hold_ms = "queued=150,in_progress=400;queued=20,in_progress=200"

`queued` runs from entering queued to in_progress; `in_progress` from entering in_progress to
the next status, whatever the turn streams meanwhile; `cancelling` from a cancel to cancelled.
A turn past the last group uses the last group; a status a group does not name keeps the
simulator's default pacing (`run_ms`). `requires_action` lasts until the client submits.
"""

from __future__ import annotations

from runtap.simulator.objects import ApiError

HOLD_KEY = "sim_hold_ms"
HELD = ("queued", "in_progress", "cancelling")


def parse_holds(metadata: dict | None) -> tuple[dict[str, float], ...]:
    """The hold groups in run metadata (empty without `sim_hold_ms`); a 400 for a bad spec."""
    spec = (metadata or {}).get(HOLD_KEY)
    if spec is None:
        return ()
    groups = []
    for text in str(spec).split(";"):
        group: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            status, sep, value = part.partition("=")
            try:
                ms = float(value)
            except ValueError:
                ms = -1.0
            if not sep or status.strip() not in HELD or not 0 <= ms <= 3_600_000:
                raise ApiError(
                    400,
                    f"Invalid {HOLD_KEY} part {part!r}: expected STATUS=MS with STATUS one of {', '.join(HELD)}.",
                    param="metadata",
                )
            group[status.strip()] = ms
        groups.append(group)
    return tuple(groups)


def hold_ms(holds: tuple[dict[str, float], ...], turn: int, status: str) -> float | None:
    """How long the run holds `status` in `turn` (0: first), or None for the default pacing."""
    if not holds:
        return None
    return holds[min(turn, len(holds) - 1)].get(status)
