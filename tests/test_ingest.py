"""Ingest of flow files and HAR built with mitmproxy's own classes, into real DuckDB stores."""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner
from mitmproxy import http
from mitmproxy.addons.savehar import SaveHar
from mitmproxy.io import FlowWriter
from mitmproxy.test import tflow

from runtap.cli import cli
from runtap.errors import RuntapError
from runtap.ingest import ingest_files
from runtap.ingest.seen import SeenIds
from runtap.ingest.sources import FLOWS, HAR, FlowSource, detect_format

THREAD, RUN = "thread_abc", "run_abc"
T0 = 1_760_000_000.0


def _run(status: str, usage: bool = False) -> dict:
    return {
        "id": RUN,
        "object": "thread.run",
        "thread_id": THREAD,
        "assistant_id": "asst_1",
        "status": status,
        "model": "gpt-4o",
        "created_at": int(T0),
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15} if usage else None,
    }


def _flow(
    method: str,
    path: str,
    status: int,
    body: dict | bytes,
    at: float,
    *,
    content_type: str = "application/json",
    secret: bool = True,
) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    headers = [(b"content-type", b"application/json")]
    if secret:
        headers.append((b"authorization", b"Bearer sk-secret-in-file"))
    flow.request = http.Request.make(method, f"https://api.example.com/v1{path}", b"{}", headers)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    flow.response = http.Response.make(status, payload, [(b"content-type", content_type.encode())])
    flow.request.timestamp_start, flow.request.timestamp_end = at, at + 0.001
    flow.response.timestamp_start, flow.response.timestamp_end = at + 0.01, at + 0.02
    return flow


def _stream_body() -> bytes:
    events = [
        ("thread.run.created", _run("queued")),
        ("thread.run.in_progress", _run("in_progress")),
        ("thread.run.completed", _run("completed", usage=True)),
    ]
    text = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)
    return (text + "event: done\ndata: [DONE]\n\n").encode()


def sample_flows() -> list[http.HTTPFlow]:
    """A polled run, a streamed run on the same thread, and two flows that are not runs traffic."""
    base = f"/threads/{THREAD}/runs"
    return [
        _flow("POST", base, 200, _run("queued"), T0),
        _flow("GET", f"{base}/{RUN}", 200, _run("in_progress"), T0 + 1),
        _flow("GET", "/assistants/asst_1", 200, {"id": "asst_1"}, T0 + 1.5),
        _flow("GET", f"{base}/{RUN}", 200, _run("completed", usage=True), T0 + 2),
        _flow("POST", base, 200, _stream_body(), T0 + 3, content_type="text/event-stream"),
        _flow("GET", "/models", 200, {"data": []}, T0 + 4),
    ]


def write_flows(path, flows) -> None:
    """Write flows with mitmproxy's FlowWriter (what `mitmdump -w` does)."""
    with open(path, "wb") as fh:
        writer = FlowWriter(fh)
        for flow in flows:
            writer.add(flow)


def write_har(path, flows) -> None:
    """Write flows as HAR with mitmproxy's own savehar addon."""
    path.write_text(json.dumps(SaveHar().make_har(flows)))


def _count(db, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def flow_file(tmp_path):
    path = tmp_path / "capture.bin"  # any name: the format is read from the content
    write_flows(path, sample_flows())
    return path


def test_flow_file_is_ingested_and_other_traffic_skipped(flow_file, tmp_path):
    db = tmp_path / "s.duckdb"
    report = ingest_files([str(flow_file)], str(db))
    f = report.files[0]
    assert (f.format, f.flows_read, f.stored, f.skipped, f.duplicates, f.errors, f.stopped) == (
        FLOWS,
        6,
        4,
        2,
        0,
        0,
        None,
    )
    assert _count(db, "SELECT count(*) FROM exchanges") == [(4,)]
    assert _count(db, "SELECT status, total_tokens FROM runs") == [("completed", 15)]
    assert _count(db, "SELECT count(*) FROM sse_events") == [(4,)]  # three run events and done
    assert _count(db, "SELECT mode, source FROM captures") == [("ingest", str(flow_file))]


def test_second_ingest_adds_nothing(flow_file, tmp_path):
    db = str(tmp_path / "s.duckdb")
    ingest_files([str(flow_file)], db)
    before = _count(
        db,
        "SELECT (SELECT count(*) FROM exchanges), (SELECT count(*) FROM run_snapshots), "
        "(SELECT count(*) FROM captures)",
    )
    again = ingest_files([str(flow_file), str(flow_file)], db)
    assert [(f.stored, f.duplicates) for f in again.files] == [(0, 4), (0, 4)]
    assert (
        _count(
            db,
            "SELECT (SELECT count(*) FROM exchanges), (SELECT count(*) FROM run_snapshots), "
            "(SELECT count(*) FROM captures)",
        )
        == before
    )


def test_same_file_twice_in_one_ingest_is_stored_once(flow_file, tmp_path):
    db = str(tmp_path / "s.duckdb")
    report = ingest_files([str(flow_file), str(flow_file)], db)
    assert [(f.stored, f.duplicates) for f in report.files] == [(4, 0), (0, 4)]
    assert _count(db, "SELECT count(DISTINCT exchange_id), count(*) FROM exchanges") == [(4, 4)]


def test_secrets_in_the_file_never_reach_the_store(flow_file, tmp_path):
    db = str(tmp_path / "s.duckdb")
    ingest_files([str(flow_file)], db, redact_extra=["content-type"])
    headers = _count(db, "SELECT request_headers::VARCHAR, response_headers::VARCHAR FROM exchanges")
    text = json.dumps(headers)
    assert "sk-secret-in-file" not in text
    assert "application/json" not in text.replace("event-stream", "")  # the extra header is redacted too


def test_truncated_flow_file_keeps_the_flows_before_the_damage(flow_file, tmp_path):
    data = flow_file.read_bytes()
    whole = FlowSource(str(flow_file))
    ends = []
    for _ in whole.flows():
        ends.append(whole.offset)
    cut = tmp_path / "cut.mitm"
    cut.write_bytes(data[: ends[2] + 40])  # three whole flows, then 40 bytes of the fourth
    db = str(tmp_path / "s.duckdb")
    f = ingest_files([str(cut)], db).files[0]
    assert (f.flows_read, f.stored, f.skipped, f.errors) == (3, 2, 1, 1)
    assert f.stopped == f"flow 4 at byte {ends[2]}: the file ends inside this flow (truncated)"
    # Ingesting the whole file afterwards adds exactly what was missing.
    again = ingest_files([str(flow_file)], db).files[0]
    assert (again.stored, again.duplicates) == (2, 2)
    assert _count(db, "SELECT count(*), count(DISTINCT exchange_id) FROM exchanges") == [(4, 4)]


def test_corrupt_bytes_mid_file_are_reported_with_their_offset(flow_file, tmp_path):
    data = flow_file.read_bytes()
    source = FlowSource(str(flow_file))
    first_end = next(iter(_offsets(source)))
    bad = tmp_path / "bad.mitm"
    bad.write_bytes(data[:first_end] + b"x" + data[first_end + 1 :])
    f = ingest_files([str(bad)], str(tmp_path / "s.duckdb")).files[0]
    assert f.flows_read == 1
    assert f.stopped.startswith(f"flow 2 at byte {first_end}: ")


def _offsets(source: FlowSource):
    for _ in source.flows():
        yield source.offset


def test_nothing_readable_is_exit_2_and_leaves_the_store_as_it_was(flow_file, tmp_path):
    db = str(tmp_path / "s.duckdb")
    ingest_files([str(flow_file)], db)
    before = _count(db, "SELECT count(*) FROM exchanges")
    broken = tmp_path / "broken.mitm"
    broken.write_bytes(flow_file.read_bytes()[:200])
    result = CliRunner().invoke(cli, ["ingest", str(broken), "--db", db])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "nothing could be read" in result.output
    assert "flow 1 at byte 0" in result.output
    assert _count(db, "SELECT count(*) FROM exchanges") == before


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"hello, world\n", "neither a mitmproxy flow file nor a HAR file"),
        (b'{"not": "har"}', "neither a mitmproxy flow file nor a HAR file"),
        (b"\x89PNG\r\n\x1a\n", "neither a mitmproxy flow file nor a HAR file"),
    ],
)
def test_files_of_neither_format_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "capture.har"
    path.write_bytes(content)
    with pytest.raises(RuntapError, match=message):
        detect_format(str(path))
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output


def test_a_har_cut_before_its_first_entry_is_exit_2(tmp_path):
    path = tmp_path / "cut.har"
    path.write_bytes(b'{"log": {"version": "1.2", "entries": [{"startedDateTime": ')
    assert detect_format(str(path)) == HAR
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "nothing could be read" in result.output and "HAR entry 1" in result.output


def test_a_missing_file_is_refused_before_anything_is_written(flow_file, tmp_path):
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["ingest", str(flow_file), str(tmp_path / "nope.mitm"), "--db", str(db)])
    assert result.exit_code == 2 and "cannot read" in result.output
    assert not db.exists()


def test_a_store_that_is_not_a_store_is_refused_in_one_line(flow_file, tmp_path):
    db = tmp_path / "notes.txt"
    db.write_text("my notes")
    result = CliRunner().invoke(cli, ["ingest", str(flow_file), "--db", str(db)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "is not a DuckDB file" in result.output and db.read_text() == "my notes"


def test_har_is_detected_by_content_and_ingested(tmp_path):
    har = tmp_path / "capture.mitm"  # a misleading name
    write_har(har, sample_flows())
    assert detect_format(str(har)) == HAR
    db = str(tmp_path / "s.duckdb")
    f = ingest_files([str(har)], db).files[0]
    assert (f.format, f.flows_read, f.stored, f.skipped) == (HAR, 6, 4, 2)
    assert _count(db, "SELECT status, total_tokens FROM runs") == [("completed", 15)]
    assert _count(db, "SELECT count(*) FROM sse_events") == [(4,)]
    # HAR has no flow ids: ids come from the entries' content, so a second ingest adds nothing.
    assert ingest_files([str(har)], db).files[0].duplicates == 4


def test_har_with_a_bom_and_a_truncated_tail(tmp_path):
    text = json.dumps(SaveHar().make_har(sample_flows()), indent=1)
    har = tmp_path / "cut.har"
    har.write_bytes(b"\xef\xbb\xbf" + text[: text.index('"startedDateTime"', text.index("/models") - 2000)].encode())
    f = ingest_files([str(har)], str(tmp_path / "s.duckdb")).files[0]
    assert f.flows_read == 5
    assert f.stopped.startswith("HAR entry 6")


def test_a_malformed_har_entry_costs_that_entry_only(tmp_path):
    har = SaveHar().make_har(sample_flows())
    del har["log"]["entries"][1]["time"]
    path = tmp_path / "odd.har"
    path.write_text(json.dumps(har))
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 0, result.output
    assert "5 flows read, 3 stored, 2 skipped (not runs or Responses traffic), 0 duplicates, 1 errors" in result.output
    assert "the first: HAR entry 2: KeyError: 'time'" in result.output


def test_har_entry_without_response_becomes_an_error_exchange(tmp_path):
    flow = sample_flows()[0]
    flow.response = None
    flow.error = tflow.terr("connection closed by peer")
    har = tmp_path / "e.har"
    write_har(har, [flow])
    db = str(tmp_path / "s.duckdb")
    assert ingest_files([str(har)], db).files[0].stored == 1
    assert _count(db, "SELECT status_code, error FROM exchanges") == [(None, "connection closed by peer")]


def test_non_http_flows_are_skipped(tmp_path):
    path = tmp_path / "mixed.mitm"
    write_flows(path, [tflow.ttcpflow(), *sample_flows()[:2]])
    f = ingest_files([str(path)], str(tmp_path / "s.duckdb")).files[0]
    assert (f.flows_read, f.stored, f.skipped) == (3, 2, 1)


def test_cli_prints_a_summary(flow_file, tmp_path):
    result = CliRunner().invoke(cli, ["ingest", str(flow_file), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 0, result.output
    assert "6 flows read, 4 stored, 2 skipped (not runs or Responses traffic), 0 duplicates, 0 errors" in result.output
    assert result.output.splitlines()[-1].startswith("total: ")


def test_seen_ids_lookups_and_merges():
    seen = SeenIds(["b", "a", "ccc"])
    assert ("a" in seen, "ccc" in seen, "cc" in seen, "dddd" in seen) == (True, True, False, False)
    assert "x" not in SeenIds()
    seen.add("zz")
    assert "zz" in seen and len(seen) == 4


def test_a_flow_mitmproxy_cannot_load_costs_that_flow_only(flow_file, tmp_path):
    """A well-formed record whose state is not a loadable flow is an error; reading goes on."""
    from mitmproxy.io import tnetstring

    records = []
    source = FlowSource(str(flow_file))
    for state in source.flows():
        records.append(state.state)
    broken = dict(records[1])
    broken["request"] = {"method": records[1]["request"]["method"], "path": records[1]["request"]["path"]}
    broken["id"] = "broken-flow-id"
    mixed = tmp_path / "mixed.mitm"
    with open(mixed, "wb") as fh:
        for state in [records[0], broken, *records[1:]]:
            tnetstring.dump(state, fh)
    db = str(tmp_path / "s.duckdb")
    f = ingest_files([str(mixed)], db).files[0]
    assert f.stopped is None
    assert f.errors == 1
    assert _count(db, "SELECT count(*) FROM exchanges WHERE exchange_id = 'broken-flow-id'") == [(0,)]
    whole = ingest_files([str(flow_file)], str(tmp_path / "whole.duckdb")).files[0]
    assert f.stored == whole.stored  # every loadable flow, the broken one aside
