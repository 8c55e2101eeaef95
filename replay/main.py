"""`runtap replay` as one call: replay (as recorded, or translated to the Responses API), store, show."""

from __future__ import annotations

from runtap.replay.options import ReplayOptions
from runtap.replay.render import render_report
from runtap.replay.results import save_report
from runtap.replay.runner import ReplayReport, run_replay


def replay_and_report(opts: ReplayOptions, fmt: str = "table", junit: str | None = None) -> int:
    """Replay, keep the results in the first store, print them (and write JUnit); return the exit code.

    0 when no replayed session found a regression (skipped ones do not count), 1 otherwise.
    """
    report = run(opts)
    save_report(opts.results_db, report)
    render_report(report, fmt, junit)
    return 0 if report.failed == 0 else 1


def run(opts: ReplayOptions) -> ReplayReport:
    """Run the replay `opts.api` asks for: the recorded runs API, or the migration to Responses."""
    if opts.api == "responses":
        from runtap.replay.migrate.runner import run_migration

        return run_migration(opts)
    return run_replay(opts)
