"""The status boundaries the writer keeps (store/derived.py) equal those computed from every
snapshot, however the exchanges were split into batches and in whatever order they arrived."""

from __future__ import annotations

from datetime import timedelta

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtap.store import derived
from runtap.store.intervals import status_boundaries_sql
from runtap.store.reader import open_store
from runtap.store.writer import StoreWriter
from tests.store_fixtures import at, exchange, make_store, run_snapshot

# None: an observation without a status (it still counts for the run's facts).
STATUSES = ("queued", "in_progress", "requires_action", "cancelling", "completed", "cancelled", "failed", None)
OPERATIONS = ("createRun", "getRun", "submitToolOutputsToRun", "cancelRun", "listRuns")


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
            clock += duration / 1000
    order = draw(st.permutations(range(len(puts)))) if draw(st.booleans()) else list(range(len(puts)))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(puts) - 1)), max_size=4, unique=True)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return puts, [b for b in batches if b]


def _stored_and_computed(path: str) -> tuple[list[tuple], list[tuple]]:
    """The stored boundaries and those computed from every snapshot; and asserts that each run's
    stored state (facts, stay accumulators, tail) equals the one computed from scratch."""
    columns = "run_id, n, status, from_status, evidence, lo_us, hi_us, at_us, uncertainty_ms"
    with open_store(path) as con:
        stored = con.execute(f"SELECT {columns} FROM {derived.BOUNDARIES} ORDER BY run_id, n").fetchall()
        computed = con.execute(f"SELECT {columns} FROM ({status_boundaries_sql()}) ORDER BY run_id, n").fetchall()
        state = [c for c, _ in derived.derived_tables()[derived.RUN_STATE]]
        kept = con.execute(f"SELECT {', '.join(state)} FROM {derived.RUN_STATE} ORDER BY run_id").fetchall()
        scratch = derived.state_sql("run_snapshots", f"({status_boundaries_sql()})")
        fresh = con.execute(f"SELECT {', '.join(state)} FROM ({scratch}) ORDER BY run_id").fetchall()
    assert kept == fresh
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
