"""The simulator's in-memory state: assistants, threads, messages, runs, and list pagination.

Everything here runs on the server's event loop, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from runtap.simulator.behaviour import Plan
from runtap.simulator.objects import ApiError, assistant_object, list_object, message_object, thread_object

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")


@dataclass
class RunState:
    """A run's public object plus what the engine needs to play it out and to report on it."""

    obj: dict
    plan: Plan
    user_texts: list[str]
    created_by: str
    streamed: bool = False
    steps: list[dict] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)  # ground truth, with step ids
    tool_outputs: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    entered_at: list[float] = field(default_factory=list)  # epoch seconds each status began
    served: list[str] = field(default_factory=list)
    subscribers: list[asyncio.Queue] = field(default_factory=list)
    task: asyncio.Task | None = None
    message: dict | None = None
    turn: int = 0
    holds: tuple[dict[str, float], ...] = ()  # sim_hold_ms: per turn, ms per status

    def enter(self, status: str) -> None:
        """The run is now in `status` (ground truth keeps when each status began)."""
        self.obj["status"] = status
        self.statuses.append(status)
        self.entered_at.append(time.time())


class Store:
    """Objects by id, with the lookups routes need (unknown ids raise a 404 `ApiError`)."""

    def __init__(self, default_model: str, strict_assistants: bool, preload: list[dict]) -> None:
        self.default_model = default_model
        self.strict_assistants = strict_assistants
        self.assistants: dict[str, dict] = {}
        self.threads: dict[str, dict] = {}
        self.messages: dict[str, list[dict]] = {}
        self.runs: dict[str, RunState] = {}
        self.thread_runs: dict[str, list[RunState]] = {}
        for item in preload:
            self.add_assistant(item["id"], item)

    def add_assistant(self, assistant_id: str, body: dict) -> dict:
        """Create (or replace) an assistant with a known id."""
        assistant = assistant_object(assistant_id, body, self.default_model)
        self.assistants[assistant_id] = assistant
        return assistant

    def assistant(self, assistant_id: str) -> dict:
        """The assistant; unknown ids are created on first use unless assistants are strict."""
        if assistant_id not in self.assistants:
            if self.strict_assistants:
                raise ApiError(404, f"No assistant found with id '{assistant_id}'.")
            self.add_assistant(assistant_id, {})
        return self.assistants[assistant_id]

    def add_thread(self, body: dict) -> dict:
        """Create a thread and its initial messages from a createThread body."""
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise ApiError(400, "Invalid type for 'messages': expected an array.", param="messages")
        thread = thread_object(body)
        self.threads[thread["id"]] = thread
        self.messages[thread["id"]] = []
        self.thread_runs[thread["id"]] = []
        for message in messages:
            self.add_message(thread["id"], message)
        return thread

    def add_message(self, thread_id: str, body: dict) -> dict:
        """Append a message from a createMessage body to a thread."""
        self.thread(thread_id)
        if not isinstance(body, dict) or body.get("role") not in ("user", "assistant"):
            raise ApiError(400, "Invalid value for 'role': expected 'user' or 'assistant'.", param="role")
        text = message_text(body.get("content"))
        message = message_object(thread_id, body["role"], text, metadata=body.get("metadata") or {})
        self.messages[thread_id].append(message)
        return message

    def thread(self, thread_id: str) -> dict:
        """The thread, or a 404."""
        if thread_id not in self.threads:
            raise ApiError(404, f"No thread found with id '{thread_id}'.")
        return self.threads[thread_id]

    def run(self, thread_id: str, run_id: str) -> RunState:
        """The run on that thread, or a 404."""
        self.thread(thread_id)
        run = self.runs.get(run_id)
        if run is None or run.obj["thread_id"] != thread_id:
            raise ApiError(404, f"No run found with id '{run_id}'.")
        return run

    def step(self, run: RunState, step_id: str) -> dict:
        """The run's step, or a 404."""
        for step in run.steps:
            if step["id"] == step_id:
                return step
        raise ApiError(404, f"No run step found with id '{step_id}'.")

    def active_run(self, thread_id: str) -> RunState | None:
        """The thread's run that is still going, if any (a thread runs one at a time)."""
        return next((r for r in self.thread_runs[thread_id] if r.obj["status"] in ACTIVE), None)

    def user_texts(self, thread_id: str) -> list[str]:
        """The texts of the thread's user messages, oldest first."""
        return [
            "".join(p["text"]["value"] for p in m["content"] if p.get("type") == "text")
            for m in self.messages[thread_id]
            if m["role"] == "user"
        ]


def message_text(content: object) -> str:
    """The text of a createMessage `content` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(p if isinstance(p, str) else "" for p in parts)
    raise ApiError(400, "Invalid type for 'content': expected a string or an array.", param="content")


def paginate(items: list[dict], query: dict) -> dict:
    """A spec list page over `items` (oldest first) honouring limit, order, after and before."""
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise ApiError(
            400, f"Invalid 'limit': expected an integer between 1 and 100, got {limit_text!r}.", param="limit"
        )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, f"Invalid 'order': expected 'asc' or 'desc', got {order!r}.", param="order")
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    limit = int(limit_text)
    if "after" in query:
        rest = ordered[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
        return list_object(rest[:limit], len(rest) > limit)
    if "before" in query:
        rest = ordered[: ids.index(query["before"])] if query["before"] in ids else []
        return list_object(rest[-limit:], len(rest) > limit)
    return list_object(ordered[:limit], len(ordered) > limit)
