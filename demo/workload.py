"""A varied Assistants workload driven by the official `openai` SDK.

It exercises what runtap must record: polling (`create_and_poll`), streaming with tool calls
(`runs.stream` + `submit_tool_outputs_stream`), `submit_tool_outputs_and_poll`, cancel + poll,
`threads.create_and_run_poll`, failed and incomplete runs, listing with pagination, run steps
and `runs.update`. Outcomes are chosen through the simulator's `sim_outcome` metadata hint, so
the same workload gives the same outcomes against any runtap simulator.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

from openai import AssistantEventHandler, OpenAI

from runtap.simulator.demo_assistants import ASSISTANTS

WEATHER, WRITER = (a["id"] for a in ASSISTANTS)
# Without a hint the simulator picks outcomes by seed; the happy paths are pinned explicitly.
COMPLETE = {"sim_outcome": "completed"}


@dataclass
class WorkloadResult:
    """What the client saw: final runs by id (status, model, usage) and thread ids."""

    runs: dict[str, dict] = field(default_factory=dict)
    threads: list[str] = field(default_factory=list)

    def add(self, run) -> None:
        """Remember a run's final state as the client saw it."""
        usage = run.usage.model_dump() if run.usage else None
        self.runs[run.id] = {"status": run.status, "model": run.model, "usage": usage, "thread_id": run.thread_id}


def _tool_outputs(run) -> list[dict]:
    """Answer every function call a run asks for, deterministically from its arguments."""
    outputs = []
    for call in run.required_action.submit_tool_outputs.tool_calls:
        args = json.loads(call.function.arguments or "{}")
        place = args.get("location") or args.get("city") or "somewhere"
        outputs.append({"tool_call_id": call.id, "output": json.dumps({"place": place, "temp_c": 18})})
    return outputs


class _QuietHandler(AssistantEventHandler):
    """Stream handler that collects text deltas (a real app would print them)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def on_text_delta(self, delta, snapshot) -> None:
        """Keep each streamed piece of the assistant's answer."""
        self.text.append(delta.value or "")


def _polled_tool_run(client: OpenAI, result: WorkloadResult, question: str) -> None:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    result.threads.append(thread.id)
    run = runs.create_and_poll(thread_id=thread.id, assistant_id=WEATHER, metadata=COMPLETE, poll_interval_ms=50)
    while run.status == "requires_action":
        run = runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=_tool_outputs(run), poll_interval_ms=50
        )
    result.add(run)
    # Look at what happened, as dashboards and debuggers do.
    steps = runs.steps.list(run_id=run.id, thread_id=thread.id)
    for step in steps.data[:1]:
        runs.steps.retrieve(step_id=step.id, run_id=run.id, thread_id=thread.id)
    runs.update(run_id=run.id, thread_id=thread.id, metadata={"reviewed": "yes"})


def _streamed_tool_run(client: OpenAI, result: WorkloadResult, question: str) -> None:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create()
    result.threads.append(thread.id)
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content=question)
    with runs.stream(
        thread_id=thread.id, assistant_id=WEATHER, metadata=COMPLETE, event_handler=_QuietHandler()
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    while run.status == "requires_action":
        with runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id, tool_outputs=_tool_outputs(run), event_handler=_QuietHandler()
        ) as stream:
            stream.until_done()
            run = stream.get_final_run()
    result.add(run)


def _cancelled_run(client: OpenAI, result: WorkloadResult) -> None:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Write a long essay."}])
    result.threads.append(thread.id)
    run = runs.create(thread_id=thread.id, assistant_id=WRITER, metadata={"sim_outcome": "slow"})
    runs.cancel(run_id=run.id, thread_id=thread.id)
    result.add(runs.poll(run.id, thread.id, poll_interval_ms=50))


def _outcome_run(client: OpenAI, result: WorkloadResult, outcome: str, model: str) -> None:
    runs = client.beta.threads.runs
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Summarise ({outcome})."}])
    result.threads.append(thread.id)
    run = runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=WRITER,
        model=model,
        metadata={"sim_outcome": outcome},
        poll_interval_ms=50,
    )
    result.add(run)
    # Page through the thread's runs one at a time, as a UI listing would.
    list(runs.list(thread_id=thread.id, limit=1))


def _create_and_run(client: OpenAI, result: WorkloadResult, model: str) -> None:
    run = client.beta.threads.create_and_run_poll(
        assistant_id=WRITER,
        model=model,
        metadata=COMPLETE,
        thread={"messages": [{"role": "user", "content": "Say hello in French."}]},
        poll_interval_ms=50,
    )
    result.threads.append(run.thread_id)
    result.add(run)


def run_workload(base_url: str, api_key: str = "sk-runtap-demo-key", *, rounds: int = 1) -> WorkloadResult:
    """Drive the whole workload `rounds` times against `base_url` (an OpenAI-compatible /v1)."""
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
    result = WorkloadResult()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the Assistants API is deprecated upstream
        for _ in range(rounds):
            _polled_tool_run(client, result, "What is the weather in Paris?")
            _streamed_tool_run(client, result, "What is the weather and the time in Tokyo?")
            _cancelled_run(client, result)
            _outcome_run(client, result, "failed", "gpt-4-turbo")
            _outcome_run(client, result, "incomplete", "o3-mini")
            _create_and_run(client, result, "gpt-4o-mini")
        _inspect_steps(client, result)
    return result


def _inspect_steps(client: OpenAI, result: WorkloadResult) -> None:
    """List every run's steps at the end, as a dashboard or a debugging session would."""
    for run_id, run in result.runs.items():
        for _ in client.beta.threads.runs.steps.list(run_id=run_id, thread_id=run["thread_id"], limit=2):
            pass
