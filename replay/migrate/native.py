"""Traffic that is already on the Responses API: grouped into sessions and skipped, with the reason.

A recording of an app in mid-migration holds both APIs. Responses and Conversations exchanges
belong to no thread; a migration replay has nothing to translate in them, so it does not send
them (replaying them as they are would test the target, not the migration). They are grouped
the way the app used them (a conversation, or a chain of responses linked by
`previous_response_id`) so the report can list each group as a skipped session.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from runtap.addon.response_routes import RESPONSE_OPERATIONS, match_response_route
from runtap.addon.sse import parse_sse_text
from runtap.recordings.exchanges import RecordedExchange
from runtap.recordings.sessions import RecordedThread

REASON = "already on the Responses API: nothing to translate, not replayed"


@dataclass(frozen=True)
class NativeSession:
    """Responses API exchanges that belong together: a conversation or a chain of responses."""

    label: str  # the conversation's id, or the chain's first response id
    exchanges: tuple[RecordedExchange, ...]

    @property
    def reason(self) -> str:
        """Why the session is skipped, with what it holds."""
        counts = Counter(ex.operation for ex in self.exchanges)
        held = ", ".join(f"{op} x{n}" if n > 1 else str(op) for op, n in counts.items())
        return f"native Responses API traffic ({held}): {REASON}"


def native_sessions(threads: Sequence[RecordedThread]) -> list[NativeSession]:
    """The Responses API exchanges among the recorded groups (those on no thread), as sessions (pure)."""
    group_of: dict[str, str] = {}
    groups: dict[str, list[RecordedExchange]] = {}
    for thread in threads:
        for ex in thread.exchanges:
            if thread.thread_id is not None or ex.operation not in RESPONSE_OPERATIONS:
                continue
            named = _ids(ex)
            known = next((group_of[i] for i in named if i in group_of), None)
            group = known or (named[0] if named else ex.exchange_id)
            for i in named:
                group_of.setdefault(i, group)
            groups.setdefault(group, []).append(ex)
    return [NativeSession(label, tuple(members)) for label, members in groups.items()]


def _ids(ex: RecordedExchange) -> list[str]:
    """The conversation and response ids an exchange names: path, request body and answer."""
    route = match_response_route(ex.method, ex.path)
    request, answer = _json(ex.request_body), _answer(ex)
    conversation = request.get("conversation")
    ids = [
        (answer.get("conversation") or {}).get("id") if isinstance(answer.get("conversation"), dict) else None,
        conversation.get("id") if isinstance(conversation, dict) else conversation,
        route.conversation_id if route else None,
        request.get("previous_response_id"),
        route.response_id if route else None,
        answer.get("id") if answer.get("object") in ("response", "conversation") else None,
    ]
    return [i for i in dict.fromkeys(ids) if isinstance(i, str) and i]


def _answer(ex: RecordedExchange) -> dict:
    """The response (or conversation) object an answer showed: the JSON body, or a stream's first."""
    if not ex.streamed:
        return _json(ex.response_body)
    for event in parse_sse_text(ex.response_body or "", None):
        data = _json(event.data)
        if isinstance(data.get("response"), dict):
            return data["response"]
    return {}


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
