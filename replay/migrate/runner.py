"""Run a migration replay: every recorded Assistants session, translated, against a Responses API target.

Sessions run in parallel (`concurrency`), actions within a session in order, paced by `speed`,
as the runs replay does. A session with nothing comparable, and traffic already on the
Responses API, is skipped with the reason. The report ends with what the move costs.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from runtap.recordings.exchanges import sources_of
from runtap.recordings.ids import IdMap
from runtap.recordings.sessions import load_threads
from runtap.recordings.toolcalls import pair, run_tool_calls
from runtap.replay.execute import check_reachable, make_client
from runtap.replay.matchers import MatchOptions, drop_ignored
from runtap.replay.migrate import mapping
from runtap.replay.migrate.compare import compare_step, match_message
from runtap.replay.migrate.costs import migration_costs
from runtap.replay.migrate.native import native_sessions
from runtap.replay.migrate.observe import ResponseView
from runtap.replay.migrate.send import Live, Sender
from runtap.replay.migrate.translate import Translation, translate
from runtap.replay.observe import Outcome
from runtap.replay.options import ReplayOptions
from runtap.replay.runner import NotComparable, ReplayReport, SessionResult, StepResult, check_credentials, pace
from runtap.replay.sessions import select_sessions


def run_migration(opts: ReplayOptions) -> ReplayReport:
    """Load the selected sessions, translate them, replay them against the target and compare.

    Raises RuntapError when nothing can be replayed: no sessions, or the target is down.
    """
    sources = sources_of(opts.dbs)
    threads = load_threads(sources, capture=opts.capture)
    sessions = select_sessions(threads, sources, threads=opts.threads, capture=opts.capture, since=opts.since)
    translations = [translate(s) for s in sessions]
    report = ReplayReport(uuid.uuid4().hex[:12], opts.target, datetime.now(UTC), api="responses")
    results: dict[int, tuple[SessionResult, list[dict]]] = {}
    with make_client(opts.target, opts.timeout) as client:
        check_reachable(client)
        with ThreadPoolExecutor(max_workers=opts.concurrency, thread_name_prefix="migrate") as pool:
            futures = {
                i: pool.submit(replay_translation, client, t, opts) for i, t in enumerate(translations) if t.comparable
            }
            try:
                results = {i: f.result() for i, f in futures.items()}
            except BaseException:
                for f in futures.values():
                    f.cancel()
                raise
    report.sessions = [results[i][0] if i in results else _skipped(t) for i, t in enumerate(translations)]
    if not opts.threads:
        report.sessions += [
            SessionResult(n.label, None, [], [], 0.0, skipped=n.reason)
            for n in native_sessions(threads)
            if opts.since is None or (n.exchanges[0].started_at and n.exchanges[0].started_at >= opts.since)
        ]
    report.finished_at = datetime.now(UTC)
    check_credentials(report)
    report.costs = _costs(translations, results)
    return report


def replay_translation(
    client: httpx.Client, translation: Translation, opts: ReplayOptions
) -> tuple[SessionResult, list[dict]]:
    """Send one translated session's actions in order and compare each answer with the recorded one.

    Returns the session's result and the final state of every response the target made for it.
    """
    match = MatchOptions(opts.token_tolerance, opts.max_slowdown, opts.ignore)
    session = translation.session
    live = Live(IdMap(opts.id_map))
    sender = Sender(client, translation, opts.headers, opts.timeout)
    steps: list[StepResult] = []
    not_comparable: list[NotComparable] = []
    started = time.monotonic()
    for action, rec in zip(translation.actions, translation.recorded):
        op = action.step.first.operation
        not_comparable += [NotComparable(action.step.index, op, why) for why in action.not_comparable]
        if not action.sent:
            continue
        pace(session, action.step, started, opts.speed)
        done = sender.perform(action, live, _wanted(rec, action.run_id))
        diffs = drop_ignored(done.notes, opts.ignore)
        if done.view is not None:
            responses = live.responses.get(action.run_id or "", {})
            found, notes = compare_step(action.step, action.run_id, rec, done.view, responses, match, done.duration_ms)
            diffs = found + diffs
            not_comparable += [NotComparable(action.step.index, op, why) for why in notes]
            _learn_calls(live, rec, action.run_id, done.view)
        replayed = done.view.status_code if done.view else None
        steps.append(
            StepResult(
                action.step, done.target, rec.status_code, replayed, action.step.duration_ms, done.duration_ms, diffs
            )
        )
    result = SessionResult(
        session.thread_id,
        live.conversation,
        steps,
        drop_ignored(_messages(translation, live), opts.ignore),
        (time.monotonic() - started) * 1000,
        not_comparable,
    )
    return result, [r for made in live.responses.values() for r in made.values()]


def _wanted(rec: Outcome, run_id: str | None) -> str | None:
    """The response status a poll waits for: the recorded run's last one, mapped."""
    status = next((s for r, s in reversed(rec.run_statuses) if r == run_id), None)
    return mapping.STATUS.get(status or "")


def _learn_calls(live: Live, rec: Outcome, run_id: str | None, view: ResponseView) -> None:
    """Pair the run's tool calls with the response's function calls (name and arguments first)."""
    run = rec.objects["run"].get(run_id) if run_id else None
    if run is None:
        return
    for a, b in pair(run_tool_calls(run), view.function_calls()):
        if a is not None and b is not None and a.id and b.id:
            live.ids.bind(a.id, b.id)


def _messages(translation: Translation, live: Live):
    """Per run: an assistant message wherever the recorded run produced one."""
    diffs = []
    for run_id in translation.templates:
        diffs += match_message(run_id, _wrote_message(translation, run_id), live.responses.get(run_id, {}))
    return diffs


def _wrote_message(translation: Translation, run_id: str) -> bool:
    """Whether anything recorded in the session shows the run writing an assistant message."""
    for obs in translation.recorded:
        if any(m.get("run_id") == run_id and m.get("role") == "assistant" for m in obs.of("message")):
            return True
        if any(s.get("run_id") == run_id and s.get("type") == "message_creation" for s in obs.of("step")):
            return True
    return False


def _skipped(translation: Translation) -> SessionResult:
    ops = ", ".join(dict.fromkeys(str(a.step.first.operation) for a in translation.actions))
    notes = [
        NotComparable(a.step.index, a.step.first.operation, why)
        for a in translation.actions
        for why in a.not_comparable
    ]
    reason = f"nothing in it has a Responses counterpart ({ops})"
    return SessionResult(translation.session.thread_id, None, [], [], 0.0, notes, skipped=reason)


def _costs(translations: list[Translation], results: dict[int, tuple[SessionResult, list[dict]]]) -> list[dict]:
    """Tokens and cost per model of the replayed sessions: their recorded runs, and the responses made."""
    runs, responses = [], []
    for i, translation in enumerate(translations):
        if i not in results:
            continue
        final: dict[str, dict] = {}
        for obs in translation.recorded:
            for run_id, run in obs.objects["run"].items():
                if run_id in translation.templates and (isinstance(run.get("usage"), dict) or run_id not in final):
                    final[run_id] = run
        runs += final.values()
    for _, made in results.values():
        responses += made
    return migration_costs(runs, responses)
