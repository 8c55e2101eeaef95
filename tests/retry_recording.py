"""A recording with both kinds of failed attempt, made through a real proxy with the official SDK.

- `retried`: createRun fails once with 500 and the SDK retries it on its own; the app never sees
  the failure.
- `seen`: a client without retries gets the 500, adds a message (another write) and makes the
  same createRun request again, which succeeds; the app saw the failure.

The simulator injects the 500s, selected by the run's metadata. Both runs complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import openai

from runtap.demo.harness import start_proxy
from runtap.demo.workload import ASSISTANTS, WRITER
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from runtap.store.reader import open_store

RETRIED, SEEN = "sdk-retried", "app-saw-it"
FAULTS = [f"status=500,op=createRun,match={RETRIED},count=1", f"status=500,op=createRun,match={SEEN},count=1"]
AGAIN = "Please try again."


@dataclass(frozen=True)
class RetryRecording:
    """The store, and the thread of each case."""

    db: str
    retried: str
    seen: str


def question(case: str) -> list[dict]:
    """The message each case's thread is created with (it tells the two threads apart)."""
    return [{"role": "user", "content": f"Write a haiku ({case})."}]


def run_params(case: str) -> dict:
    """The createRun parameters of each case: the same request each time it is made."""
    return {"assistant_id": WRITER, "metadata": {"case": case, "sim_outcome": "completed"}}


def client(base_url: str, retries: int) -> openai.OpenAI:
    """The official SDK against `base_url`."""
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=retries, timeout=20)


def play_retried(sdk: openai.OpenAI) -> tuple[str, str]:
    """The SDK-retry case: (thread id, final run status)."""
    runs = sdk.beta.threads.runs
    thread = sdk.beta.threads.create(messages=question(RETRIED))
    run = runs.create(thread_id=thread.id, **run_params(RETRIED))
    return thread.id, runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20).status


def play_seen(sdk: openai.OpenAI) -> tuple[str, int | None, str]:
    """The seen-failure case: (thread id, HTTP status of the first createRun, final run status)."""
    runs = sdk.beta.threads.runs
    thread = sdk.beta.threads.create(messages=question(SEEN))
    first = None
    try:
        runs.create(thread_id=thread.id, **run_params(SEEN))
    except openai.APIStatusError as exc:
        first = exc.status_code
    sdk.beta.threads.messages.create(thread_id=thread.id, role="user", content=AGAIN)
    run = runs.create(thread_id=thread.id, **run_params(SEEN))
    return thread.id, first, runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20).status


def record(db: str) -> RetryRecording:
    """Record both cases into `db` through a real `runtap proxy` process."""
    with start_simulator(SimConfig(assistants=ASSISTANTS, run_ms=60, poll_after_ms=20, faults=FAULTS)) as sim:
        with start_proxy(sim.url, db) as proxy:
            retried, status = play_retried(client(proxy.base_url, retries=2))
            assert status == "completed"
            seen, first, status = play_seen(client(proxy.base_url, retries=0))
            assert (first, status) == (500, "completed")
        assert proxy.proc.returncode == 0, proxy.log_text()
    with open_store(db) as con:
        failed = con.execute("SELECT thread_id FROM exchanges WHERE status_code = 500 ORDER BY ALL").fetchall()
    assert sorted(failed) == sorted([(retried,), (seen,)])  # both failed attempts were recorded
    return RetryRecording(db, retried, seen)
