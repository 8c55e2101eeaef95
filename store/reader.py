"""Open a runtap store for reading, politely sharing the file with a recording proxy.

DuckDB lets one process hold a file at a time, so the proxy's writer opens the file per batch
and readers retry briefly on the lock (docs/ARCHITECTURE.md). Everything that reads the store
(reports, replay, serve, export) goes through `open_store`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import duckdb

from runtap.errors import RuntapError

LOCK_RETRY_SECONDS = 15.0
T = TypeVar("T")


def is_lock_error(exc: BaseException) -> bool:
    """True when a DuckDB error means another process holds the file."""
    return "lock" in str(exc).lower()


def connect_with_retry(path: str, *, read_only: bool, timeout: float = LOCK_RETRY_SECONDS):
    """Connect to a DuckDB file, retrying while another process holds its lock."""
    return retry_on_lock(lambda: duckdb.connect(path, read_only=read_only), path, timeout)


def retry_on_lock[T](open_file: Callable[[], T], path: str, timeout: float = LOCK_RETRY_SECONDS) -> T:
    """Run `open_file()` (a connect or an ATTACH of `path`), retrying while another process holds
    the file's lock; any other DuckDB error, or a lock held past `timeout`, is a one-line RuntapError."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            return open_file()
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise RuntapError(f"{path} is not a readable DuckDB file: {first_line(exc)}") from None
            if time.monotonic() >= deadline:
                raise RuntapError(f"{path} stayed locked by another process for {timeout:.0f}s; try again") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


@contextlib.contextmanager
def open_store(path: str, *, timeout: float = LOCK_RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open an existing runtap store read-only; close it on exit so the proxy can write.

    Raises RuntapError for a missing file, a file that is not DuckDB, or one that is not a
    runtap store.
    """
    if not os.path.exists(path):
        raise RuntapError(f"no runtap store at {path} (record one with `runtap proxy` or `runtap demo`)")
    con = connect_with_retry(path, read_only=True, timeout=timeout)
    try:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "runtap_meta" not in tables or "exchanges" not in tables:
            raise RuntapError(f"{path} is a DuckDB file but not a runtap store")
        yield con
    finally:
        con.close()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
