"""The recording `runtap serve` answers from: one read of the store, then held in memory.

Exchanges are grouped into sessions (one recorded thread each, in request order; DESIGN.md).
A failed attempt that the client sent again (408/409/429/5xx followed by the same request) is
left out: a client that retries ends at the retry's answer anyway, and one that does not
retry would otherwise fail where the recording succeeded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

from runtap.addon.routes import match_route
from runtap.errors import RuntapError
from runtap.serve.ids import ids_in_json_text
from runtap.serve.matching import RequestKey, normalize_body, normalize_query
from runtap.store.reader import open_store

_RETRIED = {408, 409, 429}
# Response headers that describe the recorded connection, not the answer.
_HOP_HEADERS = {
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
    "set-cookie",
}

_EXCHANGES_SQL = """
    SELECT exchange_id, thread_id, method, url, status_code, coalesce(streamed, false),
           response_headers, request_body, response_body, epoch(request_started_at)
    FROM exchanges
    WHERE operation IS NOT NULL AND status_code IS NOT NULL
    ORDER BY request_started_at, exchange_id
"""
_EVENTS_SQL = "SELECT exchange_id, epoch(received_at) FROM sse_events ORDER BY exchange_id, seq"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded exchange, ready to be matched and played back."""

    exchange_id: str
    key: RequestKey
    method: str
    path: str  # recorded path and query, for messages
    status: int
    headers: tuple[tuple[str, str], ...]  # response headers worth replaying
    response: str
    streamed: bool
    event_gaps: tuple[float, ...]  # seconds before each SSE event (the first: after the request)


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
    """All sessions of a store, and the recorded thread ids that lead to them."""

    sessions: tuple[RecordedSession, ...]
    by_thread: dict[str, RecordedSession]

    @property
    def exchange_count(self) -> int:
        """How many exchanges can be played back."""
        return sum(len(s.exchanges) for s in self.sessions)


def load_recording(db: str) -> Recording:
    """Read every runs-API exchange of the store at `db` into memory, then close the file.

    Raises RuntapError when the store is missing, unreadable, or holds nothing to serve.
    """
    with open_store(db) as con:
        rows = con.execute(_EXCHANGES_SQL).fetchall()
        times: dict[str, list[float]] = defaultdict(list)
        for exchange_id, received in con.execute(_EVENTS_SQL).fetchall():
            times[exchange_id].append(received)
    recording = build_recording(rows, times)
    if not recording.sessions:
        raise RuntapError(f"{db} holds no recorded runs traffic to serve (record some with `runtap proxy`)")
    return recording


def build_recording(rows: list[tuple], event_times: dict[str, list[float]]) -> Recording:
    """Group exchange rows (in `_EXCHANGES_SQL` column order) into sessions (pure)."""
    kept = _without_retried_attempts(rows)
    groups: dict[str, list[tuple[Recorded, tuple]]] = {}
    for row in kept:
        recorded, thread_id = _recorded(row, event_times.get(row[0], []))
        if recorded is not None:
            groups.setdefault(thread_id or f"\0{row[0]}", []).append((recorded, row))
    sessions = []
    for number, (name, items) in enumerate(groups.items()):
        ids: set[str] = set()
        for recorded, _row in items:
            ids |= ids_in_json_text(recorded.response)
            ids |= {i for i in (recorded.key.thread_id, recorded.key.run_id, recorded.key.step_id) if i}
        thread_id = None if name.startswith("\0") else name
        sessions.append(RecordedSession(number, thread_id, tuple(r for r, _ in items), frozenset(ids)))
    return Recording(tuple(sessions), {s.thread_id: s for s in sessions if s.thread_id})


def _recorded(row: tuple, times: list[float]) -> tuple[Recorded | None, str | None]:
    exchange_id, thread_id, method, url, status, streamed, headers, body, response, started = row
    route = match_route(method, url)
    if route is None:
        return None, None
    parts = urlsplit(url)
    response = response or ""
    key = RequestKey(
        route.operation,
        route.thread_id,
        route.run_id,
        route.step_id,
        normalize_query(parts.query),
        normalize_body(body),
    )
    gaps = tuple(max(0.0, b - a) for a, b in zip([started, *times], times)) if started is not None else ()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return Recorded(
        exchange_id, key, method, target, status, _replay_headers(headers), response, bool(streamed), gaps
    ), thread_id


def _replay_headers(raw: str | None) -> tuple[tuple[str, str], ...]:
    try:
        pairs = json.loads(raw) if raw else []
    except ValueError:
        return ()
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    return tuple((str(n), str(v)) for n, v in pairs if str(n).lower() not in _HOP_HEADERS)


def _without_retried_attempts(rows: list[tuple]) -> list[tuple]:
    """Drop failed attempts that the same request (method, URL, body) followed later."""
    later: set[tuple] = set()
    kept = []
    for row in reversed(rows):
        request = (row[2], row[3], row[7])
        status = row[4]
        if not ((status >= 500 or status in _RETRIED) and request in later):
            kept.append(row)
        later.add(request)
    return kept[::-1]
