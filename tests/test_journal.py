"""The journal (addon/journal.py): its record format, torn and damaged tails, segments, the bound,
and the applier that tails it into a store exactly once (addon/journal_apply.py)."""

from __future__ import annotations

import asyncio
import logging
import pathlib

import duckdb
import pytest
from mitmproxy.test import tflow

from runtap.addon.flows import flow_record
from runtap.addon.journal import (
    CAPTURE,
    FLOW,
    HEADER,
    JournalWriter,
    decode_payload,
    encode,
    journal_dir,
    parse,
    resync,
    segment_path,
    segments,
)
from runtap.addon.journal_apply import JournalApplier, journal_end
from runtap.addon.redact import RawRedactor
from runtap.errors import RuntapError
from runtap.store.writer import StoreWriter, read_journal_position

CAPTURE_FIELDS = ("cap-1", 1_700_000_000.0, "http://upstream", "reverse:http://upstream", "test", "proxy")


def _flow(n: int, **headers: str):
    flow = tflow.tflow(resp=True)
    flow.request.path = f"/v1/threads/thread_{n}/runs/run_{n}"
    flow.response.headers["x-request-id"] = f"req_{n}"
    for name, value in headers.items():
        flow.request.headers[name] = value
    return flow


def _writer(db: str, **kwargs) -> JournalWriter:
    journal = JournalWriter(db, CAPTURE_FIELDS, **kwargs)
    journal.lock()
    journal.open(after=0)
    return journal


def _apply(db: str, **kwargs) -> JournalApplier:
    """Apply the whole journal of `db` to it, as `runtap recover` does."""
    writer = StoreWriter(db, batch_rows=50, batch_seconds=0.05)
    writer.start()
    applier = JournalApplier(
        db, journal_dir(db), writer, stop=True, recover_until=journal_end(journal_dir(db)), **kwargs
    )
    applier.run()
    applier.finish(30)
    return applier


def _request_ids(db: str) -> list[str]:
    con = duckdb.connect(db, read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT x_request_id FROM exchanges").fetchall())
    finally:
        con.close()


def test_records_round_trip_and_a_torn_or_zeroed_tail_is_detected():
    records = [(CAPTURE, *CAPTURE_FIELDS), (FLOW, *flow_record(_flow(1)))]
    data = b"".join(encode(r) for r in records)
    parsed, stop, state = parse(data)
    assert [decode_payload(p) for _, _, p in parsed] == records and stop == len(data) and state == "end"
    # a record cut off anywhere (the process died while writing it) is incomplete, never misread
    for cut in (1, 3, HEADER.size - 1, HEADER.size + 5, len(encode(records[1])) - 1):
        parsed, stop, state = parse(data[:-cut])
        assert len(parsed) == 1 and state == "incomplete", cut
    # zeros where a record should be (power loss without fsync) and flipped bits are damage
    assert parse(data + bytes(40))[2] == "damaged"
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    assert parse(bytes(flipped))[2] == "damaged"


def test_reading_resumes_after_damage():
    good = encode((CAPTURE, *CAPTURE_FIELDS))
    data = good + b"garbage that is no record" + good
    parsed, stop, state = parse(data)
    assert len(parsed) == 1 and state == "damaged"
    assert resync(data, stop) == len(good) + len(b"garbage that is no record")
    assert resync(good + b"garbage", len(good)) is None


def test_one_proxy_per_journal_and_segments_number_after_what_the_store_applied(tmp_path):
    db = str(tmp_path / "s.duckdb")
    first = _writer(db)
    with pytest.raises(RuntapError, match="another runtap proxy is recording to"):
        JournalWriter(db, CAPTURE_FIELDS).lock()
    first.close()
    second = JournalWriter(db, CAPTURE_FIELDS)
    second.lock()
    second.open(after=7)  # the store has applied segment 7: new ones come after it
    assert segments(journal_dir(db)) == [1, 8]
    second.close()


def test_segments_rotate_and_the_limit_drops_with_one_error(tmp_path, caplog):
    db = str(tmp_path / "s.duckdb")
    journal = _writer(db, segment_bytes=4096, limit_bytes=40_000)
    flow = _flow(1)
    flow.response.content = b"x" * 1000
    record = (FLOW, *flow_record(flow))
    size = len(encode(record))
    with caplog.at_level(logging.ERROR, logger="runtap.addon"):
        tickets = [journal.append(record) for _ in range(60)]
    journal.close()
    kept = [t for t in tickets if t]
    assert kept == sorted(kept) and 0 < len(kept) < 60 and journal.dropped == 60 - len(kept)
    assert len(kept) * size <= 40_000
    assert len(segments(journal_dir(db))) > 5  # rotated at ~4 KB
    errors = [r.getMessage() for r in caplog.records if "NOT recorded" in r.getMessage()]
    assert len(errors) == 1, errors  # one line per episode


def test_secrets_are_redacted_before_the_journal_is_written(tmp_path):
    db = str(tmp_path / "s.duckdb")
    journal = _writer(db)
    flow = _flow(1, Authorization="Bearer sk-NEVER-ON-DISK", **{"X-Custom-Key": "custom-NEVER-ON-DISK"})
    flow.response.headers["Set-Cookie"] = "session=cookie-NEVER-ON-DISK"
    journal.append((FLOW, *flow_record(flow, None, RawRedactor(["x-custom-key"]))))
    journal.close()
    raw = pathlib.Path(segment_path(journal_dir(db), 1)).read_bytes()
    assert b"NEVER-ON-DISK" not in raw
    record = decode_payload(parse(raw)[0][1][2])
    headers = dict(record[4]) | dict(record[8])  # request and response fields, kept, values replaced
    assert [headers[k] for k in (b"Authorization", b"X-Custom-Key", b"Set-Cookie")] == [b"[REDACTED]"] * 3


def test_the_applier_applies_everything_once_skips_a_torn_tail_and_deletes_applied_segments(tmp_path):
    db = str(tmp_path / "s.duckdb")
    journal = _writer(db, segment_bytes=8192)
    for n in range(30):
        journal.append((FLOW, *flow_record(_flow(n))))
    journal.close()
    last = segment_path(journal_dir(db), segments(journal_dir(db))[-1])
    with open(last, "ab") as fh:  # the proxy died while writing its last record
        fh.write(encode((FLOW, *flow_record(_flow(99))))[:-20])
    applier = _apply(db)
    assert applier.counts.exchanges == 30 and applier.counts.recovered == 30
    assert _request_ids(db) == sorted(f"req_{n}" for n in range(30))
    assert segments(journal_dir(db)) == [] and read_journal_position(db) is not None
    again = _apply(db)  # nothing left to apply; nothing applied twice
    assert again.counts.exchanges == 0 and len(_request_ids(db)) == 30


def test_the_applier_starts_where_the_store_stopped(tmp_path):
    """Rows and the journal position are committed together: a second applier over the same
    journal (the store kept, the segments not yet deleted) applies only what is missing."""
    db = str(tmp_path / "s.duckdb")
    journal = _writer(db)
    for n in range(10):
        journal.append((FLOW, *flow_record(_flow(n))))
    position = journal.end()
    writer = StoreWriter(db, batch_rows=1000, batch_seconds=0.05)
    writer.start()
    applier = JournalApplier(db, journal_dir(db), writer)
    applier._stop_at = 1  # apply what is there, keep the live segment
    applier.run()
    writer.close()
    assert read_journal_position(db) == position and segments(journal_dir(db)) == [1]
    for n in range(10, 15):
        journal.append((FLOW, *flow_record(_flow(n))))
    journal.close()
    assert _apply(db).counts.exchanges == 5
    assert _request_ids(db) == sorted(f"req_{n}" for n in range(15))


def test_a_quarantined_record_is_moved_aside(tmp_path):
    db = str(tmp_path / "s.duckdb")
    journal = _writer(db)
    starts = []
    for n in range(3):
        starts.append(journal.end())
        journal.append((FLOW, *flow_record(_flow(n))))
    journal.close()
    applier = _apply(db, quarantine={starts[1]})
    assert applier.counts.quarantined == 1 and _request_ids(db) == ["req_0", "req_2"]
    aside, _, _ = parse(pathlib.Path(journal_dir(db), "quarantine.seg").read_bytes())
    assert len(aside) == 1 and "thread_1/" in decode_payload(aside[0][2])[3]  # the record, intact


def test_fsync_is_batched_and_a_response_waits_for_the_one_that_covers_it(tmp_path):
    async def main():
        journal = _writer(str(tmp_path / "s.duckdb"), fsync=True)
        tickets = [journal.append((FLOW, *flow_record(_flow(n)))) for n in range(200)]
        await asyncio.gather(*(journal.synced(t) for t in tickets))
        syncer = journal._syncer
        assert syncer.synced >= tickets[-1]
        journal.close()
        return syncer.fsyncs

    fsyncs = asyncio.run(main())
    assert 1 <= fsyncs < 200  # many records per fsync
