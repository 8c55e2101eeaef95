"""Ground truth: what the simulator actually served, for tests to compare recordings against."""

from __future__ import annotations

from runtap.simulator.engine import Engine
from runtap.simulator.state import RunState


def ground_truth(engine: Engine, http_faults: list[dict]) -> dict:
    """Every run (oldest first) with its statuses, usage, steps and tool calls, plus faults.

    `statuses` is every status the run held; `served_statuses` the consecutive-distinct statuses
    clients were shown (JSON responses, list items, SSE events) in the order they were served.
    """
    return {
        "seed": engine.config.seed,
        "runs": [_run(run) for run in engine.store.runs.values()],
        "faults": [{"spec": f.spec, "kind": f.kind, "applied": f.applied} for f in engine.config.faults],
        "http_faults": list(http_faults),
    }


def _run(run: RunState) -> dict:
    obj = run.obj
    return {
        "id": obj["id"],
        "thread_id": obj["thread_id"],
        "assistant_id": obj["assistant_id"],
        "model": obj["model"],
        "created_by": run.created_by,
        "streamed": run.streamed,
        "planned_outcome": run.plan.outcome,
        "status": obj["status"],
        "statuses": list(run.statuses),
        "served_statuses": list(run.served),
        "usage": dict(obj["usage"]) if obj["usage"] else None,
        "last_error_code": (obj["last_error"] or {}).get("code"),
        "incomplete_reason": (obj["incomplete_details"] or {}).get("reason"),
        "steps": [
            {
                "id": s["id"],
                "type": s["type"],
                "status": s["status"],
                "usage": dict(s["usage"]) if s["usage"] else None,
            }
            for s in run.steps
        ],
        "tool_calls": [dict(c) for c in run.tool_calls],
    }
