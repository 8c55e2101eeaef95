"""The Responses engine: plays each response's plan out over time and publishes its events.

A response is one model turn of the run it stands for, decided by the same `plan_run` from
the same content: seed, model, instructions, function names and the user message texts the
model sees (a previous-response chain or a conversation, plus the input). So a response with
function tools calls the same functions with the same arguments as the equivalent run's tool
step, with that step's usage; the follow-up response carrying the `function_call_output` items
reuses the calling response's plan (as `submit_tool_outputs` continues the run) and writes the
run's final message with its usage. A run's usage is the sum of its responses' usage.

Responses have no `expired` status: a plan whose outcome is `expired` (a hint or an `outcome`
fault) fails where the run would have expired. Background responses go queued -> in_progress
-> final over `run_ms` (slow ones `slow_factor` times longer); others answer when done.
"""

from __future__ import annotations

import asyncio
import json

from runtap.simulator.behaviour import ERROR_MESSAGES, Plan, plan_run, reply_text, split_text, step_usage
from runtap.simulator.config import SimConfig
from runtap.simulator.faults import behaviour_overrides
from runtap.simulator.ids import new_id
from runtap.simulator.objects import ApiError, now
from runtap.simulator.response_context import check_calls, resolve_context, trailing_outputs
from runtap.simulator.response_objects import (
    function_call_item,
    item_text,
    message_item,
    output_text,
    response_object,
    to_items,
    usage_object,
)
from runtap.simulator.response_requests import check_create_response
from runtap.simulator.response_state import ResponseState, ResponseStore

# Events after which a response's stream ends.
END_EVENTS = frozenset(f"response.{s}" for s in ("completed", "failed", "incomplete"))
EXPIRED_MESSAGE = "The response expired before it completed."
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class ResponseEngine:
    """Creates, advances, cancels and deletes responses; owns the `ResponseStore`."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.store = ResponseStore()

    # --- requests ---------------------------------------------------------------------------

    def create(self, body: dict, request_text: str) -> ResponseState:
        """Validate a createResponse body, create the response and start driving it."""
        check_create_response(body)
        conversation, context, prefix = resolve_context(self.store, body)
        input_items = to_items(body.get("input"), "input", self.store.items.get)
        seen = context + input_items
        check_calls(seen)
        obj = response_object(body, conversation.obj["id"] if conversation else None, bool(body.get("background")))
        texts = [item_text(i) for i in seen if i.get("type") == "message" and i.get("role") == "user"]
        outputs = trailing_outputs(seen)
        origin = next((self.store.call_origin[c] for c in outputs if c in self.store.call_origin), None)
        extra, tool_outputs = 0, list(outputs.values())
        if origin is not None:  # the turn after function calls: continue the calling response's plan
            plan, texts = origin.plan, origin.user_texts
            tool_outputs = [outputs[c["call_id"]] for c in origin.function_calls if c["call_id"] in outputs]
            extra = origin.obj.get("usage", {}).get("total_tokens", 0)
            prefix = prefix or origin
        else:
            plan = self._plan(obj, texts, request_text)
        state = ResponseState(
            obj=obj,
            plan=plan,
            turn=1 if outputs else 0,
            user_texts=texts,
            tool_outputs=tool_outputs,
            extra_prompt=extra + sum(len(o) for o in tool_outputs) // 4,
            cached_tokens=prefix.obj.get("usage", {}).get("input_tokens", 0) if prefix else 0,
            context=context,
            input_items=input_items,
            conversation=conversation,
            streamed=bool(body.get("stream")),
            logged=obj["background"],
        )
        state.statuses.append(obj["status"])
        self.store.responses[obj["id"]] = state
        self.store.add_items(conversation, input_items)
        if conversation is not None:
            conversation.responses.append(state)
        state.task = asyncio.create_task(self._drive(state))
        return state

    def cancel(self, state: ResponseState) -> None:
        """Cancel a background response that is still queued or in progress."""
        status = state.obj["status"]
        if not state.obj["background"]:
            raise ApiError(400, "Only responses created with background=true can be cancelled.")
        if status == "cancelled":
            return
        if state.finished:
            raise ApiError(400, f"Cannot cancel a response with status '{status}'.")
        for item in state.obj["output"]:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        self._stop(state)
        state.obj["status"] = "cancelled"
        state.statuses.append("cancelled")

    def delete(self, state: ResponseState) -> None:
        """Delete a response (stopping it first if it still runs)."""
        if not state.finished:
            self._stop(state)
        state.deleted = True

    def subscribe(self, state: ResponseState, after: int | None = None) -> asyncio.Queue:
        """A queue of the response's events from now on; with `after`, first the logged events
        whose sequence number is greater (a background response streamed again)."""
        queue: asyncio.Queue = asyncio.Queue()
        if after is not None:
            for entry in state.events[after + 1 :]:
                queue.put_nowait(entry)
            if state.finished or state.deleted:
                queue.put_nowait(None)
        state.subscribers.append(queue)
        return queue

    def unsubscribe(self, state: ResponseState, queue: asyncio.Queue) -> None:
        """Stop delivering events to `queue`."""
        if queue in state.subscribers:
            state.subscribers.remove(queue)

    def note_served(self, state: ResponseState, status: str) -> None:
        """Record that a client was shown the response in `status` (ground truth)."""
        if not state.served or state.served[-1] != status:
            state.served.append(status)

    def close(self) -> None:
        """Stop every response's task (server shutdown)."""
        for state in self.store.responses.values():
            if state.task is not None:
                state.task.cancel()

    # --- the life cycle ---------------------------------------------------------------------

    async def _drive(self, state: ResponseState) -> None:
        plan = state.plan
        turn_ms = self.config.run_ms * (self.config.slow_factor if plan.outcome == "slow" else 1)
        self._emit_response(state, "response.created")
        await self._gap()
        if state.obj["background"]:
            self._emit_response(state, "response.queued")
            await asyncio.sleep(turn_ms * 0.3 / 1000)
            self._set_status(state, "in_progress")
            await asyncio.sleep(turn_ms * 0.7 / 1000)
        else:
            self._emit_response(state, "response.in_progress")
            await asyncio.sleep(turn_ms / 1000)
        if state.turn == 0 and plan.tool_calls:
            await self._function_turn(state)
        elif plan.outcome in ("failed", "expired"):
            code = plan.error_code or "server_error"
            message = EXPIRED_MESSAGE if plan.outcome == "expired" else ERROR_MESSAGES[code]
            state.obj["error"] = {"code": code, "message": message}
            self._finish(state, "failed", ZERO_USAGE)
        else:
            await self._message_turn(state)

    async def _function_turn(self, state: ResponseState) -> None:
        output = state.obj["output"]
        for call in state.plan.tool_calls:
            index = len(output)
            item = function_call_item(new_id("call"), call.name, "", "in_progress")
            output.append(item)
            await self._gap()
            self._emit(state, "response.output_item.added", output_index=index, item=item)
            for chunk in split_text(call.arguments, 2):
                await self._gap()
                self._emit(
                    state, "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=chunk
                )
            await self._gap()
            item.update(arguments=call.arguments, status="completed")
            self._emit(
                state,
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=call.name,
                arguments=call.arguments,
            )
            self._emit(state, "response.output_item.done", output_index=index, item=item)
            state.function_calls.append({"call_id": item["call_id"], "name": call.name, "arguments": call.arguments})
            self.store.call_origin[item["call_id"]] = state
        await self._gap()
        arguments = "".join(c.arguments for c in state.plan.tool_calls)
        self._finish(state, "completed", step_usage(state.plan, "tool", 0, arguments))

    async def _message_turn(self, state: ResponseState) -> None:
        obj, plan = state.obj, state.plan
        text = reply_text(plan, obj["model"], state.user_texts, state.tool_outputs)
        incomplete = plan.outcome == "incomplete"
        if incomplete:
            text = text[: len(text) // 2]
        index = len(obj["output"])
        item = message_item(None, "in_progress")
        obj["output"].append(item)
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        await self._gap()
        self._emit(state, "response.output_item.added", output_index=index, item=item)
        await self._gap()
        self._emit(state, "response.content_part.added", **where, part=output_text(""))
        for chunk in split_text(text):
            await self._gap()
            self._emit(state, "response.output_text.delta", **where, delta=chunk, logprobs=[])
        await self._gap()
        self._emit(state, "response.output_text.done", **where, text=text, logprobs=[])
        self._emit(state, "response.content_part.done", **where, part=output_text(text))
        item.update(content=[output_text(text)], status="incomplete" if incomplete else "completed")
        self._emit(state, "response.output_item.done", output_index=index, item=item)
        await self._gap()
        if incomplete:
            obj["incomplete_details"] = {"reason": "max_output_tokens"}
        usage = step_usage(plan, "message", state.extra_prompt, text)
        self._finish(state, "incomplete" if incomplete else "completed", usage)

    # --- helpers ----------------------------------------------------------------------------

    def _plan(self, obj: dict, texts: list[str], request_text: str) -> Plan:
        forced, renames, factor = behaviour_overrides(
            self.config.faults, "createResponse", "\n".join([request_text, *texts])
        )
        return plan_run(
            seed=self.config.seed,
            model=obj["model"],
            instructions=obj["instructions"] or "",
            tools=obj["tools"],
            user_texts=texts,
            metadata=obj["metadata"],
            weights=self.config.outcome_weights,
            tool_choice=obj["tool_choice"],
            parallel_tool_calls=obj["parallel_tool_calls"],
            max_completion_tokens=obj["max_output_tokens"],
            forced_outcome=forced,
            renames=renames,
            token_factor=factor,
        )

    def _finish(self, state: ResponseState, status: str, usage: dict) -> None:
        obj = state.obj
        obj["usage"] = usage_object(usage, obj["model"], state.cached_tokens)
        if status == "completed":
            obj["completed_at"] = now()
        if status != "failed":
            self.store.add_items(state.conversation, obj["output"])
        self._set_status(state, status)
        state.done.set()

    def _stop(self, state: ResponseState) -> None:
        """End the response's task and its streams without a final event."""
        if state.task is not None:
            state.task.cancel()
        for queue in state.subscribers:
            queue.put_nowait(None)
        state.done.set()

    def _set_status(self, state: ResponseState, status: str) -> None:
        state.obj["status"] = status
        state.statuses.append(status)
        self._emit_response(state, f"response.{status}")

    def _emit_response(self, state: ResponseState, event: str) -> None:
        self._emit(state, event, response=state.obj)

    def _emit(self, state: ResponseState, event: str, **fields: object) -> None:
        payload = {"type": event, "sequence_number": state.sequence, **fields}
        state.sequence += 1
        if not (state.subscribers or state.logged):
            return
        status = state.obj["status"] if "response" in fields else None
        entry = (event, json.dumps(payload, separators=(",", ":")), status)
        if state.logged:
            state.events.append(entry)
        for queue in state.subscribers:
            queue.put_nowait(entry)

    async def _gap(self) -> None:
        await asyncio.sleep(self.config.event_gap_ms / 1000)
