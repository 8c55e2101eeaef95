"""Export a runtap store as Parquet, partitioned by day, for DuckDB, polars, Spark or Trino.

Layout of an export directory (stable; `EXPORT_FORMAT` changes if it ever does)::

    DIR/runtap-export.json         manifest: format, schema version, source, row counts, columns
    DIR/README.md                  this layout and every relation's columns, for humans
    DIR/<relation>/day=YYYY-MM-DD/data_0.parquet
    DIR/<relation>/day=__HIVE_DEFAULT_PARTITION__/...   rows whose day column is NULL

One directory per table (`captures`, `exchanges`, `run_snapshots`, `step_snapshots`,
`tool_call_snapshots`, `sse_events`, `response_snapshots`, `response_items`) and per derived view
(`runs`, `run_steps`, `run_transitions`, `run_status_intervals`, `tool_calls`, `responses`,
`response_transitions`, `response_function_calls`), with the columns and types of `store.schema` (JSON columns are
written as UTF-8 strings holding JSON text, which every engine reads as text) plus nothing else:
`day` is the Hive partition key, a DATE in UTC of the relation's `DAY_COLUMNS` column. Other
tables found in the store (replay results) are exported the same way, by their first timestamp
column, or whole into `<table>/data_0.parquet` without one. A relation with no rows is an empty
directory. Read it back with
`read_parquet('DIR/runs/**/*.parquet', hive_partitioning=true)` (DuckDB),
`pl.scan_parquet('DIR/runs/**/*.parquet', hive_partitioning=True)` (polars) or
`spark.read.parquet('DIR/runs')`. The views are a snapshot: figures over several exports must be
recomputed from the tables (`store.multi` does that), not added up from the views.

Exporting over an earlier export replaces it; the new export is built beside it and swapped in
at the end, so a failed export leaves the earlier one intact. Any other non-empty directory is
refused. The store is opened read-only once for the whole export: a proxy recording into it
keeps its rows queued meanwhile and writes them after.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from runtap.errors import RuntapError
from runtap.store.derived import DERIVED
from runtap.store.reader import open_store
from runtap.store.schema import SCHEMA_VERSION, VIEWS

EXPORT_FORMAT = 1
MANIFEST = "runtap-export.json"
# The column whose UTC date partitions each relation.
DAY_COLUMNS = {
    "captures": "started_at",
    "exchanges": "request_started_at",
    "run_snapshots": "observed_at",
    "step_snapshots": "observed_at",
    "tool_call_snapshots": "observed_at",
    "sse_events": "received_at",
    "runs": "first_observed_at",
    "run_steps": "first_observed_at",
    "run_transitions": "observed_at",
    "run_status_intervals": "entered_at",
    "tool_calls": "first_observed_at",
    "response_snapshots": "observed_at",
    "response_items": "observed_at",
    "responses": "first_observed_at",
    "response_transitions": "observed_at",
    "response_function_calls": "first_observed_at",
}
_SKIPPED = {"runtap_meta", *DERIVED}  # the manifest holds runtap_meta; the derived tables are recomputed


@dataclass
class ExportResult:
    """What `export_parquet` wrote: rows per relation, in the manifest's order."""

    out_dir: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def export_parquet(db: str, out_dir: str) -> ExportResult:
    """Write every table and derived view of the store at `db` to `out_dir` as day-partitioned Parquet."""
    started = time.perf_counter()
    _check_target(out_dir)
    parent = os.path.dirname(os.path.abspath(out_dir))
    staging = tempfile.mkdtemp(prefix=".runtap-export-", dir=parent)
    try:
        with open_store(db) as con:
            con.execute("SET TimeZone = 'UTC'")
            manifest = _export_all(con, db, staging)
        _write_docs(staging, manifest)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    rows = {name: info["rows"] for name, info in manifest["relations"].items()}
    return ExportResult(out_dir, rows, time.perf_counter() - started)


def _check_target(out_dir: str) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RuntapError(f"{out_dir} exists and is not a directory")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, MANIFEST)):
        raise RuntapError(f"{out_dir} is not empty and not a runtap export; choose an empty or new directory")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise RuntapError(f"directory {parent} does not exist")


def _relations(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(name, "table" | "view") of the store's relations: tables first, then views, by name."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    found = [(name, "view" if kind == "VIEW" else "table") for name, kind in rows if name not in _SKIPPED]
    return sorted(found, key=lambda r: (r[1] == "view", r[0]))


def _export_all(con: duckdb.DuckDBPyConnection, db: str, staging: str) -> dict:
    relations = {}
    for name, kind in _relations(con):
        described = con.execute(f'DESCRIBE "{name}"').fetchall()
        # JSON as plain UTF-8 strings: DuckDB's Parquet JSON type reads as binary in polars/Spark.
        select = ", ".join(f'"{c}"::VARCHAR AS "{c}"' if t == "JSON" else f'"{c}"' for c, t, *_ in described)
        day = DAY_COLUMNS.get(name) or next((c for c, t, *_ in described if t.startswith("TIMESTAMP")), None)
        target = os.path.join(staging, name)
        if day is None:
            os.makedirs(target)
            copied = con.execute(
                f'COPY (SELECT {select} FROM "{name}") TO '
                f"'{_sql_path(os.path.join(target, 'data_0.parquet'))}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            ).fetchall()[0][0]
        else:
            copied = con.execute(
                f'COPY (SELECT {select}, CAST("{day}" AS DATE) AS day FROM "{name}") '
                f"TO '{_sql_path(target)}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day))"
            ).fetchall()[0][0]
            os.makedirs(target, exist_ok=True)  # COPY makes no directory for an empty relation
        relations[name] = {
            "kind": kind,
            "rows": copied,
            "partitioned_by": f"day = UTC date of {day}" if day else None,
            "columns": [[c, "VARCHAR (JSON text)" if t == "JSON" else t] for c, t, *_ in described],
        }
    return {
        "format": EXPORT_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "source": os.path.abspath(db),
        "derived_views": sorted(VIEWS),
        "relations": relations,
    }


def _sql_path(path: str) -> str:
    return path.replace("'", "''")


def _write_docs(staging: str, manifest: dict) -> None:
    with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2)
    lines = [
        "# runtap Parquet export",
        "",
        f"Exported {manifest['exported_at']} from `{manifest['source']}` (store schema "
        f"v{manifest['schema_version']}, export format v{manifest['format']}).",
        "",
        "One directory per relation, Hive-partitioned by `day` (UTC date): "
        "`<relation>/day=YYYY-MM-DD/data_0.parquet`. Read with DuckDB "
        "`read_parquet('<relation>/**/*.parquet', hive_partitioning=true)`, polars "
        "`pl.scan_parquet(..., hive_partitioning=True)` or Spark `spark.read.parquet('<relation>')`.",
        "Views (`runs`, `run_steps`, `run_transitions`, `run_status_intervals`, `tool_calls`, `responses`, "
        "`response_transitions`, "
        "`response_function_calls`) are derived from the tables at export "
        "time; over several exports, recompute them from the tables.",
        "",
    ]
    for name, info in manifest["relations"].items():
        lines += [
            f"## {name} ({info['kind']}, {info['rows']} rows"
            f"{', partitioned by ' + info['partitioned_by'] if info['partitioned_by'] else ''})",
            "",
        ]
        lines += [f"- `{column}` {ctype}" for column, ctype in info["columns"]] + [""]
    with open(os.path.join(staging, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


def _swap_in(staging: str, out_dir: str) -> None:
    """Replace `out_dir` by `staging`; the earlier export is removed only once the new one is in place."""
    old = None
    if os.path.isdir(out_dir):
        old = staging + ".old"
        os.rename(out_dir, old)
    os.rename(staging, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)
