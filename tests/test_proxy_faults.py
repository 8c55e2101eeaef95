"""A real `runtap proxy` process in front of a scripted upstream: streaming and faults."""

from __future__ import annotations

import json
import socket
import time

import duckdb
import httpx
import pytest

from runtap.demo.harness import start_proxy
from tests.scripted_upstream import ScriptedUpstream

SECRET = "sk-proj-SECRETSECRET1234567890"
HEADERS = {"Authorization": f"Bearer {SECRET}", "OpenAI-Organization": "org-SECRETORG123"}
RUNS = "/v1/threads/thread_scripted1/runs"


@pytest.fixture(scope="module")
def upstream():
    with ScriptedUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def recorded(upstream, tmp_path_factory):
    """Drive every fault through one proxy, stop it, and hand the store and timings to tests."""
    db = str(tmp_path_factory.mktemp("faults") / "store.duckdb")
    proxy = start_proxy(upstream.url, db)
    seen: dict = {}
    with httpx.Client(base_url=proxy.url, headers=HEADERS, timeout=10) as client:
        # A streamed run that the upstream holds after its first event until this client has
        # read that event through the proxy (then pauses 0.5 s between the next ones).
        with client.stream("POST", RUNS, params={"gate": "first"}, json={"assistant_id": "a", "stream": True}) as resp:
            lines = resp.iter_lines()
            next(line for line in lines if line.startswith("data:"))
            upstream.open_gate("first")
            for _ in lines:
                pass
        # Client disconnects mid-stream.
        with client.stream("GET", RUNS + "/run_endless") as resp:
            for i, _ in enumerate(resp.iter_lines()):
                if i > 6:
                    break
        with pytest.raises(httpx.HTTPError), client.stream("GET", RUNS + "/run_truncated") as resp:
            for _ in resp.iter_lines():
                pass
        seen["split"] = _split_request(proxy, upstream)
        seen["error_status"] = client.get(RUNS + "/run_error").status_code
        seen["rate_limited_status"] = client.get(RUNS + "/run_error", params={"status": 429}).status_code
        seen["notjson"] = client.get(RUNS + "/run_notjson").text
        seen["gzip_json"] = client.get(RUNS + "/run_gzip").json()
        seen["unrecorded"] = client.get("/v1/models").status_code
        # The proxy is still serving after all of that.
        seen["still_serving"] = client.get(RUNS + "/run_gzip").status_code
    time.sleep(0.3)  # let the disconnected stream's error hook fire
    seen["exit_code"] = proxy.stop()
    seen["log"] = proxy.log_text()
    con = duckdb.connect(db, read_only=True)
    yield con, seen, db
    con.close()


SPLIT_BODY = json.dumps({"tool_outputs": [{"tool_call_id": "call_1", "output": "x" * 5000}]}).encode()


def _split_request(proxy, upstream) -> tuple[bool, bytes]:
    """POST a recorded route's body in two halves; whether the upstream had the head before the
    second half was sent, and the response."""
    host, port = proxy.url.removeprefix("http://").split(":")
    head = (
        f"POST {RUNS}/run_scripted1/submit_tool_outputs?head=split HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {SECRET}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(SPLIT_BODY)}\r\nConnection: close\r\n\r\n"
    ).encode()
    half = len(SPLIT_BODY) // 2
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + SPLIT_BODY[:half])
        early = upstream.saw_head("split", 5)
        sock.sendall(SPLIT_BODY[half:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return early, response


def _exchange(con, path_suffix: str, nth: int = 0):
    rows = con.execute(
        "SELECT status_code, error, response_body, streamed, sse_events, operation FROM exchanges "
        "WHERE path LIKE ? ORDER BY request_started_at",
        ["%" + path_suffix],
    ).fetchall()
    return rows[nth]


def test_stream_passes_through_without_buffering(recorded, upstream):
    # The client read the first event while the upstream still held the rest back for it.
    assert not upstream.gate_timed_out("first")


def test_stream_events_carry_real_arrival_times(recorded):
    con, _, _ = recorded
    times = con.execute(
        """SELECT s.received_at FROM sse_events s JOIN exchanges e USING (exchange_id)
           WHERE e.method = 'POST' AND e.path LIKE '%/runs' ORDER BY e.request_started_at, s.seq"""
    ).fetchall()
    first_stream = [t for (t,) in times[:4]]
    gap1 = (first_stream[1] - first_stream[0]).total_seconds()
    gap2 = (first_stream[2] - first_stream[1]).total_seconds()
    assert gap1 >= 0.45 and gap2 >= 0.45, (gap1, gap2)  # stamped as they arrived, not at the end
    statuses = con.execute(
        "SELECT status FROM run_snapshots WHERE source = 'sse' ORDER BY observed_at, seq LIMIT 3"
    ).fetchall()
    assert [s for (s,) in statuses] == ["queued", "in_progress", "completed"]


def test_client_disconnect_mid_stream_is_recorded_with_error(recorded):
    con, _, _ = recorded
    status, error, _body, streamed, events, _ = _exchange(con, "/run_endless")
    assert status == 200 and streamed
    assert error, "a client disconnect must be recorded as an error"
    assert 0 < events < 200


def test_truncated_stream_is_recorded_with_error(recorded):
    con, _, _ = recorded
    _status, error, _body, _streamed, events, _ = _exchange(con, "/run_truncated")
    assert error
    assert events >= 1
    assert (
        con.execute(
            "SELECT count(*) FROM run_snapshots r JOIN exchanges e USING (exchange_id) "
            "WHERE e.path LIKE '%run_truncated'"
        ).fetchone()[0]
        >= 1
    )


def test_upstream_errors_pass_through_and_are_recorded(recorded):
    con, seen, _ = recorded
    assert seen["error_status"] == 500 and seen["rate_limited_status"] == 429
    statuses = sorted(
        r[0] for r in con.execute("SELECT status_code FROM exchanges WHERE path LIKE '%run_error'").fetchall()
    )
    assert statuses == [429, 500]
    bodies = con.execute("SELECT response_body FROM exchanges WHERE path LIKE '%run_error'").fetchall()
    assert all(json.loads(b)["error"]["type"] == "server_error" for (b,) in bodies)


def test_non_json_body_passes_and_is_recorded_with_error(recorded):
    con, seen, _ = recorded
    assert seen["notjson"] == "<html>gateway says hi</html>"
    status, error, body, *_ = _exchange(con, "/run_notjson")
    assert status == 200 and body == "<html>gateway says hi</html>"
    assert error and "json" in error.lower()


def test_compressed_body_is_decoded_for_the_store_and_untouched_for_the_client(recorded):
    con, seen, _ = recorded
    assert seen["gzip_json"]["usage"]["total_tokens"] == 7
    _status, error, body, *_ = _exchange(con, "/run_gzip")
    assert error is None and json.loads(body)["status"] == "completed"
    tokens = con.execute("SELECT total_tokens FROM runs WHERE run_id = 'run_scripted1'").fetchone()[0]
    assert tokens is not None


def test_other_routes_pass_through_unrecorded(recorded):
    con, seen, _ = recorded
    assert seen["unrecorded"] == 200
    assert con.execute("SELECT count(*) FROM exchanges WHERE path LIKE '%/models'").fetchone()[0] == 0


def test_a_recorded_request_goes_upstream_as_it_arrives_and_is_recorded_whole(recorded):
    con, seen, _ = recorded
    early, response = seen["split"]
    # runtap proxy streams a recorded route's request on: the upstream had its head while the
    # client was still sending the body (mitmproxy would otherwise wait for the whole body).
    assert early
    assert response.startswith(b"HTTP/1.1 200") and f'"body_bytes": "{len(SPLIT_BODY)}"'.encode() in response
    ((body,),) = con.execute("SELECT request_body FROM exchanges WHERE path LIKE '%/submit_tool_outputs%'").fetchall()
    assert body.encode() == SPLIT_BODY


def test_proxy_survives_faults_and_exits_cleanly(recorded):
    _, seen, _ = recorded
    assert seen["still_serving"] == 200
    assert seen["exit_code"] == 0, seen["log"]
    assert "Traceback" not in seen["log"]


def test_no_secret_anywhere_in_the_store(recorded):
    con, seen, db = recorded
    with open(db, "rb") as fh:
        raw = fh.read()
    for secret in (SECRET, "SECRETORG123", "SECRETSECRET"):
        assert secret.encode() not in raw
        for table, column in con.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE data_type IN ('VARCHAR', 'JSON')"""
        ).fetchall():
            hits = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::VARCHAR LIKE ?', [f"%{secret}%"]
            ).fetchone()[0]
            assert hits == 0, (table, column)
    assert SECRET not in seen["log"]
