"""Read several runtap stores and Parquet exports as one store: what `--db` repeated or globbed opens.

`open_stores(sources)` yields a DuckDB connection with the same relation names as one store:
each table is a view over the union (BY NAME) of that table in every source, typed as
`store.schema` says; the derived views (`runs`, `run_steps`, `run_transitions`,
`run_status_intervals`, `tool_calls`, ...) are then defined over those unions with
`store.schema.VIEWS`, so a run observed by two proxies
is one run with all its observations, and figures over several stores equal the figures over
one store holding the same data. A source is a store file (attached read-only, retrying while a
proxy holds its lock, like `open_store`) or a directory written by `runtap export --parquet`
(its tables are read; its exported views are ignored and recomputed).

Sources that share exchanges (the same store twice, a store and its own export, one flow file
ingested into two stores) would count those exchanges twice: that is refused, naming them.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Iterator, Sequence

import duckdb

from runtap.errors import RuntapError
from runtap.store.derived import DERIVED
from runtap.store.export import MANIFEST
from runtap.store.reader import LOCK_RETRY_SECONDS, open_store, retry_on_lock
from runtap.store.schema import SCHEMA_VERSION, TABLES, VIEWS

_GLOB_CHARS = set("*?[")


def expand_sources(values: Sequence[str]) -> list[str]:
    """Expand `--db` values (each a path or a glob) into existing sources, in order, each once.

    A glob that matches nothing is an error (a plain path is checked when opened).
    """
    found: list[str] = []
    for value in values:
        if _GLOB_CHARS & set(value):
            matches = sorted(glob.glob(os.path.expanduser(value)))
            if not matches:
                raise RuntapError(f"--db {value} matches no file or directory")
        else:
            matches = [value]
        for path in matches:
            if os.path.realpath(path) not in {os.path.realpath(p) for p in found}:
                found.append(path)
    if not found:
        raise RuntapError("no store given")
    return found


def open_sources(db: str | Sequence[str], *, timeout: float = LOCK_RETRY_SECONDS):
    """Open what `--db` named (a path, a glob, an export directory, or several) as one store."""
    return open_stores(expand_sources([db] if isinstance(db, str) else list(db)), timeout=timeout)


@contextlib.contextmanager
def open_stores(sources: Sequence[str], *, timeout: float = LOCK_RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open stores and Parquet exports read-only as one store; one store file is opened directly."""
    if len(sources) == 1 and not os.path.isdir(sources[0]):
        with open_store(sources[0], timeout=timeout) as con:
            yield con
        return
    con = duckdb.connect()
    try:
        parts: dict[str, list[str]] = {}
        for i, source in enumerate(sources):
            relations = _export_tables(source) if os.path.isdir(source) else _attach(con, source, f"src{i}", timeout)
            for table, sql in relations.items():
                parts.setdefault(table, []).append(f"SELECT *, {i} AS _source FROM ({sql})")
        for table, selects in parts.items():
            head = [_typed_empty(table)] if table in TABLES else []
            con.execute(f'CREATE TEMP VIEW "{table}_all" AS {" UNION ALL BY NAME ".join(head + selects)}')
            con.execute(f'CREATE TEMP VIEW "{table}" AS SELECT * EXCLUDE (_source) FROM "{table}_all"')
        for table in TABLES:
            if table not in parts:
                con.execute(f'CREATE TEMP VIEW "{table}" AS {_typed_empty(table)}')
        for name, sql in VIEWS.items():
            con.execute(f"CREATE TEMP VIEW {name} AS {sql}")
        con.execute(
            "CREATE TEMP TABLE runtap_meta AS SELECT 'schema_version' AS key, ? AS value", [str(SCHEMA_VERSION)]
        )
        _refuse_overlap(con, sources, "exchanges_all" if "exchanges" in parts else None)
        yield con
    finally:
        con.close()


def _typed_empty(table: str) -> str:
    columns = ", ".join(f"NULL::{ctype} AS {column}" for column, ctype in TABLES[table])
    return f"SELECT {columns} WHERE false"


def _attach(con: duckdb.DuckDBPyConnection, path: str, alias: str, timeout: float) -> dict[str, str]:
    """Attach a store file read-only; return table name -> SELECT over it."""
    if not os.path.exists(path):
        raise RuntapError(f"no runtap store at {path}")
    quoted = path.replace("'", "''")
    retry_on_lock(lambda: con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)"), path, timeout)
    tables = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_type = 'BASE TABLE'",
            [alias],
        ).fetchall()
    }
    if "runtap_meta" not in tables or "exchanges" not in tables:
        raise RuntapError(f"{path} is a DuckDB file but not a runtap store")
    # Derived tables are per store: over several, the views compute them from the snapshots.
    return {t: f'SELECT * FROM {alias}.main."{t}"' for t in sorted(tables - {"runtap_meta", *DERIVED})}


def _export_tables(path: str) -> dict[str, str]:
    """The tables of a `runtap export --parquet` directory; return table name -> SELECT over it."""
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        raise RuntapError(f"{path} is a directory but not a runtap Parquet export (no readable {MANIFEST})") from None
    selects = {}
    for table, info in manifest.get("relations", {}).items():
        if info.get("kind") != "table" or info.get("rows", 0) == 0:
            continue  # views are recomputed; empty tables have no files to read
        pattern = os.path.join(path, table, "**", "*.parquet").replace("'", "''")
        partitioned = info.get("partitioned_by") is not None
        selects[table] = (
            f"SELECT * EXCLUDE (day) FROM read_parquet('{pattern}', hive_partitioning = true)"
            if partitioned
            else f"SELECT * FROM read_parquet('{pattern}')"
        )
    return selects


def _refuse_overlap(con: duckdb.DuckDBPyConnection, sources: Sequence[str], exchanges: str | None) -> None:
    if exchanges is None:
        return
    shared = con.execute(f"""
        SELECT count(*), min(first), min(second) FROM (
            SELECT min(_source) AS first, max(_source) AS second FROM {exchanges}
            GROUP BY exchange_id HAVING count(DISTINCT _source) > 1)""").fetchall()[0]
    if shared[0]:
        raise RuntapError(
            f"{sources[shared[1]]} and {sources[shared[2]]} share {shared[0]} exchanges "
            "(the same recording twice?); pass each recording once"
        )
