"""The HTML page reduces the runs once (facts and stays shared by its inputs): every report on the
page equals the same report computed alone, with and without filters, on a real recording."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from polars.testing import assert_frame_equal

from runtap.analysis import REPORTS, Filters, facts, run_report
from runtap.analysis.facts import restrict
from runtap.analysis.html import load_timelines, page_inputs, report_specs, share_reductions
from runtap.analysis.loader import prepare
from runtap.analysis.registry import build_report, load_inputs
from runtap.store import derived, step_state
from runtap.store.intervals import stay_totals_sql
from runtap.store.multi import open_sources


@pytest.fixture(scope="module")
def computed(recording, tmp_path_factory) -> str:
    """A copy of the recording whose derived tables do not count (their cover mark removed), so
    every reader computes from the snapshots, as over several stores."""
    *_, db = recording
    copy = str(tmp_path_factory.mktemp("computed") / "store.duckdb")
    shutil.copy(db, copy)
    con = duckdb.connect(copy)
    con.execute("DELETE FROM runtap_meta WHERE key = ?", [derived.COVER_KEY])
    assert not derived.current(con)
    con.close()
    return copy


@pytest.mark.parametrize("source", ["stored", "computed"])
@pytest.mark.parametrize(
    "filters", [Filters(), Filters(models=("gpt-4o",)), Filters(models=("gpt-4o-mini", "o3-mini"))]
)
def test_reports_from_the_shared_reductions_equal_each_report_alone(recording, computed, source, filters):
    db = recording[-1] if source == "stored" else computed
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


@pytest.mark.parametrize("filters", [Filters(), Filters(models=("gpt-4o",)), Filters(threads=("none",))])
def test_reports_from_the_stored_tables_equal_those_from_the_snapshots(recording, computed, filters):
    """What the writer keeps (store/derived.py) gives every report exactly what computing from
    every snapshot gives."""
    with duckdb.connect(computed, read_only=True) as con:
        assert not derived.current(con)
    with duckdb.connect(recording[-1], read_only=True) as con:
        assert derived.current(con)
    for name in REPORTS:
        stored, scratch = run_report(recording[-1], name, filters), run_report(computed, name, filters)
        assert list(stored.sections) == list(scratch.sections)
        for section, frame in scratch.sections.items():
            assert_frame_equal(stored.sections[section], frame, check_exact=False), (name, section)


@pytest.mark.parametrize("filters", [Filters(), Filters(models=("gpt-4o",))])
def test_the_shared_stay_totals_are_computed_from_the_shared_boundaries(filters):
    # Given the shared boundaries, the totals read them only: the page computes the window over
    # every snapshot once.
    where = restrict(filters)
    assert "run_snapshots" in stay_totals_sql(where)
    assert "run_snapshots" not in stay_totals_sql(where, boundaries="shared_boundaries")


@pytest.mark.parametrize("source", ["stored", "computed"])
@pytest.mark.parametrize("filters", [Filters(), Filters(models=("gpt-4o",))])
def test_no_input_on_the_page_reduces_the_snapshots_again(recording, computed, monkeypatch, source, filters):
    # PAGE_FACTS must hold every fact the page's inputs ask for: an input asking for one more
    # would reduce the 10M snapshots again on its own (same figures, seconds slower). A store
    # that keeps each run's facts (run_state) is read as it is: nothing to reduce.
    db = recording[-1] if source == "stored" else computed
    with open_sources(db) as con:
        prepare(con)
        share_reductions(con, filters)
        assert (facts._shared_columns(con, facts.SHARED_RUN_FACTS) is None) == (source == "stored")

        def reduce_again(*args):
            raise AssertionError(f"an input reduced the runs again: {args}")

        monkeypatch.setattr(facts, "per_object", reduce_again)
        frames = load_inputs(con, page_inputs(report_specs(False), False), filters)
        load_timelines(con, filters)
    assert frames["duration_stats"].collect().height > 0


def test_steps_and_polls_are_read_from_the_stored_tables(recording, monkeypatch):
    # A current store's steps and polls come from step_state and run_polls: reducing the step
    # snapshots or counting the exchanges again is what they save.
    def compute_again(*args):
        raise AssertionError(f"computed from the snapshots: {args}")

    monkeypatch.setattr(step_state, "state_sql", compute_again)
    monkeypatch.setattr(derived, "polls_sql", compute_again)
    with open_sources(recording[-1]) as con:
        prepare(con)
        frames = load_inputs(con, ("step_cube", "duration_stats"), Filters())
    assert frames["step_cube"].collect()["tool_calls"].sum() > 0
    assert frames["duration_stats"].collect()["polls_per_run"].sum() > 0
