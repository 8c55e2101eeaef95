"""Where `runtap report html`'s time goes: wall and CPU seconds per phase of one page, in a fresh process.

Wraps the steps `analysis.html.write_html` takes (imports, the shared reductions, each input's
loader, the timelines, the render) with timers and writes the page as `runtap report html` does,
--repeat times, each in its own interpreter; prints each phase's median and the load average.
CPU seconds count every DuckDB thread of the process. Use a copy of a benchmark store
(bench_reports.py builds one): the page only reads it.

    .venv/bin/python benchmarks/bench_html_phases.py --db PATH [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# Loader names grouped into the phases the benchmarks README reports.
PHASE_OF = {"operation_latency": "latency", "duration_stats": "durations (rest)", "step_cube": "steps"}


class Clock:
    """Wall and CPU seconds summed per phase name."""

    def __init__(self) -> None:
        self.phases: dict[str, list[float]] = {}

    def add(self, name: str, wall: float, cpu: float) -> None:
        """Add one timed span to phase `name`."""
        total = self.phases.setdefault(name, [0.0, 0.0])
        total[0] += wall
        total[1] += cpu

    def wrap(self, name, func):
        """`func`, timed into phase `name` (a string, or a function of the first argument)."""

        def timed(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                label = name(*args) if callable(name) else name
                self.add(label, time.perf_counter() - start, time.process_time() - cpu)

        return timed


def measure(db: str) -> dict[str, list[float]]:
    """One page in this (fresh) process: {phase: [wall s, CPU s]}, imports first."""
    clock = Clock()
    start, cpu = time.perf_counter(), time.process_time()
    from runtap.analysis import html, registry

    clock.add("imports", time.perf_counter() - start, time.process_time() - cpu)
    for name, loader in list(registry._LOADERS.items()):
        registry._LOADERS[name] = clock.wrap(PHASE_OF.get(name, "other inputs"), loader)
    for name, phase in (
        ("prepare", "open, prepare"),
        ("is_empty", "open, prepare"),
        ("share_run_facts", "runs' facts, shared"),
        ("share_stay_totals", "stays, shared"),
        ("load_timelines", "timelines"),
        ("render_html", "render"),
    ):
        setattr(html, name, clock.wrap(phase, getattr(html, name)))
    with tempfile.TemporaryDirectory() as out:
        page_start, page_cpu = time.perf_counter(), time.process_time()
        html.write_html(db, os.path.join(out, "report.html"))
        wall, used = time.perf_counter() - page_start, time.process_time() - page_cpu
    timed = [sum(v[i] for v in clock.phases.values() if v is not clock.phases["imports"]) for i in (0, 1)]
    clock.add("unaccounted (open, write)", wall - timed[0], used - timed[1])
    return clock.phases


def main() -> None:
    """Time --repeat pages, each in a fresh interpreter, and print each phase's medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="store path (read only)")
    parser.add_argument("--repeat", type=int, default=3, help="pages; figures are medians")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.db)))
        return
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    runs = []
    for _ in range(args.repeat):
        command = [sys.executable, __file__, "--db", args.db, "--measure"]
        out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        total = [sum(v[i] for v in runs[-1].values()) for i in (0, 1)]
        print(f"  page {len(runs)}: {total[0]:.2f} s wall, {total[1]:.2f} s CPU")
    print(f"{'phase':<28} {'wall s':>7} {'CPU s':>7}  (median of {len(runs)})")
    totals = [0.0, 0.0]
    for phase in runs[0]:
        figures = [statistics.median(run[phase][i] for run in runs) for i in (0, 1)]
        totals = [a + b for a, b in zip(totals, figures, strict=True)]
        print(f"{phase:<28} {figures[0]:7.2f} {figures[1]:7.2f}")
    print(f"{'total (sum of medians)':<28} {totals[0]:7.2f} {totals[1]:7.2f}")
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
