"""`runtap export --parquet` and `store.multi`: several stores and exports read as one store.

Stores are real DuckDB files filled by ingesting flow files built with mitmproxy's classes; every
report of `analysis` is computed over them, so "several stores give the figures of one" is
checked on the figures users see.
"""

from __future__ import annotations

import json
import os
import shutil

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from runtap.analysis import Filters
from runtap.analysis.loader import prepare
from runtap.analysis.registry import REPORTS, build_report, load_inputs, run_report
from runtap.cli import cli
from runtap.errors import RuntapError
from runtap.ingest import ingest_files
from runtap.store.export import MANIFEST, export_parquet
from runtap.store.multi import expand_sources, open_stores
from tests.test_ingest import _flow, write_flows

DAY = 86_400.0
T0 = 1_760_000_000.0


def _run(run_id: str, status: str, model: str, tokens: int | None, t: float) -> dict:
    usage = {"prompt_tokens": tokens, "completion_tokens": 1, "total_tokens": tokens + 1} if tokens else None
    return {
        "id": run_id,
        "object": "thread.run",
        "thread_id": f"thread_{run_id}",
        "assistant_id": "asst_1",
        "status": status,
        "model": model,
        "created_at": int(t),
        "started_at": int(t) + 1,
        "completed_at": int(t) + 2 if status == "completed" else None,
        "usage": usage,
        "required_action": None
        if status != "requires_action"
        else {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {"id": f"call_{run_id}", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ]
            },
        },
    }


def _step(run_id: str, status: str, t: float) -> dict:
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10} if status == "completed" else None
    return {
        "id": f"step_{run_id}",
        "object": "thread.run.step",
        "run_id": run_id,
        "thread_id": f"thread_{run_id}",
        "assistant_id": "asst_1",
        "type": "tool_calls",
        "status": status,
        "created_at": int(t),
        "completed_at": int(t) + 2 if status == "completed" else None,
        "usage": usage,
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": f"call_{run_id}",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}", "output": None},
                }
            ],
        },
    }


def traffic() -> tuple[list, list]:
    """Two proxies' flows over three days; each run is observed by both proxies."""
    first, second = [], []
    for i, (model, end) in enumerate([("gpt-4o", "completed"), ("gpt-4o-mini", "failed"), ("o3-mini", "completed")]):
        run, t = f"run_{i}", T0 + i * DAY
        path = f"/threads/thread_{run}/runs"
        first.append(_flow("POST", path, 200, _run(run, "queued", model, None, t), t))
        first.append(_flow("GET", f"{path}/{run}", 200, _run(run, "requires_action", model, None, t), t + 1))
        second.append(_flow("GET", f"{path}/{run}", 200, _run(run, "in_progress", model, None, t), t + 2))
        second.append(_flow("GET", f"{path}/{run}", 200, _run(run, end, model, 100 * (i + 1), t), t + 3))
        second.append(_flow("GET", f"{path}/{run}", 500, b'{"error": {}}', t + 4))
        first.append(
            _flow(
                "GET", f"{path}/{run}/steps", 200, {"object": "list", "data": [_step(run, "in_progress", t)]}, t + 1.5
            )
        )
        second.append(_flow("GET", f"{path}/{run}/steps/step_{run}", 200, _step(run, "completed", t), t + 3.5))
    return first, second


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(store of proxy A, store of proxy B, one store holding both) built by ingest."""
    tmp = tmp_path_factory.mktemp("stores")
    first, second = traffic()
    write_flows(tmp / "a.mitm", first)
    write_flows(tmp / "b.mitm", second)
    paths = {name: str(tmp / f"{name}.duckdb") for name in ("a", "b", "all")}
    ingest_files([str(tmp / "a.mitm")], paths["a"])
    ingest_files([str(tmp / "b.mitm")], paths["b"])
    ingest_files([str(tmp / "a.mitm"), str(tmp / "b.mitm")], paths["all"])
    return paths


def _report(sources, name: str):
    spec = REPORTS[name]
    with open_stores(sources) as con:
        prepare(con)
        frames = load_inputs(con, spec.inputs, Filters())
    return build_report(spec, frames)


def _rows(sources, sql: str):
    with open_stores(sources) as con:
        return con.execute(sql).fetchall()


def test_export_writes_every_relation_partitioned_by_day(stores, tmp_path):
    out = tmp_path / "export"
    result = export_parquet(stores["all"], str(out))
    assert set(result.rows) == {
        "captures",
        "exchanges",
        "run_snapshots",
        "step_snapshots",
        "tool_call_snapshots",
        "sse_events",
        "response_snapshots",
        "response_items",
        "runs",
        "run_steps",
        "run_transitions",
        "run_status_intervals",
        "tool_calls",
        "responses",
        "response_transitions",
        "response_function_calls",
    }
    assert (result.rows["exchanges"], result.rows["runs"], result.rows["run_steps"], result.rows["tool_calls"]) == (
        21,
        3,
        3,
        3,
    )
    days = sorted(p for p in os.listdir(out / "exchanges"))
    assert days == ["day=2025-10-09", "day=2025-10-10", "day=2025-10-11"]
    assert os.listdir(out / "sse_events") == []  # no rows, no files
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["relations"]["runs"]["kind"] == "view"
    assert ["total_tokens", "BIGINT"] in manifest["relations"]["runs"]["columns"]
    assert "## run_transitions (view" in (out / "README.md").read_text()
    con = duckdb.connect()
    back = con.execute(
        f"SELECT day, count(*) FROM read_parquet('{out}/runs/**/*.parquet', hive_partitioning=true) "
        "GROUP BY day ORDER BY day"
    ).fetchall()
    assert [n for _, n in back] == [1, 1, 1]
    with duckdb.connect(stores["all"], read_only=True) as store:
        want = pl.DataFrame(store.sql("SELECT * FROM runs ORDER BY run_id"))
    want = want.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))
    got = pl.read_parquet(out / "runs" / "**" / "*.parquet", hive_partitioning=True).drop("day").sort("run_id")
    assert_frame_equal(got, want)


def test_export_replaces_an_earlier_export_and_refuses_other_directories(stores, tmp_path):
    out = tmp_path / "export"
    export_parquet(stores["a"], str(out))
    assert export_parquet(stores["b"], str(out)).rows["exchanges"] == 12
    assert len(list(out.glob("exchanges/*/*.parquet"))) == 3
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".runtap-export-")]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    result = CliRunner().invoke(cli, ["export", "--parquet", str(other), "--db", stores["a"]])
    assert result.exit_code == 2 and "not empty and not a runtap export" in result.output
    assert os.listdir(other) == ["cat.jpg"]


def test_export_cli(stores, tmp_path):
    result = CliRunner().invoke(cli, ["export", "--parquet", str(tmp_path / "x"), "--db", stores["all"]])
    assert result.exit_code == 0, result.output
    assert "exchanges" in result.output and "wrote" in result.output.splitlines()[-1]


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_reports_over_several_stores_equal_one_store(stores, tmp_path_factory, name):
    out = tmp_path_factory.mktemp("exp") / "a-export"
    export_parquet(stores["a"], str(out))
    one = run_report(stores["all"], name)
    for sources in ([stores["a"], stores["b"]], [str(out), stores["b"]]):
        several = _report(sources, name)
        assert list(several.sections) == list(one.sections)
        for section, frame in one.sections.items():
            sort = [c for c in frame.columns if frame[c].dtype == pl.String] or frame.columns
            assert_frame_equal(several.sections[section].sort(sort), frame.sort(sort), check_row_order=False)
    assert one.main.height > 0


def test_views_over_several_stores_equal_one_store(stores):
    queries = [
        "SELECT * EXCLUDE (last_exchange_id) FROM runs ORDER BY run_id",
        "SELECT run_id, seq, from_status, to_status, observed_at FROM run_transitions ORDER BY ALL",
        "SELECT * FROM tool_calls ORDER BY tool_call_id",
        "SELECT count(*), count(DISTINCT capture_id) FROM exchanges",
    ]
    for sql in queries:
        assert _rows([stores["a"], stores["b"]], sql) == _rows([stores["all"]], sql)
    assert _rows([stores["a"], stores["b"]], "SELECT count(*) FROM run_transitions") == [(9,)]


def test_a_store_given_twice_is_refused(stores, tmp_path):
    out = tmp_path / "a-export"
    export_parquet(stores["a"], str(out))
    with pytest.raises(RuntapError, match="share 9 exchanges"), open_stores([stores["a"], str(out)]):
        pass


def test_bad_sources_are_one_line_errors(stores, tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "text.duckdb").write_text("hello")
    for sources, message in [
        ([stores["a"], str(tmp_path / "missing.duckdb")], "no runtap store"),
        ([stores["a"], str(tmp_path / "dir")], "not a runtap Parquet export"),
        ([stores["a"], str(tmp_path / "text.duckdb")], "not a readable DuckDB file"),
    ]:
        with pytest.raises(RuntapError, match=message), open_stores(sources):
            pass
    with pytest.raises(RuntapError, match="matches no file"):
        expand_sources([str(tmp_path / "*.nothing")])


def test_expand_sources_globs_in_order_and_once(stores):
    folder = os.path.dirname(stores["a"])
    assert expand_sources([os.path.join(folder, "*.duckdb"), stores["a"]]) == [
        os.path.join(folder, name) for name in ("a.duckdb", "all.duckdb", "b.duckdb")
    ]


@pytest.mark.parametrize("name", ["tokens", "transitions", "latency"])
def test_report_cli_takes_repeated_dbs_globs_and_exports(stores, tmp_path, name):
    """`runtap report NAME --db A --db B` (or a glob, or an export dir) prints the one-store figures."""
    from click.testing import CliRunner

    from runtap.cli import cli

    def report_json(*dbs: str) -> list:
        args = ["report", name, "--format", "json"] + [a for db in dbs for a in ("--db", db)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return sorted(json.dumps(row, sort_keys=True) for row in json.loads(result.stdout))

    out = tmp_path / "a-export"
    export_parquet(stores["a"], str(out))
    one = report_json(stores["all"])
    assert one
    assert report_json(stores["a"], stores["b"]) == one
    assert report_json(str(out), stores["b"]) == one
    glob_dir = tmp_path / "glob"
    glob_dir.mkdir()
    for part in ("a", "b"):
        shutil.copyfile(stores[part], glob_dir / f"{part}.duckdb")
    assert report_json(str(glob_dir / "*.duckdb")) == one
