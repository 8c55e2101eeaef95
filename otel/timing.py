"""When each span starts and ends: the proxy's clock where it saw the moment, the API's own
timestamps (whole seconds) where it did not, and a child never outside its run's span.
"""

from __future__ import annotations


def lifetime_window(obj: dict) -> tuple[int, int]:
    """From the request that created the run or response (its first sighting) to its first
    terminal status.

    One first seen more than a second after the API's `created_at` (whole seconds) was created
    unobserved: it starts at `created_at` then. One never seen ending ends at its last sighting.
    """
    start = obj.get("first_request_at") or obj["first_observed_at"]
    created = obj.get("created_at")
    if created is not None and created + 1_000_000_000 < start:
        start = created
    end = obj.get("ended_at") or obj.get("last_observed_at") or start
    return start, max(start, end)


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


def step_window(step: dict, run_start: int, run_end: int) -> tuple[int, int, bool]:
    """A step's span and whether both ends were observed: observed times when seen live (streams,
    polls), else the API's own (whole seconds, e.g. steps listed after the run ended), within the
    run's span."""
    start, end = step.get("in_progress_at"), step.get("done_at")
    live = start is not None and start <= run_end and end is not None and end <= run_end
    if start is None or start > run_end:
        start = step.get("created_at") or run_start
    if end is None or end > run_end:
        api_end = {"completed": "completed_at", "failed": "failed_at", "cancelled": "cancelled_at"}
        end = step.get(api_end.get(step.get("status"), "")) or run_end
    start = _clamp(start, run_start, run_end)
    return start, _clamp(end, start, run_end), live


def tool_window(tool: dict, step: tuple[int, int, bool] | None, transitions: list[dict], run: tuple[int, int]):
    """A function call runs from the run's required_action to the client's submit; a tool the
    server runs (code_interpreter, file_search) spans its step."""
    if tool.get("type") not in (None, "function"):
        return step[:2] if step else run
    start = tool.get("required_at") or tool.get("first_observed_at") or run[0]
    end = tool.get("submitted_at")
    if end is None:  # never submitted: until the run left requires_action, or ended
        left = [t["observed_at"] for t in transitions if t["from_status"] == "requires_action"]
        end = min((t for t in left if t >= start), default=run[1])
    return start, max(start, end)
