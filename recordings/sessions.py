"""Sessions by thread: a recording's exchanges grouped into the threads they belong to.

A session is every recorded exchange on one thread, in request order (for createThreadAndRun,
the thread that call created), after the failed attempts a client retried are left out
(`recordings.retries`). An exchange on no thread (a create that failed before a thread existed)
is a group of its own, with `thread_id` None: serve can still answer it, replay skips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runtap.recordings.exchanges import RecordedExchange, load_exchanges
from runtap.recordings.retries import without_retried_attempts


@dataclass(frozen=True, slots=True)
class RecordedThread:
    """One recorded thread's exchanges, in request order."""

    thread_id: str | None  # None: one exchange that belongs to no thread
    exchanges: tuple[RecordedExchange, ...]

    @property
    def capture_id(self) -> str | None:
        """The capture the thread's first exchange came from."""
        return self.exchanges[0].capture_id


def group_threads(exchanges: Sequence[RecordedExchange]) -> list[RecordedThread]:
    """Drop retried attempts, then group by thread in order of each thread's first exchange (pure)."""
    groups: dict[str, list[RecordedExchange]] = {}
    for ex in without_retried_attempts(exchanges):
        groups.setdefault(ex.thread_id if ex.thread_id is not None else f"\0{ex.exchange_id}", []).append(ex)
    return [RecordedThread(None if key.startswith("\0") else key, tuple(members)) for key, members in groups.items()]


def load_threads(sources: Sequence[str], *, capture: str | None = None, events: bool = False) -> list[RecordedThread]:
    """Load the recorded threads of one or several stores (`sources_of(--db values)`; see `load_exchanges`)."""
    return group_threads(load_exchanges(sources, capture=capture, events=events))
