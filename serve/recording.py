"""The recording `runtap serve` answers from: one read of the store(s), then held in memory.

The recordings layer loads the exchanges (SSE arrival times included), leaves out failed
attempts a client retried, and groups them into sessions by thread (`runtap.recordings`). Here
each playable exchange gets the key requests are matched on; a client that retries ends at the
retry's answer anyway, and one that does not would otherwise fail where the recording succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from runtap.addon.routes import match_route
from runtap.addon.sse import parse_sse_text
from runtap.errors import RuntapError
from runtap.recordings.exchanges import CONNECTION_HEADERS, Headers, RecordedExchange, sources_of
from runtap.recordings.ids import session_ids
from runtap.recordings.sessions import RecordedThread, load_threads
from runtap.serve.matching import RequestKey, normalize_body, normalize_query

# Response headers that describe the recorded connection or server, not the answer (the body is
# stored decoded, so its recorded content-encoding no longer applies).
_NOT_REPLAYED = CONNECTION_HEADERS | {"content-encoding", "date", "server", "set-cookie"}


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded exchange ready to be played: its key and the response headers worth sending."""

    exchange: RecordedExchange
    key: RequestKey
    headers: Headers


@dataclass(frozen=True, slots=True)
class RecordedSession:
    """One recorded thread's exchanges in order, and the session-scoped ids they mention."""

    number: int  # position in the recording (first session is 0)
    thread_id: str | None  # None for a create that failed before a thread existed
    exchanges: tuple[Recorded, ...]
    ids: frozenset[str]

    @property
    def first(self) -> Recorded:
        """The session's first exchange: usually createThread or createThreadAndRun."""
        return self.exchanges[0]


@dataclass(frozen=True, slots=True)
class Recording:
    """All sessions of a recording, and the recorded thread ids that lead to them."""

    sessions: tuple[RecordedSession, ...]
    by_thread: dict[str, RecordedSession]

    @property
    def exchange_count(self) -> int:
        """How many exchanges can be played back."""
        return sum(len(s.exchanges) for s in self.sessions)


def load_recording(db: str | Sequence[str]) -> Recording:
    """Read every runs-API exchange of the store(s) `db` names into memory, then close them.

    Raises RuntapError when a store is missing, unreadable, or there is nothing to serve.
    """
    sources = sources_of(db)
    recording = build_recording(load_threads(sources, events=True))
    if not recording.sessions:
        raise RuntapError(
            f"{', '.join(sources)} holds no recorded runs traffic to serve (record some with `runtap proxy`)"
        )
    return recording


def build_recording(threads: Sequence[RecordedThread]) -> Recording:
    """Key every playable exchange of each recorded thread, and collect each session's ids (pure)."""
    sessions: list[RecordedSession] = []
    for thread in threads:
        played = tuple(r for r in map(_recorded, thread.exchanges) if r is not None)
        if not played:
            continue
        ids: set[str] = set()
        for recorded in played:
            ids |= _response_ids(recorded.exchange)
            ids |= {i for i in (recorded.key.thread_id, recorded.key.run_id, recorded.key.step_id) if i}
        sessions.append(RecordedSession(len(sessions), thread.thread_id, played, frozenset(ids)))
    return Recording(tuple(sessions), {s.thread_id: s for s in sessions if s.thread_id})


def _recorded(ex: RecordedExchange) -> Recorded | None:
    """A playable exchange: a runs-API route that got an answer."""
    route = match_route(ex.method, ex.url) if ex.operation is not None and ex.status_code is not None else None
    if route is None:
        return None
    key = RequestKey(
        route.operation,
        route.thread_id,
        route.run_id,
        route.step_id,
        normalize_query(ex.query),
        normalize_body(ex.request_body),
    )
    headers = tuple((n, v) for n, v in ex.response_headers if n.lower() not in _NOT_REPLAYED)
    return Recorded(ex, key, headers)


def _response_ids(ex: RecordedExchange) -> set[str]:
    """The session-scoped ids a recorded response names (every event of a stream)."""
    texts = [event.data for event in parse_sse_text(ex.response_body or "")] if ex.streamed else [ex.response_body]
    ids: set[str] = set()
    for text in texts:
        try:
            ids |= session_ids(json.loads(text or ""))
        except ValueError:
            continue  # `data: [DONE]`, an HTML error page: no ids
    return ids
