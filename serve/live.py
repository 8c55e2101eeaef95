"""One client thread being played from a recorded session: the cursor rules.

Writes (creates, submits, cancels, updates) are consumed in recorded order; a write the
client no longer sends is skipped. Reads (getRun, listRuns, steps) answer from the stretch of
recording between the last consumed write and the next one: the n-th identical read gets the
n-th recorded answer there, then the last one again (a poll loop plays its recorded statuses
and then stays at the final state). A read with no answer in that stretch repeats the latest
earlier answer to the same request (the state has not changed since), or else the last one
recorded (a recorded thread inspected directly).
"""

from __future__ import annotations

from dataclasses import replace

from runtap.recordings.ids import IdMap
from runtap.serve.matching import RequestKey, closeness, explain
from runtap.serve.recording import Recorded, RecordedSession


class LiveSession:
    """A client's thread: the recorded session(s) it may be, the id map, and the cursor.

    Until its second request a thread made by createThread may stand for any recorded session
    whose createThread had the same body (`candidates`); the request that follows decides.
    """

    def __init__(self, candidates: list[RecordedSession], ids: IdMap, pos: int) -> None:
        self.candidates = candidates
        self.ids = ids
        self.pos = pos  # index after the last consumed write
        self._reads: dict[str, int] = {}  # first matching exchange id -> times read

    @property
    def session(self) -> RecordedSession:
        """The recorded session this thread plays (the preferred one while still undecided)."""
        return self.candidates[0]

    @property
    def decided(self) -> bool:
        """True once the thread is bound to exactly one recorded session."""
        return len(self.candidates) == 1

    def key_for(self, key: RequestKey, session: RecordedSession) -> RequestKey:
        """`key` as it would read in `session` (only the thread id differs between candidates)."""
        return replace(key, thread_id=session.thread_id)

    def peek(self, key: RequestKey, session: RecordedSession) -> bool:
        """Would `session` answer `key` at the current cursor? (no state change)"""
        return _find(session.exchanges, self.pos, key) is not None

    def take(self, key: RequestKey) -> Recorded | None:
        """Consume and return the recorded answer to `key`, or None if the session has none."""
        exchanges = self.session.exchanges
        found = _find(exchanges, self.pos, key)
        if found is None:
            return None
        index, stretch = found
        if not key.is_read:
            self.pos = index + 1
            self._reads.clear()
            return exchanges[index]
        if not stretch:  # an earlier answer, repeated
            return exchanges[index]
        first = stretch[0].exchange.exchange_id
        count = self._reads.get(first, 0)
        self._reads[first] = count + 1
        return stretch[min(count, len(stretch) - 1)]

    def closest(self, key: RequestKey) -> tuple[Recorded, str]:
        """The recorded request nearest to `key` in this session, and why it differs."""
        exchanges = self.session.exchanges
        best = min(range(len(exchanges)), key=lambda i: (*closeness(exchanges[i].key, key), i < self.pos, i))
        return exchanges[best], explain(exchanges[best].key, key)


def _find(exchanges: tuple[Recorded, ...], pos: int, key: RequestKey) -> tuple[int, list[Recorded]] | None:
    """Where `key` is answered from `pos` on: (index, the read stretch's matches) or None."""
    if not key.is_read:
        for index in range(pos, len(exchanges)):
            if exchanges[index].key == key:
                return index, []
        return None
    end = next((j for j in range(pos, len(exchanges)) if not exchanges[j].key.is_read), len(exchanges))
    stretch = [ex for ex in exchanges[pos:end] if ex.key == key]
    if stretch:
        return pos, stretch
    # Nothing since the last write: the latest earlier answer; failing that (a recorded thread
    # used directly, before any write), the last recorded answer, i.e. the final state.
    for index in [*range(pos - 1, -1, -1), *range(len(exchanges) - 1, end - 1, -1)]:
        if exchanges[index].key == key:
            return index, []
    return None
