"""Cheap checks of a store path that never create or lock the file (safe at option time)."""

from __future__ import annotations

import os

import duckdb

from runtap.errors import RuntapError
from runtap.store.reader import connect_with_retry

_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


def check_store_path(path: str) -> None:
    """Raise RuntapError unless `path` can become (or already is) a DuckDB store."""
    if not path:
        raise RuntapError("the store path is empty")
    if os.path.isdir(path):
        raise RuntapError(f"{path} is a directory, not a store file")
    if os.path.exists(path):
        try:
            with open(path, "rb") as fh:
                header = fh.read(12)
        except OSError as exc:
            raise RuntapError(f"cannot read {path}: {exc.strerror}") from None
        if header and header[8:12] != _DUCKDB_MAGIC:
            raise RuntapError(f"{path} exists and is not a DuckDB file; choose another --db")
        if header:
            _check_runtap_tables(path)
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise RuntapError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise RuntapError(f"directory {parent} is not writable")


def _check_runtap_tables(path: str) -> None:
    """An existing DuckDB file must be empty or a runtap store (a busy file is given the benefit)."""
    try:
        con = connect_with_retry(path, read_only=True, timeout=2.0)
    except RuntapError as exc:
        if "locked" in str(exc):
            return  # another runtap process is writing it: it is a store
        raise
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    except duckdb.Error as exc:
        raise RuntapError(f"cannot read {path}: {exc}") from None
    finally:
        con.close()
    if tables and "runtap_meta" not in tables:
        raise RuntapError(f"{path} is a DuckDB file but not a runtap store; choose another --db")
