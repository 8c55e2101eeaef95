"""Recorded exchanges as replay and serve read them, loaded from one or several stores.

`load_exchanges` reads every recorded HTTP exchange (in request order) from the stores `--db`
named: a store file, a glob, a `runtap export --parquet` directory, or several read as one
(`store.multi`). Each becomes a `RecordedExchange`; SSE event arrival times are loaded only when
asked for (serve paces streams with them, replay does not need them).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from urllib.parse import urlsplit

from runtap.store.multi import expand_sources, open_stores

Headers = tuple[tuple[str, str], ...]
# Headers about the recorded connection and its framing, never about the request or the answer:
# replay does not resend them and serve does not send them back (each adds its own).
CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


def path_and_query(url: str) -> str:
    """A URL's path with its query string: what a request line names (`/v1/threads/...?x=1`)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True, slots=True)
class RecordedExchange:
    """One recorded HTTP exchange: the request, the response, and when they happened."""

    exchange_id: str
    operation: str | None
    method: str
    url: str
    thread_id: str | None
    status_code: int | None
    started_at: datetime | None
    duration_ms: float | None = None
    streamed: bool = False
    request_headers: Headers = ()
    request_body: str | None = None
    response_body: str | None = None
    response_headers: Headers = ()
    capture_id: str | None = None
    event_times: tuple[datetime, ...] = ()  # when each SSE event arrived (loaded on request)

    @property
    def target(self) -> str:
        """The recorded path with its query string: what replay sends and serve matches on."""
        return path_and_query(self.url)

    @property
    def path(self) -> str:
        """The recorded path without the query string."""
        return urlsplit(self.url).path

    @property
    def query(self) -> str:
        """The recorded query string, without the `?`."""
        return urlsplit(self.url).query

    @property
    def request(self) -> tuple[str, str, str | None]:
        """What makes two requests the same request: method, URL and body."""
        return (self.method, self.url, self.request_body)

    @property
    def is_write(self) -> bool:
        """Every method but GET changes state on the server."""
        return self.method != "GET"

    @property
    def event_gaps(self) -> tuple[float, ...]:
        """Seconds before each SSE event: the first after the request started, then between events."""
        if self.started_at is None:
            return ()
        times = [self.started_at, *self.event_times]
        return tuple(max(0.0, (b - a).total_seconds()) for a, b in pairwise(times))

    def request_header(self, name: str) -> str | None:
        """A recorded request header's value (the first one, case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.request_headers if key.lower() == wanted), None)


def sources_of(dbs: str | Sequence[str]) -> list[str]:
    """What `--db` named (a path, a glob, an export directory, or several) as existing sources."""
    return expand_sources([dbs] if isinstance(dbs, str) else list(dbs))


# TIMESTAMPTZ is read as naive UTC and made aware in Python.
_EXCHANGES_SQL = """
    SELECT exchange_id, operation, method, url, thread_id, status_code,
           timezone('UTC', request_started_at), duration_ms, coalesce(streamed, false),
           request_headers, request_body, response_body, response_headers, capture_id
    FROM exchanges {where}
    ORDER BY request_started_at, exchange_id
"""
_EVENTS_SQL = "SELECT exchange_id, timezone('UTC', received_at) FROM sse_events ORDER BY exchange_id, seq"


def load_exchanges(
    sources: Sequence[str], *, capture: str | None = None, events: bool = False
) -> list[RecordedExchange]:
    """Every recorded exchange of `sources` (read as one store), in request order.

    `capture` keeps one capture's exchanges; `events` also loads SSE arrival times. Raises
    RuntapError when a source is missing or is not a runtap store.
    """
    where, params = ("WHERE capture_id = ?", [capture]) if capture else ("", [])
    times: dict[str, list[datetime]] = defaultdict(list)
    with open_stores(sources) as con:
        rows = con.execute(_EXCHANGES_SQL.format(where=where), params).fetchall()
        if events:
            for exchange_id, received in con.execute(_EVENTS_SQL).fetchall():
                times[exchange_id].append(_aware(received))
    return [_exchange(row, times.get(row[0], ())) for row in rows]


def _exchange(row: tuple, times: Sequence[datetime]) -> RecordedExchange:
    (
        exchange_id,
        operation,
        method,
        url,
        thread_id,
        status_code,
        started_at,
        duration_ms,
        streamed,
        request_headers,
        request_body,
        response_body,
        response_headers,
        capture_id,
    ) = row
    if thread_id is None and operation == "createThread":  # stores that did not learn it
        thread_id = _json_id(response_body)
    return RecordedExchange(
        exchange_id=exchange_id,
        operation=operation,
        method=method.upper(),
        url=url,
        thread_id=thread_id,
        status_code=status_code,
        started_at=_aware(started_at),
        duration_ms=duration_ms,
        streamed=bool(streamed),
        request_headers=parse_headers(request_headers),
        request_body=request_body,
        response_body=response_body,
        response_headers=parse_headers(response_headers),
        capture_id=capture_id,
        event_times=tuple(times),
    )


def parse_headers(raw: str | None) -> Headers:
    """Stored headers (a JSON list of [name, value] pairs, or an object) as a tuple of pairs."""
    try:
        pairs = json.loads(raw) if raw else []
    except ValueError:
        return ()
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    return tuple((str(pair[0]), str(pair[1])) for pair in pairs if isinstance(pair, list | tuple) and len(pair) == 2)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _json_id(body: str | None) -> str | None:
    try:
        value = json.loads(body or "")
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) else None
