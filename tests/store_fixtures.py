"""Helpers that build valid store rows for tests, and a real store from them via `StoreWriter`.

Each row helper fills every column a test does not care about with plausible defaults; keyword
overrides replace any column. Times: `at(seconds)` is a fixed base time plus an offset, and any
helper's `observed_at` may be given as such seconds. Usage:

    rows = {"run_snapshots": [run_snapshot("run_1", "queued", 0), run_snapshot("run_1", "completed", 2,
                                           **usage(100, 20))]}
    make_store(tmp_path / "s.duckdb", rows)
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta

from runtap.store.writer import StoreWriter

BASE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
_exchange_ids = itertools.count(1)


def at(seconds: float) -> datetime:
    """The fixed base time plus `seconds`."""
    return BASE + timedelta(seconds=seconds)


def _time(value: float | datetime | None) -> datetime | None:
    return at(value) if isinstance(value, (int, float)) else value


def new_exchange_id() -> str:
    """A fresh exchange id, unique within the test session."""
    return f"ex_{next(_exchange_ids):05d}"


def usage(prompt: int, completion: int) -> dict:
    """Columns of a snapshot that carries `usage`: pass as `**usage(p, c)`."""
    return {
        "has_usage": True,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def capture(**overrides) -> dict:
    """A `captures` row."""
    row = {
        "capture_id": "cap_1",
        "started_at": BASE,
        "upstream": "http://127.0.0.1:9",
        "mode": "reverse",
        "tool_version": "test",
        "source": "proxy",
    }
    return {**row, **overrides}


def exchange(
    operation: str = "getRun", *, started: float | datetime = 0, duration_ms: float = 10.0, **overrides
) -> dict:
    """An `exchanges` row for `operation`, starting `started` seconds after the base time."""
    start = _time(started)
    end = start + timedelta(milliseconds=duration_ms)
    row = {
        "exchange_id": new_exchange_id(),
        "capture_id": "cap_1",
        "operation": operation,
        "method": "GET",
        "url": "http://127.0.0.1:9/v1/threads/thread_1/runs/run_1",
        "path": "/v1/threads/thread_1/runs/run_1",
        "thread_id": "thread_1",
        "run_id": "run_1",
        "status_code": 200,
        "request_started_at": start,
        "response_started_at": end,
        "response_ended_at": end,
        "duration_ms": duration_ms,
        "ttfb_ms": duration_ms,
        "streamed": False,
        "is_poll": False,
        "request_headers": {},
        "response_headers": {},
    }
    return {**row, **overrides}


def run_snapshot(run_id: str = "run_1", status: str = "queued", observed_at: float | datetime = 0, **overrides) -> dict:
    """A `run_snapshots` row: one observation of run `run_id` with its own `status`."""
    seen = _time(observed_at)
    row = {
        "exchange_id": new_exchange_id(),
        "seq": 0,
        "request_started_at": seen,
        "observed_at": seen,
        "source": "response",
        "event": None,
        "run_id": run_id,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "model": "gpt-4o",
        "created_at": BASE,
        "has_usage": False,
    }
    row.update(overrides)
    row["request_started_at"] = _time(row["request_started_at"])
    row.setdefault("raw", json.dumps({"id": run_id, "object": "thread.run", "status": status}))
    return row


def step_snapshot(
    step_id: str = "step_1",
    status: str = "in_progress",
    observed_at: float | datetime = 0,
    *,
    run_id: str = "run_1",
    type: str = "message_creation",
    **overrides,
) -> dict:
    """A `step_snapshots` row: one observation of step `step_id` of run `run_id`."""
    seen = _time(observed_at)
    row = {
        "exchange_id": new_exchange_id(),
        "seq": 0,
        "request_started_at": seen,
        "observed_at": seen,
        "source": "response",
        "event": None,
        "step_id": step_id,
        "run_id": run_id,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "type": type,
        "status": status,
        "created_at": BASE,
        "has_usage": False,
    }
    row.update(overrides)
    row["request_started_at"] = _time(row["request_started_at"])
    return row


def function_call(call_id: str, name: str = "get_weather", arguments: str = "{}", output: str | None = None) -> dict:
    """A function tool call as the API shows it in required_action and step_details."""
    function = {"name": name, "arguments": arguments}
    if output is not None:
        function["output"] = output
    return {"id": call_id, "type": "function", "function": function}


def required_action(*calls: dict) -> str:
    """A run's `required_action` JSON asking for the given tool calls."""
    return json.dumps({"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": list(calls)}})


def tool_step_details(*calls: dict) -> str:
    """A tool_calls step's `step_details` JSON."""
    return json.dumps({"type": "tool_calls", "tool_calls": list(calls)})


def tool_call_snapshot(tool_call_id: str = "call_1", observed_at: float | datetime = 0, **overrides) -> dict:
    """A `tool_call_snapshots` row (what the normalizer writes for each tool call it sees)."""
    row = {
        "exchange_id": new_exchange_id(),
        "seq": 0,
        "observed_at": _time(observed_at),
        "source": "step",
        "run_id": "run_1",
        "step_id": "step_1",
        "tool_call_id": tool_call_id,
        "type": "function",
        "function_name": "get_weather",
        "arguments": "{}",
        "output": None,
    }
    return {**row, **overrides}


def sse_event(exchange_id: str, seq: int, event: str, received_at: float | datetime = 0, **overrides) -> dict:
    """An `sse_events` row."""
    row = {
        "exchange_id": exchange_id,
        "seq": seq,
        "event": event,
        "received_at": _time(received_at),
        "object_id": None,
        "object_type": None,
        "data_bytes": 0,
    }
    return {**row, **overrides}


def make_store(path: str | os.PathLike, rows: dict[str, list[dict]]) -> str:
    """Write `rows` (table -> rows) into a runtap store at `path` through `StoreWriter`.

    Raises AssertionError if any row was rejected or left unwritten. Returns the path.
    """
    writer = StoreWriter(str(path))
    writer.start()
    writer.put(rows)
    writer.close()
    stats = writer.stats()
    assert stats.rejected == 0 and stats.dropped == 0 and stats.unwritten == 0, stats
    return str(path)
