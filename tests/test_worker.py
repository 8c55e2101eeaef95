"""The one normalize-and-write worker process (addon/worker.py), used by the live proxy and ingest.

Real child processes and real stores. A module missing from the environment is made with a
`sitecustomize` on PYTHONPATH that blocks `pyarrow` only in the worker's process, so the parent
(the test, the proxy, the ingest command) runs normally and the worker fails at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import duckdb
import pytest
from mitmproxy.test import tflow

from runtap.addon.flows import captured_from_flow
from runtap.addon.worker import Worker
from runtap.demo.harness import RUNTAP, free_port
from runtap.errors import RuntapError

SAMPLE_FLOWS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "sample_captures", "demo.flows")
BLOCK_PYARROW = """
import sys

if "runtap.addon.worker" in sys.orig_argv:

    class _Missing:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "pyarrow":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _Missing())
"""
MISSING = "runtap cannot start: Python module 'pyarrow' is not installed"


@pytest.fixture
def no_pyarrow_in_worker(tmp_path, monkeypatch):
    """Children started from now on get a worker process without pyarrow."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(BLOCK_PYARROW))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))


class _Unloadable:
    """A flow-file state mitmproxy cannot turn into a flow."""

    id = "unloadable"

    def to_flow(self):
        raise KeyError("request")


def _flow(path: str):
    flow = tflow.tflow(resp=True)
    flow.request.path = path
    return flow


def test_module_top_imports_only_the_standard_library():
    """The child's `-m` target must reach its entry function before any heavy import."""
    code = "import sys, runtap.addon.worker; print(sorted({'duckdb', 'pyarrow', 'mitmproxy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_flows_and_flow_states_are_written_and_failures_counted_per_capture(tmp_path):
    db = str(tmp_path / "w.duckdb")
    worker = Worker(db, max_queued_rows=1000)
    worker.start()
    worker.write_capture({"capture_id": "cap-1", "mode": "test", "source": "test"})
    live = _flow("/v1/threads/thread_1/runs/run_1")
    worker.put(captured_from_flow(live))
    worker.put(_Unloadable())
    worker.write_capture({"capture_id": "cap-2", "mode": "test", "source": "test"})
    worker.put(_Unloadable())
    result = worker.close()
    assert result.exchanges == 3
    assert result.errors == {"cap-1": 1, "cap-2": 1}
    assert result.rows_written >= 1 and result.rows_lost == 0
    con = duckdb.connect(db, read_only=True)
    try:
        rows = con.execute("SELECT exchange_id, capture_id FROM exchanges").fetchall()
        captures = {r[0] for r in con.execute("SELECT capture_id FROM captures").fetchall()}
    finally:
        con.close()
    assert rows == [(live.id, "cap-1")] and captures == {"cap-1", "cap-2"}


def test_an_unusable_store_is_one_line(tmp_path):
    worker = Worker(str(tmp_path / "no-such-dir" / "w.duckdb"), max_queued_rows=10)
    with pytest.raises(RuntapError, match="does not exist"):
        worker.start()


def test_a_missing_module_in_the_worker_is_one_line(no_pyarrow_in_worker, tmp_path):
    worker = Worker(str(tmp_path / "w.duckdb"), max_queued_rows=10)
    with pytest.raises(RuntapError) as raised:
        worker.start()
    message = str(raised.value)
    assert message.startswith(MISSING) and "\n" not in message


def test_ingest_exits_2_with_the_missing_module_line(no_pyarrow_in_worker, tmp_path):
    db = str(tmp_path / "ingest.duckdb")
    done = subprocess.run(
        [sys.executable, "-m", "runtap", "ingest", SAMPLE_FLOWS, "--db", db], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and MISSING in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_proxy_says_why_it_is_not_recording_and_exits(no_pyarrow_in_worker, tmp_path):
    """At start-up the error line makes mitmproxy's start-up check exit (code 1), as for any
    store that cannot be opened; the line names the missing module, with no traceback."""
    db = str(tmp_path / "proxy.duckdb")
    listen = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*RUNTAP, "proxy", "--upstream", "http://127.0.0.1:9", "--listen", listen, "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    output = done.stdout
    assert done.returncode == 1, output
    assert f"runtap: not recording: {MISSING}" in output and "Traceback" not in output, output
    assert "recording to" not in output  # no ready line for a proxy that does not record
