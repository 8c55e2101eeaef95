"""Run a replay: every selected session against the target, compared step by step.

Sessions run in parallel (`concurrency`), steps within a session in order, paced by `speed`.
A session's id mapping lives only as long as the session.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from runtap.errors import RuntapError
from runtap.recordings.ids import IdMap
from runtap.recordings.pacing import scaled
from runtap.replay.execute import check_reachable, make_client, send_step
from runtap.replay.matchers import FAILURE, Difference, MatchOptions, compare_step, drop_ignored, match_status_sequence
from runtap.replay.observe import Outcome, merge_polls, observe
from runtap.replay.options import ReplayOptions
from runtap.replay.sessions import Session, Step, load_sessions


@dataclass
class StepResult:
    """One logical step: what was recorded, what the target answered, and the differences."""

    step: Step
    sent_target: str | None
    recorded_status: int | None
    replayed_status: int | None
    recorded_ms: float | None
    replayed_ms: float | None
    differences: list[Difference]

    @property
    def passed(self) -> bool:
        """True when no difference is a failure (warnings allowed)."""
        return not any(d.severity == FAILURE for d in self.differences)


@dataclass(frozen=True)
class NotComparable:
    """Something recorded that the target's API has no counterpart for: reported, never a failure."""

    step_index: int | None  # the recorded step it belongs to (None: the whole session)
    operation: str | None
    reason: str


@dataclass
class SessionResult:
    """One replayed session (thread), or one skipped with the reason."""

    thread_id: str
    replayed_thread_id: str | None
    steps: list[StepResult]
    differences: list[Difference]  # session-wide: status sequences
    duration_ms: float
    not_comparable: list[NotComparable] = field(default_factory=list)
    skipped: str | None = None  # why the session was not replayed at all

    @property
    def passed(self) -> bool:
        """True when every step passed and no session-wide failure was found (never for a skipped one)."""
        if self.skipped is not None:
            return False
        return all(s.passed for s in self.steps) and not any(d.severity == FAILURE for d in self.differences)

    def all_differences(self) -> list[Difference]:
        """Every difference of the session, step ones first."""
        return [d for s in self.steps for d in s.differences] + self.differences


@dataclass
class ReplayReport:
    """The outcome of one `runtap replay`."""

    replay_id: str
    target: str
    started_at: datetime
    finished_at: datetime | None = None
    sessions: list[SessionResult] = field(default_factory=list)
    api: str = "runs"  # the API the target was spoken to in: runs (as recorded) or responses
    costs: list[dict] = field(default_factory=list)  # responses: tokens and cost per model, old and new

    @property
    def passed(self) -> int:
        """Number of sessions that passed."""
        return sum(s.passed for s in self.sessions)

    @property
    def skipped(self) -> int:
        """Number of sessions not replayed (nothing in them has a counterpart in the target's API)."""
        return sum(s.skipped is not None for s in self.sessions)

    @property
    def failed(self) -> int:
        """Number of replayed sessions with at least one regression."""
        return len(self.sessions) - self.passed - self.skipped


def run_replay(opts: ReplayOptions) -> ReplayReport:
    """Load the selected sessions, check the target answers, replay them all and compare.

    Raises RuntapError when nothing can be replayed: no sessions, or the target is down.
    """
    sessions = load_sessions(opts.dbs, threads=opts.threads, capture=opts.capture, since=opts.since)
    report = ReplayReport(uuid.uuid4().hex[:12], opts.target, datetime.now(UTC))
    with make_client(opts.target, opts.timeout) as client:
        check_reachable(client)
        with ThreadPoolExecutor(max_workers=opts.concurrency, thread_name_prefix="replay") as pool:
            futures = [pool.submit(replay_session, client, s, opts) for s in sessions]
            try:
                report.sessions = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    report.finished_at = datetime.now(UTC)
    check_credentials(report)
    return report


def check_credentials(report: ReplayReport) -> None:
    """Every session refused at its first step for auth is a set-up error, not a regression."""
    firsts = [s.steps[0] for s in report.sessions if s.steps]
    if firsts and all(f.replayed_status in (401, 403) and (f.recorded_status or 0) < 400 for f in firsts):
        status = firsts[0].replayed_status
        raise RuntapError(
            f"the target refused every session with HTTP {status}: "
            "set OPENAI_API_KEY or pass --header 'Authorization: Bearer ...'"
        )


def recorded_observation(step: Step) -> Outcome:
    """The recorded answer of a step, observed like a replayed one (poll loops merged)."""
    polls = [observe(ex.status_code, ex.response_body, streamed=ex.streamed) for ex in step.exchanges]
    return merge_polls(polls) if step.kind == "wait" else polls[0]


def replay_session(client: httpx.Client, session: Session, opts: ReplayOptions) -> SessionResult:
    """Replay one session's steps in order, learning new ids as they come back."""
    match = MatchOptions(opts.token_tolerance, opts.max_slowdown, opts.ignore)
    recorded = [recorded_observation(step) for step in session.steps]
    expected = set().union(*(obs.created_ids() for obs in recorded)) - set(opts.id_map)
    ids = IdMap(opts.id_map, expected=expected)
    replayed: list[Outcome] = []
    results: list[StepResult] = []
    started = time.monotonic()
    for step, rec in zip(session.steps, recorded):
        pace(session, step, started, opts.speed)
        sent = send_step(client, step, ids, opts.headers, opts.timeout)
        diffs = drop_ignored(sent.notes, opts.ignore)
        rep = sent.observation
        if rep is not None:
            ids.learn(rec.shown(), rep.shown())
            replayed.append(rep)
            diffs = compare_step(rec, rep, match, step.duration_ms, sent.duration_ms) + diffs
        results.append(
            StepResult(
                step,
                sent.target,
                rec.status_code,
                rep.status_code if rep else None,
                step.duration_ms,
                sent.duration_ms,
                diffs,
            )
        )
    session_diffs = drop_ignored(_status_sequences(recorded, replayed, ids), opts.ignore)
    return SessionResult(
        session.thread_id,
        ids.items().get(session.thread_id),
        results,
        session_diffs,
        (time.monotonic() - started) * 1000,
    )


def _status_sequences(recorded: list[Outcome], replayed: list[Outcome], ids: IdMap) -> list[Difference]:
    """Compare each run's status milestones over the whole session."""

    def by_run(observations: list[Outcome]) -> dict[str, list[str]]:
        runs: dict[str, list[str]] = {}
        for obs in observations:
            for run_id, status in obs.run_statuses:
                runs.setdefault(run_id, []).append(status)
        return runs

    rec_runs, rep_runs, mapping = by_run(recorded), by_run(replayed), ids.items()
    diffs = []
    for run_id, statuses in rec_runs.items():
        if mapping.get(run_id) in rep_runs:  # a run never created is already a step failure
            diffs += match_status_sequence(run_id, statuses, rep_runs[mapping[run_id]])
    return diffs


def pace(session: Session, step: Step, started: float, speed: float) -> None:
    """With speed N > 0, start each step at its recorded offset divided by N."""
    if speed == 0 or session.started_at is None or step.first.started_at is None:
        return
    offset = scaled((step.first.started_at - session.started_at).total_seconds(), speed)
    delay = started + offset - time.monotonic()
    if delay > 0:
        time.sleep(delay)
