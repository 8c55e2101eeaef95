"""Show a replay report: a rich table per session, a JSON object, or a JUnit XML file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.table import Table

from runtap.analysis.formats import console_for
from runtap.replay.matchers import Difference
from runtap.replay.runner import NotComparable, ReplayReport, SessionResult


def to_dict(report: ReplayReport) -> dict[str, Any]:
    """The `--format json` object: counts, then per-session details.

    A migration (`--api responses`) adds `api`, `skipped`, per session the reason it was
    skipped and what was not comparable, and `costs` (tokens and cost per model, old and new).
    """
    out: dict[str, Any] = {
        "replay_id": report.replay_id,
        "target": report.target,
        "sessions": len(report.sessions),
        "passed": report.passed,
        "failed": report.failed,
    }
    migration = report.api != "runs"
    if migration:
        out |= {"api": report.api, "skipped": report.skipped}
    out["details"] = [_session_dict(s, migration) for s in report.sessions]
    if migration:
        out["costs"] = report.costs
    return out


def _session_dict(s: SessionResult, migration: bool = False) -> dict[str, Any]:
    extra = (
        {
            "skipped": s.skipped,
            "not_comparable": [
                {"step": n.step_index, "operation": n.operation, "reason": n.reason} for n in s.not_comparable
            ],
        }
        if migration
        else {}
    )
    return {
        "thread_id": s.thread_id,
        "replayed_thread_id": s.replayed_thread_id,
        "passed": s.passed,
        "duration_ms": round(s.duration_ms, 1),
        "steps": [
            {
                "index": r.step.index,
                "name": r.step.name,
                "kind": r.step.kind,
                "operation": r.step.first.operation,
                "sent": r.sent_target,
                "recorded_status": r.recorded_status,
                "replayed_status": r.replayed_status,
                "recorded_ms": _round(r.recorded_ms),
                "replayed_ms": _round(r.replayed_ms),
                "passed": r.passed,
                "differences": [_diff_dict(d) for d in r.differences],
            }
            for r in s.steps
        ],
        "differences": [_diff_dict(d) for d in s.differences],
    } | extra


def _diff_dict(d: Difference) -> dict[str, Any]:
    return {
        "path": d.path,
        "severity": d.severity,
        "message": d.message,
        "recorded": d.recorded,
        "replayed": d.replayed,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render_json(report: ReplayReport) -> str:
    """The report as one JSON object."""
    return json.dumps(to_dict(report), indent=2, default=str)


def render_table(report: ReplayReport, console: Console) -> None:
    """One line per clean session, a table of steps for any session with differences, a summary.

    A migration also lists skipped sessions and what was not comparable, and ends with the costs.
    """
    migration = report.api != "runs"
    for s in report.sessions:
        if s.skipped is not None:
            console.print(f"[yellow]SKIP[/] {s.thread_id}: {_escape(s.skipped)}")
            continue
        verdict = "[green]PASS[/]" if s.passed else "[red]FAIL[/]"
        new = f" -> {s.replayed_thread_id}" if s.replayed_thread_id else ""
        if not s.all_differences():
            console.print(f"{verdict} {s.thread_id}{new} ({len(s.steps)} steps, {_ms(s.duration_ms)} ms)")
        else:
            table = Table(title=f"{verdict} {s.thread_id}{new}", title_justify="left", expand=False)
            for column in ("#", "step", "status", "ms", "result"):
                table.add_column(column, overflow="fold")
            for r in s.steps:
                table.add_row(
                    str(r.step.index),
                    f"{r.step.name}\n-> {r.sent_target}" if migration else r.step.name,
                    f"{r.recorded_status} -> {r.replayed_status}",
                    f"{_ms(r.recorded_ms)} -> {_ms(r.replayed_ms)}",
                    _result(r.differences),
                )
            if s.differences:
                table.add_row("", "whole session", "", "", _result(s.differences))
            console.print(table)
        for (operation, reason), steps in _grouped(s.not_comparable).items():
            where = " ".join(f"#{i}" for i in steps)
            console.print(f"  [dim]not comparable: {operation} {where}: {_escape(reason)}[/]")
    colour = "green" if report.failed == 0 else "red"
    skipped = f", {report.skipped} skipped" if migration else ""
    console.print(
        f"[{colour}]{len(report.sessions)} sessions: {report.passed} passed, {report.failed} failed{skipped}[/]"
        f" (replay {report.replay_id} against {report.target}{' as the Responses API' if migration else ''})"
    )
    if migration and report.costs:
        render_costs(report.costs, console)


def _grouped(items: list[NotComparable]) -> dict[tuple, list]:
    """Not-comparable items by operation and reason, with the steps each was seen at."""
    groups: dict[tuple, list] = {}
    for n in items:
        groups.setdefault((n.operation, n.reason), []).append(n.step_index)
    return groups


def render_costs(rows: list[dict], console: Console) -> None:
    """The migration's cost table: per model, the recorded runs against the replayed responses."""
    table = Table(title="What the move costs: recorded runs -> replayed responses", title_justify="left")
    columns = ("model", "runs", "responses", "input old", "input new", "output old", "output new", "cached new")
    for column in (*columns, "USD old", "USD new", "change"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        change = row["cost_change"]
        table.add_row(
            row["model"] or "-",
            *(_n(row[key]) for key in _COUNTS),
            _usd(row["old_cost_usd"]),
            _usd(row["new_cost_usd"]),
            "-" if change is None else f"{change - 1:+.1%}",
        )
    console.print(table)
    total = rows[-1]
    if total["runs_without_usage"] or total["responses_without_usage"]:
        console.print(
            f"note: {total['runs_without_usage']} run(s) and {total['responses_without_usage']} response(s) "
            "reported no usage (v1 runs, cancelled or unfinished): counted, but not in the token sums or cost"
        )


_COUNTS = (
    "runs",
    "responses",
    "old_input_tokens",
    "new_input_tokens",
    "old_output_tokens",
    "new_output_tokens",
    "new_cached_tokens",
)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def _result(diffs: list[Difference]) -> str:
    if not diffs:
        return "[green]ok[/]"
    lines = [f"[{'red' if d.severity == 'failure' else 'yellow'}]{d.severity}[/]: {_escape(d.message)}" for d in diffs]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def write_junit(report: ReplayReport, path: str) -> None:
    """JUnit XML: one testsuite per session, one testcase per logical step (plus the session).

    A migration's skipped session, and each thing in a session that was not comparable, is a
    skipped testcase.
    """
    suites = ET.Element(
        "testsuites", name=f"runtap replay {report.replay_id}", tests=str(sum(len(s.steps) for s in report.sessions))
    )
    for s in report.sessions:
        cases = [(r.step.name, r.differences, r.replayed_ms, None) for r in s.steps]
        if s.differences:
            cases.append(("whole session", s.differences, None, None))
        if s.skipped is not None:
            cases.append(("session skipped", [], None, s.skipped))
        cases += [
            (f"{n.operation} (not comparable, step {n.step_index})", [], None, n.reason) for n in s.not_comparable
        ]
        failures = sum(any(d.severity == "failure" for d in diffs) for _, diffs, _, _ in cases)
        skipped = sum(why is not None for *_, why in cases)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=s.thread_id,
            tests=str(len(cases)),
            failures=str(failures),
            errors="0",
            **({"skipped": str(skipped)} if skipped else {}),
            time=f"{s.duration_ms / 1000:.3f}",
        )
        for index, (name, diffs, ms, why) in enumerate(cases):
            case = ET.SubElement(
                suite, "testcase", classname=s.thread_id, name=f"{index:02d} {name}", time=f"{(ms or 0) / 1000:.3f}"
            )
            if why is not None:
                ET.SubElement(case, "skipped", message=why)
            failed = [d for d in diffs if d.severity == "failure"]
            if failed:
                failure = ET.SubElement(case, "failure", message=failed[0].message, type="regression")
                failure.text = "\n".join(f"{d.path}: {d.message}" for d in failed)
            warnings = [d for d in diffs if d.severity == "warning"]
            if warnings:
                ET.SubElement(case, "system-out").text = "\n".join(f"warning {d.path}: {d.message}" for d in warnings)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def render_report(report: ReplayReport, fmt: str, junit: str | None = None) -> None:
    """Print a replay report as a table or JSON on stdout; also write JUnit XML to `junit` if given."""
    if junit:
        write_junit(report, junit)
    if fmt == "json":
        print(render_json(report))
    else:  # a migration's cost table is wide: piped, it is not wrapped (as the reports' tables)
        render_table(report, console_for() if report.api != "runs" else Console())
