"""Recorded sessions: one thread's exchanges, in order, grouped into logical steps.

A session is every recorded exchange on one thread (DESIGN.md). Replay does not resend every
exchange one for one: a recorded poll loop (consecutive GETs of one run, the SDK's
`X-Stainless-Poll-Helper` polls) is one logical "wait for outcome" step, repeated GETs of one
path keep only their last answer, and an SDK retry of a failed attempt is replayed once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from runtap.errors import RuntapError
from runtap.store.multi import expand_sources, open_stores

_RETRIED_STATUSES = {408, 409, 429}  # plus every 5xx: what the openai SDK retries


@dataclass(frozen=True)
class Exchange:
    """One recorded HTTP exchange, as replay needs it."""

    exchange_id: str
    operation: str | None
    method: str
    url: str
    thread_id: str | None
    status_code: int | None
    started_at: datetime | None
    duration_ms: float | None
    streamed: bool
    request_headers: tuple[tuple[str, str], ...]
    request_body: str | None
    response_body: str | None

    @property
    def target(self) -> str:
        """The recorded path with its query string: what replay sends to the new host."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class Step:
    """A logical step: one request, or a wait for a run's outcome made of recorded polls."""

    index: int
    kind: str  # "request" | "wait"
    exchanges: tuple[Exchange, ...]

    @property
    def first(self) -> Exchange:
        """The exchange whose request replay sends."""
        return self.exchanges[0]

    @property
    def last(self) -> Exchange:
        """The exchange whose response is the recorded outcome."""
        return self.exchanges[-1]

    @property
    def name(self) -> str:
        """A short label: operation and path."""
        op = self.first.operation or self.first.method
        suffix = f" (wait, {len(self.exchanges)} polls)" if self.kind == "wait" else ""
        return f"{op} {self.first.method} {urlsplit(self.first.url).path}{suffix}"

    @property
    def duration_ms(self) -> float | None:
        """Recorded time from the first request's start to the last response's end."""
        first, last = self.first, self.last
        if first.started_at is None or last.started_at is None or last.duration_ms is None:
            return None
        return (last.started_at - first.started_at).total_seconds() * 1000 + last.duration_ms


@dataclass(frozen=True)
class Session:
    """One recorded thread and its logical steps."""

    thread_id: str
    capture_id: str | None
    steps: tuple[Step, ...]

    @property
    def started_at(self) -> datetime | None:
        """When the session's first recorded request started."""
        return self.steps[0].first.started_at if self.steps else None


def build_steps(exchanges: list[Exchange]) -> list[Step]:
    """Group one session's ordered exchanges into logical steps (pure)."""
    kept = [ex for i, ex in enumerate(exchanges) if not _is_retried(ex, exchanges[i + 1 : i + 2])]
    groups: list[list[Exchange]] = []
    for ex in kept:
        prev = groups[-1][-1] if groups else None
        if prev is not None and ex.method == "GET" and prev.method == "GET" and _same_resource(prev, ex):
            groups[-1].append(ex)
        else:
            groups.append([ex])
    steps = []
    for index, group in enumerate(groups):
        if group[0].operation == "getRun":
            steps.append(Step(index, "wait", tuple(group)))
        else:  # a repeated GET of something else: its last answer is the one that counts
            steps.append(Step(index, "request", (group[-1],) if len(group) > 1 else tuple(group)))
    return steps


def _same_resource(a: Exchange, b: Exchange) -> bool:
    return urlsplit(a.url).path == urlsplit(b.url).path and a.operation == b.operation


def _is_retried(ex: Exchange, following: list[Exchange]) -> bool:
    """A failed attempt the client sent again at once: replay sends the request only once."""
    failed = ex.status_code is not None and (ex.status_code >= 500 or ex.status_code in _RETRIED_STATUSES)
    if not failed or not following:
        return False
    nxt = following[0]
    return (nxt.method, nxt.url, nxt.request_body) == (ex.method, ex.url, ex.request_body)


# TIMESTAMPTZ is read as naive UTC (DuckDB would need pytz to hand out aware datetimes).
_COLUMNS = (
    "exchange_id, capture_id, operation, method, url, thread_id, status_code, "
    "timezone('UTC', request_started_at), duration_ms, streamed, request_headers, request_body, response_body"
)


def load_sessions(
    dbs: str | tuple[str, ...],
    *,
    threads: tuple[str, ...] = (),
    capture: str | None = None,
    since: datetime | None = None,
) -> list[Session]:
    """Load recorded sessions from one or several stores (read as one), oldest first, filtered.

    Raises RuntapError when the store has no session matching the filters.
    """
    where, params = ["TRUE"], []
    if capture:
        where.append("capture_id = ?")
        params.append(capture)
    sources = expand_sources([dbs] if isinstance(dbs, str) else list(dbs))
    db = ", ".join(sources)
    with open_stores(sources) as con:
        rows = con.execute(
            f"SELECT {_COLUMNS} FROM exchanges WHERE {' AND '.join(where)} ORDER BY request_started_at, exchange_id",
            params,
        ).fetchall()
    by_thread: dict[str, list[Exchange]] = {}
    captures: dict[str, str | None] = {}
    for row in rows:
        ex = _exchange(row)
        if ex.thread_id is None:
            continue
        by_thread.setdefault(ex.thread_id, []).append(ex)
        captures.setdefault(ex.thread_id, row[1])
    wanted = set(threads)
    sessions = [
        Session(thread_id, captures[thread_id], tuple(build_steps(exs)))
        for thread_id, exs in by_thread.items()
        if (not wanted or thread_id in wanted)
    ]
    if since is not None:
        sessions = [s for s in sessions if s.started_at is not None and s.started_at >= since]
    if not sessions:
        filters = _describe_filters(threads, capture, since)
        raise RuntapError(f"no recorded sessions in {db}{filters}; record some with `runtap proxy`")
    missing = wanted - {s.thread_id for s in sessions}
    if missing:
        raise RuntapError(f"no recorded session for thread {', '.join(sorted(missing))} in {db}")
    return sessions


def _exchange(row) -> Exchange:
    (
        exchange_id,
        _capture,
        operation,
        method,
        url,
        thread_id,
        status_code,
        started_at,
        duration_ms,
        streamed,
        headers,
        request_body,
        response_body,
    ) = row
    if thread_id is None and operation == "createThread":
        thread_id = _json_id(response_body)
    pairs = json.loads(headers) if headers else []
    return Exchange(
        exchange_id=exchange_id,
        operation=operation,
        method=method.upper(),
        url=url,
        thread_id=thread_id,
        status_code=status_code,
        started_at=started_at.replace(tzinfo=UTC) if started_at else None,
        duration_ms=duration_ms,
        streamed=bool(streamed),
        request_headers=tuple((str(k), str(v)) for k, v in pairs),
        request_body=request_body,
        response_body=response_body,
    )


def _json_id(body: str | None) -> str | None:
    try:
        value = json.loads(body or "")
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) else None


def _describe_filters(threads, capture, since) -> str:
    parts = [
        f"thread {', '.join(threads)}" if threads else "",
        f"capture {capture}" if capture else "",
        f"since {since.isoformat()}" if since else "",
    ]
    parts = [p for p in parts if p]
    return f" matching {' and '.join(parts)}" if parts else ""
