"""Send translated actions to the target with runtap's own HTTP (httpx, no SDK) and observe the answers.

A session's state on the target lives in `Live`: the conversation standing for the thread, and
for each recorded run the responses standing for it (the latest one is the one polled,
cancelled or continued). Credentials come from the options, never from the recording.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx

from runtap.errors import RuntapError
from runtap.recordings.ids import IdMap
from runtap.replay.execute import DEFAULT_POLL_MS, exchange
from runtap.replay.matchers import FAILURE, Difference
from runtap.replay.migrate import mapping
from runtap.replay.migrate.observe import ResponseView, merge_polls, observe_response
from runtap.replay.migrate.translate import Action, Translation
from runtap.store.reader import first_line

MAX_ITEMS = 20  # items per createConversation / createConversationItems request


@dataclass
class Live:
    """One session's state on the target."""

    ids: IdMap  # thread -> conversation, run -> its first response, tool call -> function call
    conversation: str | None = None
    current: dict[str, str] = field(default_factory=dict)  # run id -> the latest response standing for it
    responses: dict[str, dict[str, dict]] = field(default_factory=dict)  # run id -> response id -> latest state

    def note(self, run_id: str | None, view: ResponseView) -> None:
        """Remember the response an answer showed as standing for `run_id`."""
        if run_id is None or not view.id:
            return
        self.current[run_id] = view.id
        self.ids.bind(run_id, view.id)
        self.responses.setdefault(run_id, {})[view.id] = view.response or {}


@dataclass
class Done:
    """What sending one action produced."""

    view: ResponseView | None  # None when it could not be sent
    duration_ms: float | None = None
    target: str | None = None  # what was sent, e.g. "POST /v1/responses (stream)"
    notes: list[Difference] = field(default_factory=list)


class Sender:
    """Sends one session's actions to the target (the httpx client is shared by sessions)."""

    def __init__(self, client: httpx.Client, translation: Translation, headers, timeout: float) -> None:
        self.client = client
        self.t = translation
        self.headers = list(headers)
        self.timeout = timeout

    def perform(self, action: Action, live: Live, wanted: str | None) -> Done:
        """Send an action; `wanted` is the response status a poll waits for (the mapped recorded one)."""
        started = time.monotonic()
        try:
            done = self._perform(action, live, wanted)
        except httpx.ConnectError as exc:
            raise RuntapError(f"target {self.client.base_url} stopped answering: {first_line(exc)}") from None
        done.duration_ms = (time.monotonic() - started) * 1000 if done.view is not None else None
        return done

    def _perform(self, action: Action, live: Live, wanted: str | None) -> Done:
        if action.kind in ("conversation", "items"):
            return self._items(action, live)
        if action.kind == "response":
            return self._response(action, live)
        response_id = live.current.get(action.run_id or "")
        if response_id is None:
            return _not_sent(f"needs the response standing for run {action.run_id}, which the replay never got")
        if action.kind == "cancel":
            view = self._send("POST", self._path(f"responses/{response_id}/cancel"), None)[0]
            live.note(action.run_id, view)
            return Done(view, target=f"POST {self.t.prefix}/responses/{{id}}/cancel")
        view, notes = self._poll(self._path(f"responses/{response_id}"), wanted)
        live.note(action.run_id, view)
        return Done(view, target=f"GET {self.t.prefix}/responses/{{id}} (polled)", notes=notes)

    def _items(self, action: Action, live: Live) -> Done:
        """createThread / createMessage: a new conversation holding the items, or items added to it."""
        items, view = list(action.items), None
        target = f"POST {self.t.prefix}/conversations/{{id}}/items"
        if action.kind == "conversation" or live.conversation is None:
            view = self._new_conversation(items[:MAX_ITEMS], action.metadata, live)
            items, target = items[MAX_ITEMS:], f"POST {self.t.prefix}/conversations"
        for start in range(0, len(items), MAX_ITEMS):
            if view is not None and live.conversation is None:
                break
            chunk = {"items": items[start : start + MAX_ITEMS]}
            view = self._send("POST", self._path(f"conversations/{live.conversation}/items"), chunk)[0]
        if view is None:
            return _not_sent("the message could not be translated")
        return Done(view, target=target)

    def _new_conversation(self, items: list[dict], metadata: dict | None, live: Live) -> ResponseView:
        body = {"items": items} | ({"metadata": metadata} if metadata else {})
        view = self._send("POST", self._path("conversations"), body)[0]
        conversation = (view.object or {}).get("id") if (view.status_code or 500) < 300 else None
        if conversation:
            live.conversation = conversation
            live.ids.bind(self.t.session.thread_id, conversation)
        return view

    def _response(self, action: Action, live: Live) -> Done:
        """createRun / createThreadAndRun / submitToolOutputsToRun: a response in the conversation."""
        if action.step.first.operation == "createThreadAndRun" or live.conversation is None:
            view = self._new_conversation(list(action.items[:MAX_ITEMS]), action.metadata, live)
            if live.conversation is None:
                return Done(view, target=f"POST {self.t.prefix}/conversations")
        inputs = list(action.inputs)
        for old, output in action.outputs:
            new = live.ids.items().get(old)
            if new is None:
                return _not_sent(f"needs the call_id answering {old}, which no response produced")
            inputs.append({"type": "function_call_output", "call_id": new, "output": output})
        body = {**self.t.templates[action.run_id or ""], "conversation": live.conversation}
        body |= {"input": inputs} if inputs else {}
        body |= {"stream": True} if action.stream else {}
        body |= {"background": True} if action.background else {}
        view = self._send("POST", self._path("responses"), body)[0]
        live.note(action.run_id, view)
        how = ", ".join(k for k in ("stream", "background") if body.get(k))
        return Done(
            view, target=f"POST {self.t.prefix}/responses ({how})" if how else f"POST {self.t.prefix}/responses"
        )

    def _poll(self, path: str, wanted: str | None) -> tuple[ResponseView, list[Difference]]:
        """Poll a response until the wanted status or a settled one, honouring `openai-poll-after-ms`."""
        deadline = time.monotonic() + self.timeout
        polls: list[ResponseView] = []
        while True:
            view, poll_after_ms = self._send("GET", path, None)
            polls.append(view)
            status = view.status
            if view.status_code != 200 or status is None or status == wanted or status in mapping.SETTLED:
                return merge_polls(polls), []
            pause = (poll_after_ms or DEFAULT_POLL_MS) / 1000
            if time.monotonic() + pause > deadline:
                why = f"timed out after {self.timeout:g}s waiting for the response to reach {wanted}; still {status}"
                return merge_polls(polls), [Difference("$.status", wanted, status, FAILURE, why)]
            time.sleep(pause)

    def _send(self, method: str, path: str, body: dict | None) -> tuple[ResponseView, int | None]:
        hdrs = [("Content-Type", "application/json"), *self.headers] if body is not None else self.headers
        content = json.dumps(body) if body is not None else None
        answer = exchange(self.client, method, path, content, hdrs)
        view = observe_response(answer.status_code, answer.text, streamed=answer.streamed)
        view.error = view.error or answer.error
        return view, answer.poll_after_ms

    def _path(self, tail: str) -> str:
        return f"{self.t.prefix}/{tail}" + (f"?{self.t.query}" if self.t.query else "")


def _not_sent(why: str) -> Done:
    return Done(None, notes=[Difference("$.request", None, None, FAILURE, f"not sent: {why} (an earlier step failed)")])
