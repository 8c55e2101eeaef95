"""The run engine: plays each run's plan out over time and publishes its events.

Every run is driven by one asyncio task on the server's loop, so polling clients see statuses
change with time and streaming clients receive the same transitions as SSE events (each
subscriber gets a queue of `(event, json_text, status)` tuples, paced by `event_gap_ms`).
"""

from __future__ import annotations

import asyncio
import json
import time

from runtap.simulator.behaviour import ERROR_MESSAGES, plan_run, reply_text, split_text, step_usage
from runtap.simulator.config import SimConfig
from runtap.simulator.faults import behaviour_overrides
from runtap.simulator.holds import hold_ms, parse_holds
from runtap.simulator.ids import new_id
from runtap.simulator.objects import (
    ApiError,
    message_delta,
    message_object,
    now,
    run_object,
    step_delta,
    step_object,
    text_part,
    tool_call_object,
)
from runtap.simulator.response_engine import ResponseEngine
from runtap.simulator.state import RunState, Store

# Run events after which a stream ends (the run paused or finished).
END_EVENTS = frozenset(
    f"thread.run.{s}" for s in ("requires_action", "completed", "failed", "incomplete", "expired", "cancelled")
)


class Engine:
    """Creates, advances, cancels and resumes runs; owns the `Store` they live in, and the
    Responses API's engine (`responses`), which shares the configuration."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.store = Store(config.default_model, config.strict_assistants, config.assistants)
        self.responses = ResponseEngine(config)

    # --- requests ---------------------------------------------------------------------------

    def create_run(self, thread_id: str, body: dict, op: str, request_text: str) -> RunState:
        """Validate a createRun body, create the `queued` run and start driving it."""
        self.store.thread(thread_id)
        if not isinstance(body.get("assistant_id"), str) or not body["assistant_id"]:
            raise ApiError(
                400,
                "Missing required parameter: 'assistant_id'.",
                param="assistant_id",
                code="missing_required_parameter",
            )
        _check_run_body(body)
        holds = parse_holds(body.get("metadata"))  # before anything changes: a bad spec is a 400
        active = self.store.active_run(thread_id)
        if active is not None:
            raise ApiError(400, f"Thread {thread_id} already has an active run {active.obj['id']}.")
        assistant = self.store.assistant(body["assistant_id"])
        for message in body.get("additional_messages") or []:
            self.store.add_message(thread_id, message)
        obj = run_object(thread_id, assistant, body)
        texts = self.store.user_texts(thread_id)
        run = RunState(
            obj=obj,
            plan=self._plan(obj, texts, op, request_text),
            user_texts=texts,
            created_by=op,
            streamed=bool(body.get("stream")),
            holds=holds,
        )
        run.enter("queued")
        self.store.runs[obj["id"]] = run
        self.store.thread_runs[thread_id].append(run)
        run.task = asyncio.create_task(self._drive(run, first=True))
        return run

    def submit_tool_outputs(self, run: RunState, body: dict) -> None:
        """Complete the tool step with the client's outputs and queue the run's next turn."""
        status = run.obj["status"]
        if status != "requires_action":
            raise ApiError(400, f'Runs in status "{status}" do not accept tool outputs.')
        outputs = body.get("tool_outputs")
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise ApiError(400, "Missing required parameter: 'tool_outputs'.", param="tool_outputs")
        expected = [c["id"] for c in run.obj["required_action"]["submit_tool_outputs"]["tool_calls"]]
        given = {o.get("tool_call_id"): str(o.get("output", "")) for o in outputs}
        if sorted(given) != sorted(expected):
            raise ApiError(
                400,
                f"Expected tool outputs for call_ids {expected}, got {sorted(map(str, given))}.",
                param="tool_outputs",
            )
        run.task.cancel()  # the expiry timer
        step = run.steps[-1]
        for call in step["step_details"]["tool_calls"]:
            call["function"]["output"] = given[call["id"]]
        for call in run.tool_calls:
            call["output"] = given[call["id"]]
        run.tool_outputs = [given[i] for i in expected]
        arguments = "".join(c["function"]["arguments"] for c in step["step_details"]["tool_calls"])
        self._finish_step(run, step, "completed", step_usage(run.plan, "tool", 0, arguments))
        run.obj["required_action"] = None
        self._set_status(run, "queued", "thread.run.queued")
        run.turn = 1
        run.streamed = run.streamed or bool(body.get("stream"))
        run.task = asyncio.create_task(self._drive(run, first=False))

    def cancel_run(self, run: RunState) -> None:
        """Move the run to `cancelling`; it becomes `cancelled` shortly after."""
        status = run.obj["status"]
        if status not in ("queued", "in_progress", "requires_action"):
            raise ApiError(400, f"Cannot cancel run with status '{status}'.")
        run.task.cancel()
        run.obj["required_action"] = None
        self._set_status(run, "cancelling", "thread.run.cancelling")
        run.task = asyncio.create_task(self._finish_cancel(run))

    def subscribe(self, run: RunState) -> asyncio.Queue:
        """A queue that receives the run's events from now on."""
        queue: asyncio.Queue = asyncio.Queue()
        run.subscribers.append(queue)
        return queue

    def unsubscribe(self, run: RunState, queue: asyncio.Queue) -> None:
        """Stop delivering events to `queue`."""
        if queue in run.subscribers:
            run.subscribers.remove(queue)

    def note_served(self, run_id: str, status: str) -> None:
        """Record that a client was shown the run in `status` (ground truth's served sequence)."""
        run = self.store.runs.get(run_id)
        if run is not None and (not run.served or run.served[-1] != status):
            run.served.append(status)

    def close(self) -> None:
        """Stop every run's and response's task (server shutdown)."""
        for run in self.store.runs.values():
            if run.task is not None:
                run.task.cancel()
        self.responses.close()

    # --- the life cycle ---------------------------------------------------------------------

    async def _drive(self, run: RunState, first: bool) -> None:
        turn_ms = self.config.run_ms * (self.config.slow_factor if run.plan.outcome == "slow" else 1)
        if first:
            self._emit_run(run, "thread.run.created")
            await self._gap()
            self._emit_run(run, "thread.run.queued")
        await self._hold(run, "queued", turn_ms * 0.3)
        run.obj["started_at"] = now()
        self._set_status(run, "in_progress", "thread.run.in_progress")
        if hold_ms(run.holds, run.turn, "in_progress") is None:
            await asyncio.sleep(turn_ms * 0.7 / 1000)
        if run.turn == 0 and run.plan.tool_calls:
            await self._tool_turn(run)
        elif run.plan.outcome == "failed":
            await self._hold(run, "in_progress", 0)
            code = run.plan.error_code
            run.obj["last_error"] = {"code": code, "message": ERROR_MESSAGES[code]}
            run.obj["failed_at"] = now()
            self._end(run, "failed")
        elif run.plan.outcome == "expired":
            await self._hold(run, "in_progress", 0)
            self._expire(run)
        else:
            await self._message_turn(run)

    async def _tool_turn(self, run: RunState) -> None:
        step = self._new_step(run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
        await self._gap()
        for index, call in enumerate(run.plan.tool_calls):
            call_id = new_id("call")
            head = tool_call_object(call_id, call.name, "", None) | {"index": index}
            await self._gap()
            self._emit(run, "thread.run.step.delta", step_delta(step["id"], [head]))
            for chunk in split_text(call.arguments, 2):
                await self._gap()
                part = {"index": index, "type": "function", "function": {"arguments": chunk}}
                self._emit(run, "thread.run.step.delta", step_delta(step["id"], [part]))
            step["step_details"]["tool_calls"].append(tool_call_object(call_id, call.name, call.arguments, None))
            run.tool_calls.append(
                {
                    "id": call_id,
                    "step_id": step["id"],
                    "function_name": call.name,
                    "arguments": call.arguments,
                    "output": None,
                }
            )
        calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
            }
            for c in step["step_details"]["tool_calls"]
        ]
        run.obj["required_action"] = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
        await self._gap()
        await self._hold(run, "in_progress", 0)
        self._set_status(run, "requires_action", "thread.run.requires_action")
        expire_ms = self.config.run_ms if run.plan.outcome == "expired" else self.config.expire_ms
        run.task = asyncio.create_task(self._expire_later(run, expire_ms))

    async def _message_turn(self, run: RunState) -> None:
        message = message_object(
            run.obj["thread_id"], "assistant", "", assistant_id=run.obj["assistant_id"], run_id=run.obj["id"]
        )
        step = self._new_step(
            run, "message_creation", {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
        )
        run.message = message
        self.store.messages[run.obj["thread_id"]].append(message)
        await self._gap()
        self._emit(run, "thread.message.created", message)
        await self._gap()
        self._emit(run, "thread.message.in_progress", message)
        text = reply_text(run.plan, run.obj["model"], run.user_texts, run.tool_outputs)
        incomplete = run.plan.outcome == "incomplete"
        if incomplete:
            text = text[: len(text) // 2]
        for index, chunk in enumerate(split_text(text)):
            await self._gap()
            self._emit(run, "thread.message.delta", message_delta(message["id"], chunk, index == 0))
        await self._gap()
        message["content"] = [text_part(text)]
        if incomplete:
            message.update(status="incomplete", incomplete_at=now(), incomplete_details={"reason": "max_tokens"})
        else:
            message.update(status="completed", completed_at=now())
        self._emit(run, f"thread.message.{message['status']}", message)
        extra = sum(s["usage"]["total_tokens"] for s in run.steps if s["usage"])
        extra += sum(len(o) for o in run.tool_outputs) // 4
        await self._gap()
        self._finish_step(run, step, "completed", step_usage(run.plan, "message", extra, text))
        await self._gap()
        await self._hold(run, "in_progress", 0)
        if incomplete:
            run.obj["incomplete_details"] = {"reason": run.plan.incomplete_reason}
        run.obj["completed_at"] = now()
        self._end(run, "incomplete" if incomplete else "completed")

    async def _expire_later(self, run: RunState, delay_ms: float) -> None:
        await asyncio.sleep(delay_ms / 1000)
        self._expire(run)

    def _expire(self, run: RunState) -> None:
        run.obj["required_action"] = None
        for step in run.steps:
            if step["status"] == "in_progress":
                step["expired_at"] = now()
                self._finish_step(run, step, "expired", None)
        self._end(run, "expired")

    async def _finish_cancel(self, run: RunState) -> None:
        await self._hold(run, "cancelling", max(self.config.run_ms * 0.2, self.config.event_gap_ms))
        for step in run.steps:
            if step["status"] == "in_progress":
                step["cancelled_at"] = now()
                self._finish_step(run, step, "cancelled", None)
        if run.message is not None and run.message["status"] == "in_progress":
            run.message.update(status="incomplete", incomplete_at=now(), incomplete_details={"reason": "run_cancelled"})
        run.obj["cancelled_at"] = now()
        self._end(run, "cancelled")

    # --- helpers ----------------------------------------------------------------------------

    def _plan(self, obj: dict, texts: list[str], op: str, request_text: str):
        text = "\n".join([request_text, *texts])
        forced, renames, factor = behaviour_overrides(self.config.faults, op, text)
        return plan_run(
            seed=self.config.seed,
            model=obj["model"],
            instructions=obj["instructions"],
            tools=obj["tools"],
            user_texts=texts,
            metadata=obj["metadata"],
            weights=self.config.outcome_weights,
            tool_choice=obj["tool_choice"],
            parallel_tool_calls=obj["parallel_tool_calls"],
            max_prompt_tokens=obj["max_prompt_tokens"],
            max_completion_tokens=obj["max_completion_tokens"],
            forced_outcome=forced,
            renames=renames,
            token_factor=factor,
        )

    def _new_step(self, run: RunState, step_type: str, details: dict) -> dict:
        step = step_object(run.obj, step_type, details)
        run.steps.append(step)
        self._emit(run, "thread.run.step.created", step)
        self._emit(run, "thread.run.step.in_progress", step)
        return step

    def _finish_step(self, run: RunState, step: dict, status: str, usage: dict | None) -> None:
        step["status"] = status
        step["usage"] = usage
        if status == "completed":
            step["completed_at"] = now()
        self._emit(run, f"thread.run.step.{status}", step)

    def _end(self, run: RunState, status: str) -> None:
        usages = [s["usage"] for s in run.steps if s["usage"]]
        run.obj["usage"] = {
            k: sum(u[k] for u in usages) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
        if status != "expired":
            run.obj["expires_at"] = None
        self._set_status(run, status, f"thread.run.{status}")

    def _set_status(self, run: RunState, status: str, event: str) -> None:
        run.enter(status)
        self._emit_run(run, event)

    def _emit_run(self, run: RunState, event: str) -> None:
        self._emit(run, event, run.obj)

    def _emit(self, run: RunState, event: str, data: dict) -> None:
        if not run.subscribers:
            return
        text = json.dumps(data, separators=(",", ":"))
        status = data.get("status") if data.get("object") == "thread.run" else None
        for queue in run.subscribers:
            queue.put_nowait((event, text, status))

    async def _gap(self) -> None:
        await asyncio.sleep(self.config.event_gap_ms / 1000)

    async def _hold(self, run: RunState, status: str, default_ms: float) -> None:
        """Stay in `status` until its hold time (sim_hold_ms) has passed since the run entered it,
        or wait `default_ms` without one (0: no wait)."""
        held = hold_ms(run.holds, run.turn, status)
        delay = default_ms / 1000 if held is None else run.entered_at[-1] + held / 1000 - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


def _check_run_body(body: dict) -> None:
    """Reject the body errors the hosted API rejected (types and token limits)."""
    for name in ("max_prompt_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or value < 256):
            raise ApiError(400, f"Invalid '{name}': expected an integer >= 256.", param=name)
    for name, kind in (("tools", list), ("metadata", dict), ("additional_messages", list)):
        if body.get(name) is not None and not isinstance(body[name], kind):
            raise ApiError(400, f"Invalid type for '{name}'.", param=name)
    if body.get("model") is not None and not isinstance(body["model"], str):
        raise ApiError(400, "Invalid type for 'model': expected a string.", param="model")
