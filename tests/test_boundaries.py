"""The status boundaries the writer keeps (store/derived.py) equal those computed from every
snapshot, however the exchanges were split into batches and in whatever order they arrived."""

from __future__ import annotations

import math
from datetime import timedelta

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtap.store import derived, step_state
from runtap.store.intervals import status_boundaries_sql
from runtap.store.reader import open_store
from runtap.store.writer import StoreWriter
from tests.store_fixtures import at, exchange, make_store, run_snapshot, step_snapshot, tool_call_snapshot

# None: an observation without a status (it still counts for the run's facts).
STATUSES = ("queued", "in_progress", "requires_action", "cancelling", "completed", "cancelled", "failed", None)
OPERATIONS = ("createRun", "getRun", "submitToolOutputsToRun", "cancelRun", "listRuns")


@st.composite
def step_snapshots(draw, run_id: str, observed_at) -> dict:
    """A snapshot of one of two steps of the run."""
    status = draw(st.sampled_from(("in_progress", "completed", "failed", None)))
    usage = draw(st.booleans())
    return step_snapshot(
        f"{run_id}_step_{draw(st.integers(0, 1))}",
        status,
        observed_at,
        run_id=run_id,
        type=draw(st.sampled_from(("message_creation", "tool_calls", None))),
        seq=draw(st.sampled_from((0, 1, None))),
        has_usage=usage,
        prompt_tokens=draw(st.integers(0, 50)) if usage else None,
        total_tokens=draw(st.integers(0, 90)) if usage else None,
        completed_at=observed_at if status == "completed" else None,
    )


@st.composite
def tool_call_snapshots(draw, run_id: str, observed_at) -> dict:
    """A snapshot of one of three tool calls, of one of the run's steps (or none: a required action)."""
    kind = draw(st.sampled_from(("function", "code_interpreter", "file_search", None)))
    return tool_call_snapshot(
        f"{run_id}_call_{draw(st.integers(0, 2))}",
        observed_at,
        run_id=run_id,
        step_id=draw(st.sampled_from((f"{run_id}_step_0", f"{run_id}_step_1", None))),
        type=kind,
        function_name=draw(st.sampled_from(("get_weather", "lookup", None))) if kind == "function" else None,
    )


@st.composite
def recordings(draw) -> tuple[list[dict], list[list[int]]]:
    """Exchanges of a few runs (each a put: its exchange row and the snapshots it showed), and how
    they are applied: a list of batches of indexes, mostly in order, some moved later."""
    puts = []
    for r in range(draw(st.integers(1, 3))):
        run_id, clock = f"run_{r}", draw(st.integers(0, 1000)) / 1000
        for _ in range(draw(st.integers(1, 6))):
            clock += draw(st.integers(1, 400)) / 1000
            streamed = draw(st.booleans())
            operation = draw(st.sampled_from(OPERATIONS))
            duration = draw(st.integers(1, 300))
            ex = exchange(
                operation,
                started=clock,
                duration_ms=duration,
                run_id=run_id,
                streamed=streamed,
                first_byte_at=at(clock) + timedelta(milliseconds=1) if streamed and draw(st.booleans()) else None,
            )
            statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=4 if streamed else 1))
            snapshots = [
                run_snapshot(
                    run_id,
                    status,
                    at(clock) + timedelta(milliseconds=duration * (i + 1) / len(statuses)),
                    exchange_id=ex["exchange_id"],
                    request_started_at=ex["request_started_at"],
                    seq=i if draw(st.integers(0, 9)) else None,  # a snapshot may lack its position
                    source="sse" if streamed else "response",
                    model=draw(st.sampled_from(("gpt-4o", "o3-mini", None))),
                    has_usage=(usage := draw(st.booleans())),
                    prompt_tokens=draw(st.integers(0, 500)) if usage else None,
                    total_tokens=draw(st.integers(0, 900)) if usage else None,
                    completed_at=at(clock) if status == "completed" else None,
                )
                for i, status in enumerate(statuses)
            ]
            puts.append({"exchanges": [ex], "run_snapshots": snapshots})
            # Its steps and tool calls, each its own put: they may come in any batch, before or after
            # the step they belong to, and a batch may hold only them.
            for i in range(draw(st.integers(0, 2))):
                puts.append({"step_snapshots": [draw(step_snapshots(run_id, at(clock) + timedelta(milliseconds=i)))]})
            for _ in range(draw(st.integers(0, 2))):
                puts.append({"tool_call_snapshots": [draw(tool_call_snapshots(run_id, at(clock)))]})
            clock += duration / 1000
    order = draw(st.permutations(range(len(puts)))) if draw(st.booleans()) else list(range(len(puts)))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(puts) - 1)), max_size=4, unique=True)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return puts, [b for b in batches if b]


def _same(kept: list[tuple], fresh: list[tuple]) -> bool:
    """Rows equal, their DOUBLEs to 1e-9 relative: the writer adds a run's uncertainties batch by
    batch, a computation from scratch in another order (666.1664999999999 vs 666.1665)."""
    return len(kept) == len(fresh) and all(
        len(k) == len(f)
        and all(math.isclose(a, b, rel_tol=1e-9) if isinstance(a, float) else a == b for a, b in zip(k, f, strict=True))
        for k, f in zip(kept, fresh, strict=True)
    )


def _stored_and_computed(path: str) -> tuple[list[tuple], list[tuple]]:
    """The stored boundaries and those computed from every snapshot; and asserts that each run's
    stored state (facts, stay accumulators, tail), each step's state and each run's polls equal
    those computed from scratch."""
    columns = "run_id, n, status, from_status, evidence, lo_us, hi_us, at_us, uncertainty_ms"
    with open_store(path) as con:
        stored = con.execute(f"SELECT {columns} FROM {derived.BOUNDARIES} ORDER BY run_id, n").fetchall()
        computed = con.execute(f"SELECT {columns} FROM ({status_boundaries_sql()}) ORDER BY run_id, n").fetchall()
        state = [c for c, _ in derived.derived_tables()[derived.RUN_STATE]]
        kept = con.execute(f"SELECT {', '.join(state)} FROM {derived.RUN_STATE} ORDER BY run_id").fetchall()
        scratch = derived.state_sql("run_snapshots", f"({status_boundaries_sql()})")
        fresh = con.execute(f"SELECT {', '.join(state)} FROM ({scratch}) ORDER BY run_id").fetchall()
        assert _same(kept, fresh), (kept, fresh)
        steps = [c for c, _ in derived.derived_tables()[derived.STEP_STATE]]
        kept = con.execute(f"SELECT {', '.join(steps)} FROM {derived.STEP_STATE} ORDER BY step_id").fetchall()
        fresh = con.execute(f"SELECT {', '.join(steps)} FROM ({step_state.state_sql()}) ORDER BY step_id").fetchall()
        assert _same(kept, fresh), (kept, fresh)
        kept = con.execute(f"SELECT run_id, polls FROM {derived.RUN_POLLS} ORDER BY run_id").fetchall()
        assert kept == con.execute(f"SELECT run_id, polls FROM ({derived.polls_sql()}) ORDER BY run_id").fetchall()
        assert derived.current(con)
    return stored, computed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recording=recordings())
def test_batches_in_any_order_give_the_boundaries_of_all_snapshots(tmp_path_factory, recording):
    puts, batches = recording
    path = str(tmp_path_factory.mktemp("b") / "s.duckdb")
    writer = StoreWriter(path, batch_rows=10**6, batch_seconds=60)
    writer.start()
    for batch in batches:
        for i in batch:
            writer.put(puts[i])
        writer.flush(30)  # one batch, one transaction
    writer.close()
    assert writer.stats().batches == len(batches)
    stored, computed = _stored_and_computed(path)
    assert stored == computed
    with open_store(path) as con:
        assert "FROM run_status_boundaries" in derived.boundaries_source(con)


def test_a_late_snapshot_recomputes_its_run(tmp_path):
    """A poll answered during a stream that ends later reaches the store first: the stream's
    earlier events then come before the run's tail, and the run is recomputed."""
    stream = exchange("createRun", started=0, duration_ms=900, run_id="run_s", streamed=True, first_byte_at=at(0.01))
    events = [
        run_snapshot(
            "run_s", s, at(t), exchange_id=stream["exchange_id"], seq=i, source="sse", request_started_at=at(0)
        )
        for i, (s, t) in enumerate([("queued", 0.1), ("in_progress", 0.3), ("completed", 0.9)])
    ]
    poll = exchange("getRun", started=0.4, duration_ms=20, run_id="run_s")
    seen = run_snapshot("run_s", "in_progress", at(0.42), exchange_id=poll["exchange_id"], request_started_at=at(0.4))
    path = str(tmp_path / "s.duckdb")
    writer = StoreWriter(path, batch_rows=10**6, batch_seconds=60)
    writer.start()
    writer.put({"exchanges": [poll], "run_snapshots": [seen]})
    writer.flush(30)
    writer.put({"exchanges": [stream], "run_snapshots": events})
    writer.close()
    stored, computed = _stored_and_computed(path)
    assert stored == computed
    assert [(row[2], row[4]) for row in stored] == [("queued", "create"), ("in_progress", "sse"), ("completed", "sse")]


def test_snapshots_inserted_by_hand_are_computed_until_the_writer_refreshes(tmp_path):
    ex = exchange("getRun", started=0, run_id="run_h")
    path = make_store(
        tmp_path / "s.duckdb", {"exchanges": [ex], "run_snapshots": [run_snapshot("run_h", "queued", 0.01)]}
    )
    con = duckdb.connect(path)
    con.execute(
        "INSERT INTO run_snapshots BY NAME SELECT 'run_h' AS run_id, 'completed' AS status, "
        "TIMESTAMPTZ '2026-01-01 12:00:01+00' AS observed_at"
    )
    assert "FROM run_status_boundaries" not in derived.boundaries_source(con)
    con.close()
    writer = StoreWriter(path)
    writer.start()  # finds the table stale and rebuilds it
    writer.close()
    stored, computed = _stored_and_computed(path)
    assert stored == computed and [row[2] for row in stored] == ["queued", "completed"]
    with open_store(path) as con:
        assert "FROM run_status_boundaries" in derived.boundaries_source(con)
