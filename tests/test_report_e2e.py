"""Reports over a real recording equal the simulator's ground truth exactly."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

from runtap.analysis import run_report


def _served_transitions(truth) -> Counter:
    counts: Counter = Counter()
    for run in truth["runs"]:
        seq = run["served_statuses"]
        counts.update(itertools.pairwise(seq))
    return counts


def test_transitions_report_equals_ground_truth(recording):
    *_, db = recording
    truth = recording[1]
    report = run_report(db, "transitions").main
    got = Counter({(r["from_status"], r["to_status"]): r["count"] for r in report.to_dicts()})
    assert got == _served_transitions(truth)


def test_tokens_report_equals_ground_truth(recording):
    *_, db = recording
    truth = recording[1]
    expected = defaultdict(lambda: {"runs": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    for run in truth["runs"]:
        row = expected[run["model"]]
        row["runs"] += 1
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            row[key] += (run["usage"] or {}).get(key, 0)
    rows = {r["model"]: r for r in run_report(db, "tokens").main.to_dicts()}
    assert set(rows) == set(expected)
    for model, want in expected.items():
        got = {k: rows[model][k] for k in want}
        assert got == want, model
        # Every model of the workload is priced by genai-prices.
        assert rows[model]["cost_usd"] is not None and rows[model]["cost_usd"] >= 0
