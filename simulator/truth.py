"""Ground truth: what the simulator actually served, for tests to compare recordings against."""

from __future__ import annotations

from runtap.simulator.engine import Engine
from runtap.simulator.response_state import ResponseState
from runtap.simulator.state import RunState


def ground_truth(engine: Engine, http_faults: list[dict]) -> dict:
    """Every run and response (oldest first) with statuses, usage and tool calls, plus faults.

    `statuses` is every status a run or response held; `served_statuses` the consecutive-distinct
    statuses clients were shown (JSON bodies, list items, SSE events) in the order they were served.
    Deleted and `store: false` responses are included (flagged): they were served all the same.
    """
    store = engine.responses.store
    return {
        "seed": engine.config.seed,
        "runs": [_run(run) for run in engine.store.runs.values()],
        "responses": [_response(state) for state in store.responses.values()],
        "conversations": [
            {
                "id": c.obj["id"],
                "deleted": c.deleted,
                "items": len(c.items),
                "responses": [r.obj["id"] for r in c.responses],
            }
            for c in store.conversations.values()
        ],
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
        "entered_at": list(run.entered_at),  # epoch seconds each of `statuses` began
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


def _response(state: ResponseState) -> dict:
    obj = state.obj
    usage = obj.get("usage")
    return {
        "id": obj["id"],
        "model": obj["model"],
        "conversation_id": (obj["conversation"] or {}).get("id"),
        "previous_response_id": obj["previous_response_id"],
        "background": obj["background"],
        "streamed": state.streamed,
        "stored": obj["store"],
        "deleted": state.deleted,
        "turn": state.turn,
        "planned_outcome": state.plan.outcome,
        "status": obj["status"],
        "statuses": list(state.statuses),
        "served_statuses": list(state.served),
        "usage": {
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
            "cached_tokens": usage["input_tokens_details"]["cached_tokens"],
            "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"],
        }
        if usage
        else None,
        "error_code": (obj["error"] or {}).get("code"),
        "incomplete_reason": (obj["incomplete_details"] or {}).get("reason"),
        "function_calls": [dict(c) for c in state.function_calls],
    }
