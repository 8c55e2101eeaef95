"""Which recorded session answers a request: new threads, known threads, recorded threads.

A createThread / createThreadAndRun picks the recorded session whose first request has the
same normalized body, preferring sessions played least often and then recording order, so a
workload run once plays every recorded session once, and run again plays them again (with
fresh ids). A request on a thread this server handed out goes to that thread's `LiveSession`;
a request naming a recorded thread id directly (a test that hard-codes one) adopts that
session as recorded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

from runtap.addon.routes import Route, match_route
from runtap.recordings.ids import IdMap
from runtap.recordings.retries import CREATES
from runtap.serve.live import LiveSession
from runtap.serve.matching import RequestKey, closeness, explain, normalize_body, normalize_query
from runtap.serve.recording import Recorded, RecordedSession, Recording


@dataclass(frozen=True, slots=True)
class Reply:
    """A recorded answer and the id map that turns it into this client's answer."""

    recorded: Recorded
    ids: IdMap


@dataclass(frozen=True, slots=True)
class Miss:
    """No recorded answer: the one-line reason (it names the closest recorded request)."""

    message: str


class Registry:
    """The server's state: live threads, how often each recorded session was played, ids issued."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self._issued: set[str] = set()
        self._plays: dict[int, int] = defaultdict(int)  # session number -> times bound
        self._live: dict[str, LiveSession] = {}  # served thread id -> live session

    def answer(self, method: str, target: str, body: str) -> Reply | Miss:
        """Find the recorded answer to one request (`target` is its path and query)."""
        route = match_route(method, target)
        label = f"{method.upper()} {urlsplit(target).path}"
        if route is None:
            return Miss(
                f"{label} is not an Assistants runs-API request that runtap records "
                "(threads, messages, runs, run steps), so there is no recording of it"
            )
        query = urlsplit(target).query
        if route.thread_id is None:
            return self._create(route.operation, query, body, label)
        live = self._live.get(route.thread_id) or self._adopt(route.thread_id)
        if live is None:
            return Miss(f"{label}: thread {route.thread_id} was neither created through this server nor recorded")
        if not live.decided:
            self._decide(live, _key(live.ids, route, query, body))
        key = _key(live.ids, route, query, body)
        recorded = live.take(key)
        if recorded is None:
            nearest, why = live.closest(key)
            return Miss(
                f"no recorded {route.operation} matches {label}; closest recorded request is "
                f"{nearest.key.operation} {nearest.exchange.target} (session of thread "
                f"{live.session.thread_id}): {why or 'already answered'}"
            )
        return Reply(recorded, live.ids)

    def _create(self, operation: str, query: str, body: str, label: str) -> Reply | Miss:
        key = RequestKey(operation, None, None, None, normalize_query(query), normalize_body(body))
        sessions = [s for s in self.recording.sessions if s.first.key == key]
        if not sessions:
            return Miss(self._no_create(key, label))
        sessions.sort(key=lambda s: (self._plays[s.number], s.number))
        chosen = sessions[0]
        ids = IdMap(issued=self._issued)
        if chosen.thread_id is None:  # a recorded create that failed: answer as recorded
            self._plays[chosen.number] += 1
            return Reply(chosen.first, ids)
        # createThread's answer names only the thread, so the next request may still pick
        # another recorded session with the same first request; createThreadAndRun decides now.
        candidates = sessions if operation == "createThread" else [chosen]
        live = LiveSession(candidates, ids, pos=1)
        served = ids.bind(chosen.thread_id)
        if live.decided:
            self._bind(live, chosen)
        self._live[served] = live
        return Reply(chosen.first, ids)

    def _decide(self, live: LiveSession, key: RequestKey) -> None:
        """Bind an undecided thread to the least-played candidate that answers `key`."""
        fitting = [s for s in live.candidates if live.peek(live.key_for(key, s), s)]
        chosen = min(fitting or live.candidates[:1], key=lambda s: (self._plays[s.number], s.number))
        served_thread = live.ids.get(live.session.thread_id)
        if chosen is not live.session:
            live.ids = IdMap(issued=self._issued)
            live.ids.bind(chosen.thread_id, served_thread)
        live.candidates = [chosen]
        self._bind(live, chosen)

    def _bind(self, live: LiveSession, session: RecordedSession) -> None:
        self._plays[session.number] += 1
        for recorded_id in sorted(session.ids):
            live.ids.bind(recorded_id)

    def _adopt(self, thread_id: str) -> LiveSession | None:
        """A recorded thread id used directly: play that session with its recorded ids."""
        session = self.recording.by_thread.get(thread_id)
        if session is None or thread_id in self._issued:
            return None
        live = LiveSession([session], IdMap(issued=self._issued), pos=0)
        self._bind(live, session)
        self._live[thread_id] = live
        return live

    def _no_create(self, key: RequestKey, label: str) -> str:
        firsts = [s.first for s in self.recording.sessions if s.first.key.operation in CREATES]
        if not firsts:
            return f"no recorded {key.operation} matches {label}: the recording has no thread creations"
        nearest = min(firsts, key=lambda r: closeness(r.key, key))
        return (
            f"no recorded {key.operation} matches {label}; closest recorded request is "
            f"{nearest.key.operation} {nearest.exchange.target}: {explain(nearest.key, key)}"
        )


def _key(ids: IdMap, route: Route, query: str, body: str) -> RequestKey:
    """The request's key in recorded ids."""
    return RequestKey(
        route.operation,
        ids.recorded(route.thread_id),
        ids.recorded(route.run_id),
        ids.recorded(route.step_id),
        normalize_query(ids.restore(query)),
        normalize_body(ids.restore(body)),
    )
