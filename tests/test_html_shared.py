"""The HTML page reduces the runs once (facts and stays shared by its inputs): every report on the
page equals the same report computed alone, with and without filters, on a real recording."""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal

from runtap.analysis import REPORTS, Filters, facts, run_report
from runtap.analysis.facts import restrict
from runtap.analysis.html import load_timelines, page_inputs, report_specs, share_reductions
from runtap.analysis.loader import prepare
from runtap.analysis.registry import build_report, load_inputs
from runtap.store.intervals import stay_totals_sql
from runtap.store.multi import open_sources


@pytest.mark.parametrize(
    "filters", [Filters(), Filters(models=("gpt-4o",)), Filters(models=("gpt-4o-mini", "o3-mini"))]
)
def test_reports_from_the_shared_reductions_equal_each_report_alone(recording, filters):
    *_, db = recording
    with open_sources(db) as con:
        prepare(con)
        share_reductions(con, filters)
        shared = {name: build_report(spec, load_inputs(con, spec.inputs, filters)) for name, spec in REPORTS.items()}
    for name, page in shared.items():
        alone = run_report(db, name, filters)
        assert list(page.sections) == list(alone.sections)
        assert alone.main.height > 0, name
        for section, frame in alone.sections.items():
            assert_frame_equal(page.sections[section], frame, check_exact=False), (name, section)


@pytest.mark.parametrize("filters", [Filters(), Filters(models=("gpt-4o",))])
def test_the_shared_stay_totals_are_computed_from_the_shared_boundaries(filters):
    # Given the shared boundaries, the totals read them only: the page computes the window over
    # every snapshot once.
    where = restrict(filters)
    assert "run_snapshots" in stay_totals_sql(where)
    assert "run_snapshots" not in stay_totals_sql(where, boundaries="shared_boundaries")


@pytest.mark.parametrize("filters", [Filters(), Filters(models=("gpt-4o",))])
def test_every_input_on_the_page_reads_the_shared_run_facts(recording, monkeypatch, filters):
    # PAGE_FACTS must hold every fact the page's inputs ask for: an input asking for one more
    # would reduce the 10M snapshots again on its own (same figures, seconds slower).
    *_, db = recording
    with open_sources(db) as con:
        prepare(con)
        share_reductions(con, filters)

        def reduce_again(*args):
            raise AssertionError(f"an input reduced the runs again: {args}")

        monkeypatch.setattr(facts, "_matching_sql", reduce_again)
        frames = load_inputs(con, page_inputs(report_specs(False), False), filters)
        load_timelines(con, filters)
    assert frames["duration_stats"].collect().height > 0
