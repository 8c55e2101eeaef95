"""Concurrent SDK clients for the soak, fault and security tests, and the store checks they share.

Clients are `openai.AsyncOpenAI` instances on one event loop (200 clients, not 200 threads).
Every response on a route runtap records is tallied by its `x-request-id` (the simulator gives
each response a fresh one), so "nothing lost, nothing duplicated" is an exact multiset check.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import httpx
from openai import AsyncAssistantEventHandler, AsyncOpenAI

from runtap.addon.routes import match_route
from runtap.demo.workload import WEATHER, WRITER
from runtap.store.reader import connect_with_retry

FINAL = {"completed", "failed", "cancelled", "incomplete", "expired"}


@dataclass
class Tally:
    """What the clients saw: recorded-route responses by x-request-id, and finished runs."""

    request_ids: Counter = field(default_factory=Counter)
    finished_at: dict[str, float] = field(default_factory=dict)  # x-request-id -> time.time()
    runs: dict[str, dict] = field(default_factory=dict)  # run id -> final status and usage
    errors: Counter = field(default_factory=Counter)
    # (count, callback): called once, when that many responses have been counted
    triggers: list[tuple[int, Callable[[], None]]] = field(default_factory=list)

    def when_counted(self, count: int, callback: Callable[[], None]) -> None:
        """Call `callback` once `count` responses have been counted (a point in the work, not in time)."""
        self.triggers.append((count, callback))

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: count responses on recorded routes once their body is read."""
        if match_route(response.request.method, str(response.request.url)) is None:
            return
        await response.aread()  # a complete exchange, as the proxy sees it
        rid = response.headers.get("x-request-id", "")
        self.request_ids[rid] += 1
        self.finished_at[rid] = time.time()
        total = self.request_ids.total()
        for count, callback in [t for t in self.triggers if t[0] <= total]:
            self.triggers.remove((count, callback))
            callback()

    def add_run(self, run) -> None:
        """Remember a run's final state as the client saw it."""
        usage = run.usage.model_dump() if run.usage else None
        self.runs[run.id] = {"status": run.status, "usage": usage}


def make_client(base_url: str, tally: Tally, api_key: str, **headers: str) -> AsyncOpenAI:
    """An SDK client without retries (so every request is one exchange) that reports to `tally`."""
    http = httpx.AsyncClient(event_hooks={"response": [tally.on_response]}, timeout=120)
    return AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, http_client=http, default_headers=headers or None
    )


def _tool_outputs(run) -> list[dict]:
    return [
        {"tool_call_id": c.id, "output": json.dumps({"temp_c": 18})}
        for c in run.required_action.submit_tool_outputs.tool_calls
    ]


async def polled_tool_run(client: AsyncOpenAI, tally: Tally, n: int) -> None:
    """create_and_poll a run that asks for tools, answer them, poll to the end."""
    runs = client.beta.threads.runs
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": f"What is the weather in city {n}?"}]
    )
    run = await runs.create_and_poll(thread_id=thread.id, assistant_id=WEATHER, metadata={"sim_outcome": "completed"})
    while run.status == "requires_action":
        run = await runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=_tool_outputs(run)
        )
    tally.add_run(run)


async def streamed_tool_run(client: AsyncOpenAI, tally: Tally, n: int) -> None:
    """Stream a run that asks for tools, answer them with a streamed submit, to the end."""
    runs = client.beta.threads.runs
    thread = await client.beta.threads.create()
    await client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content=f"What is the weather and time in town {n}?"
    )
    async with runs.stream(
        thread_id=thread.id,
        assistant_id=WEATHER,
        metadata={"sim_outcome": "completed"},
        event_handler=AsyncAssistantEventHandler(),
    ) as stream:
        await stream.until_done()
        run = await stream.get_final_run()
    while run.status == "requires_action":
        async with runs.submit_tool_outputs_stream(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=_tool_outputs(run),
            event_handler=AsyncAssistantEventHandler(),
        ) as stream:
            await stream.until_done()
            run = await stream.get_final_run()
    tally.add_run(run)


async def plain_run(client: AsyncOpenAI, tally: Tally, n: int) -> None:
    """A run without tools that fails or completes (both kinds of final status)."""
    outcome = "failed" if n % 3 == 0 else "completed"
    run = await client.beta.threads.create_and_run_poll(
        assistant_id=WRITER,
        metadata={"sim_outcome": outcome},
        thread={"messages": [{"role": "user", "content": f"Say hello #{n}."}]},
    )
    tally.add_run(run)


SESSIONS = (polled_tool_run, streamed_tool_run, polled_tool_run, streamed_tool_run, plain_run)


async def drive(
    base_url: str,
    clients: int,
    sessions: int,
    api_key: str = "sk-load-test",
    stop: asyncio.Event | None = None,
    tally: Tally | None = None,
    **headers: str,
) -> Tally:
    """Run `clients` concurrent clients, each through `sessions` sessions (or until `stop` is set).

    A fixed amount of work, whatever the machine's speed. A session that fails is counted in
    `tally.errors` by exception type (the runs it finished are still checked). Pass a `tally`
    to set `when_counted` triggers before the work starts.
    """
    tally = tally or Tally()
    stop = stop or asyncio.Event()

    async def one(i: int) -> None:
        client = make_client(base_url, tally, api_key, **headers)
        try:
            for k in range(sessions):
                if stop.is_set():
                    break
                n = i + k * clients
                try:
                    await SESSIONS[n % len(SESSIONS)](client, tally, n)
                except Exception as exc:  # a fault test may break sessions on purpose
                    tally.errors[type(exc).__name__] += 1
        finally:
            await client.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return tally


def child_pids(pid: int) -> list[int]:
    """Direct children of process `pid` (the proxy's recorder process)."""
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            children += [int(c) for c in fh.read().split()]
    return children


def wait_for_log(proxy, text: str, timeout: float = 60) -> None:
    """Wait until a proxy process has logged `text` (a point in its work, not a guessed time)."""
    deadline = time.monotonic() + timeout
    while text not in proxy.log_text():
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s:\n{proxy.log_text()[-3000:]}"
        assert proxy.proc.poll() is None, f"the proxy exited before logging {text!r}:\n{proxy.log_text()[-3000:]}"
        time.sleep(0.05)


def store_request_ids(db: str) -> Counter:
    """x-request-ids of the exchanges in the store, with multiplicity (waits while a writer holds it)."""
    con = connect_with_retry(db, read_only=True)
    try:
        return Counter(r for (r,) in con.execute("SELECT x_request_id FROM exchanges").fetchall())
    finally:
        con.close()


def wait_until_stored(db: str, request_ids: Counter, timeout: float = 60) -> Counter:
    """Poll the store (read-only, between the recorder's batches) until it holds `request_ids`."""
    deadline = time.monotonic() + timeout
    while (missing := request_ids - store_request_ids(db)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return missing


def check_runs(db: str, runs: dict[str, dict]) -> list[str]:
    """Differences between the runs clients finished and the store's `runs` view (empty: equal)."""
    con = duckdb.connect(db, read_only=True)
    try:
        stored = {
            rid: (status, p, c, t)
            for rid, status, p, c, t in con.execute(
                "SELECT run_id, status, prompt_tokens, completion_tokens, total_tokens FROM runs"
            ).fetchall()
        }
    finally:
        con.close()
    problems = []
    for rid, seen in runs.items():
        u = seen["usage"] or {}
        want = (seen["status"], u.get("prompt_tokens"), u.get("completion_tokens"), u.get("total_tokens"))
        got = stored.get(rid)
        if got is None or (got[0], *(None if v is None else int(v) for v in got[1:])) != want:
            problems.append(f"{rid}: client saw {want}, store has {got}")
    return problems
