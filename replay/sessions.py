"""Replay sessions: one recorded thread's exchanges, grouped into logical steps.

The recordings layer loads the exchanges, leaves out failed attempts a client retried and
groups them by thread (`runtap.recordings`). Replay does not resend every exchange one for one:
a recorded poll loop (consecutive GETs of one run, the SDK's `X-Stainless-Poll-Helper` polls) is
one logical "wait for outcome" step, and repeated GETs of one path keep only their last answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from runtap.errors import RuntapError
from runtap.recordings.exchanges import RecordedExchange, sources_of
from runtap.recordings.sessions import RecordedThread, group_threads, load_threads


@dataclass(frozen=True)
class Step:
    """A logical step: one request, or a wait for a run's outcome made of recorded polls."""

    index: int
    kind: str  # "request" | "wait"
    exchanges: tuple[RecordedExchange, ...]

    @property
    def first(self) -> RecordedExchange:
        """The exchange whose request replay sends."""
        return self.exchanges[0]

    @property
    def last(self) -> RecordedExchange:
        """The exchange whose response is the recorded outcome."""
        return self.exchanges[-1]

    @property
    def name(self) -> str:
        """A short label: operation and path."""
        op = self.first.operation or self.first.method
        suffix = f" (wait, {len(self.exchanges)} polls)" if self.kind == "wait" else ""
        return f"{op} {self.first.method} {self.first.path}{suffix}"

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


def build_steps(exchanges: Sequence[RecordedExchange]) -> list[Step]:
    """Group one session's ordered exchanges into logical steps (pure)."""
    groups: list[list[RecordedExchange]] = []
    for ex in exchanges:
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


def sessions_of(threads: Sequence[RecordedThread]) -> list[Session]:
    """A session per recorded thread; exchanges that belong to no thread are not replayed (pure)."""
    return [Session(t.thread_id, t.capture_id, tuple(build_steps(t.exchanges))) for t in threads if t.thread_id]


def build_sessions(exchanges: Sequence[RecordedExchange]) -> list[Session]:
    """Sessions from a recording's ordered exchanges: retried attempts dropped, grouped by thread (pure)."""
    return sessions_of(group_threads(exchanges))


def _same_resource(a: RecordedExchange, b: RecordedExchange) -> bool:
    return a.path == b.path and a.operation == b.operation


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
    sources = sources_of(dbs)
    recorded = load_threads(sources, capture=capture)
    return select_sessions(recorded, sources, threads=threads, capture=capture, since=since)


def select_sessions(
    recorded: Sequence[RecordedThread],
    sources: Sequence[str],
    *,
    threads: tuple[str, ...] = (),
    capture: str | None = None,
    since: datetime | None = None,
) -> list[Session]:
    """The sessions of loaded threads that the filters select (`capture` was applied when loading).

    Raises RuntapError when none is left, or a wanted thread is not among them.
    """
    wanted = set(threads)
    sessions = [s for s in sessions_of(recorded) if not wanted or s.thread_id in wanted]
    if since is not None:
        sessions = [s for s in sessions if s.started_at is not None and s.started_at >= since]
    db = ", ".join(sources)
    if not sessions:
        filters = _describe_filters(threads, capture, since)
        raise RuntapError(f"no recorded sessions in {db}{filters}; record some with `runtap proxy`")
    missing = wanted - {s.thread_id for s in sessions}
    if missing:
        raise RuntapError(f"no recorded session for thread {', '.join(sorted(missing))} in {db}")
    return sessions


def _describe_filters(threads, capture, since) -> str:
    parts = [
        f"thread {', '.join(threads)}" if threads else "",
        f"capture {capture}" if capture else "",
        f"since {since.isoformat()}" if since else "",
    ]
    parts = [p for p in parts if p]
    return f" matching {' and '.join(parts)}" if parts else ""
