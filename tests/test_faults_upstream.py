"""Upstream faults while other clients keep working, through a real `runtap proxy` process.

The simulator (its own process) injects the faults by request content: a response delayed past
the client's timeout, a stream cut mid-way, 429 and 500 with OpenAI error bodies that the SDK
retries. tests/test_proxy_faults.py covers the same kinds one at a time against a scripted
upstream; here they happen under concurrent load, and the load's exchanges are checked exactly.
"""

from __future__ import annotations

import asyncio
import json

import duckdb
import httpx
import openai
import pytest

from runtap.demo.harness import SimulatorProcess, free_port, start_proxy
from runtap.demo.workload import WRITER
from tests.load_clients import drive, store_request_ids

KEY = {"Authorization": "Bearer sk-upstream-faults"}
FAULTS = [
    "delay=4000,match=slowpoke",
    "cut=2,match=cutme",
    "status=429,op=createThreadAndRun,match=retry429,count=1,retry_after=0",
    "status=500,op=createThreadAndRun,match=retry500,count=1",
]


async def _faulted_requests(base_url: str) -> dict:
    seen: dict = {}
    async with httpx.AsyncClient(base_url=base_url, headers=KEY, timeout=30) as client:
        with pytest.raises(httpx.ReadTimeout):  # the upstream is too slow for this client
            await client.post(
                "/threads/runs",
                json={"assistant_id": WRITER, "metadata": {"tag": "slowpoke"}},
                timeout=httpx.Timeout(30, read=0.5),  # only the answer is late: a busy machine may write slowly
            )
        with pytest.raises(httpx.HTTPError):  # the upstream closes the stream after 2 events
            async with client.stream(
                "POST", "/threads/runs", json={"assistant_id": WRITER, "stream": True, "metadata": {"tag": "cutme"}}
            ) as resp:
                async for _ in resp.aiter_lines():
                    pass
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key="sk-upstream-faults", max_retries=2)
    for tag in ("retry429", "retry500"):  # the SDK retries: the proxy sees the error, then success
        run = await sdk.beta.threads.create_and_run_poll(
            assistant_id=WRITER, metadata={"tag": tag, "sim_outcome": "completed"}, poll_interval_ms=50
        )
        seen[tag] = (run.id, run.status, run.usage.total_tokens)
    await sdk.close()
    return seen


async def _scenario(base_url: str):
    return await asyncio.gather(drive(base_url, 20, 3), _faulted_requests(base_url))


@pytest.fixture(scope="module")
def faulted(tmp_path_factory):
    """Drive load and faults through one proxy; yield the tallies, the store and the log."""
    tmp = tmp_path_factory.mktemp("upstream")
    db = str(tmp / "store.duckdb")
    with SimulatorProcess(
        "--run-ms", "80", "--poll-after-ms", "50", *[a for f in FAULTS for a in ("--fault", f)]
    ) as sim:
        proxy = start_proxy(sim.url, db, log_path=str(tmp / "proxy.log"))
        tally, seen = asyncio.run(_scenario(proxy.base_url))
        after = httpx.post(proxy.base_url + "/threads", headers=KEY, json={}).status_code
        code = proxy.stop()
    con = duckdb.connect(db, read_only=True)
    yield tally, seen, after, code, proxy.log_text(), con, db
    con.close()


def _tagged(con, tag: str) -> list[tuple]:
    return con.execute(
        "SELECT status_code, error, response_body, sse_events FROM exchanges "
        "WHERE request_body LIKE ? ORDER BY request_started_at",
        [f"%{tag}%"],
    ).fetchall()


def test_proxy_keeps_serving_and_the_load_is_recorded_exactly(faulted):
    tally, _, after, code, log, _, db = faulted
    assert not tally.errors and after == 200 and code == 0, log
    stored = store_request_ids(db)
    assert not tally.request_ids - stored
    assert max(n for rid, n in stored.items() if rid) == 1
    assert "Traceback" not in log


def test_upstream_too_slow_is_recorded_as_a_broken_exchange(faulted):
    *_, con, _ = faulted
    ((status, error, _, _),) = _tagged(con, "slowpoke")
    assert status is None and error  # no response ever came; the reason is kept


def test_stream_cut_by_the_upstream_keeps_the_events_seen(faulted):
    *_, con, _ = faulted
    ((status, error, body, events),) = _tagged(con, "cutme")
    assert status == 200 and error and events == 2
    assert body.count("event: ") == 2
    statuses = [
        s
        for (s,) in con.execute(
            "SELECT r.status FROM run_snapshots r JOIN exchanges e USING (exchange_id) "
            "WHERE e.request_body LIKE '%cutme%' AND r.run_id IS NOT NULL"
        ).fetchall()
    ]
    assert statuses and statuses[0] == "queued"


@pytest.mark.parametrize("tag, code, error_type", [("retry429", 429, "requests"), ("retry500", 500, "server_error")])
def test_sdk_retries_of_upstream_errors_are_each_recorded(faulted, tag, code, error_type):
    _, seen, *_, con, _ = faulted
    rows = _tagged(con, tag)
    assert [r[0] for r in rows] == [code, 200]
    assert json.loads(rows[0][2])["error"]["type"] == error_type
    run_id, status, tokens = seen[tag]
    assert con.execute("SELECT status, total_tokens FROM runs WHERE run_id = ?", [run_id]).fetchone() == (
        status,
        tokens,
    )


def test_upstream_down_then_back_is_served_and_recorded(tmp_path):
    """Reverse mode connects upstream per client connection: while the upstream is down clients
    are disconnected (as with plain mitmdump) and nothing is recorded; once it is back, both work."""
    db = str(tmp_path / "down.duckdb")
    port = free_port()
    proxy = start_proxy(f"http://127.0.0.1:{port}", db)  # nothing listens there yet
    url = proxy.base_url + "/threads"
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.post(url, headers=KEY, json={}, timeout=10)
        with SimulatorProcess(port=port):
            statuses = [httpx.post(url, headers=KEY, json={}, timeout=10).status_code for _ in range(3)]
    finally:
        code = proxy.stop()
    assert statuses == [200] * 3 and code == 0, proxy.log_text()
    con = duckdb.connect(db, read_only=True)
    ops = con.execute("SELECT operation, status_code FROM exchanges").fetchall()
    con.close()
    assert ops == [("createThread", 200)] * 3
