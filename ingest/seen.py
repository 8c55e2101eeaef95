"""The exchange ids a store already holds, kept compact so ingest stays idempotent on big stores.

Ids are loaded once, at the start of an ingest, into one sorted Arrow string column (~45 bytes
an id: a million stored exchanges cost ~45 MB, where a Python set would cost ~120 MB) and
looked up by binary search. Ids stored during the ingest go to a small set, merged into the
sorted column now and then, so memory grows with what is stored, never with the file's size.
"""

from __future__ import annotations

import polars as pl

from store.reader import connect_with_retry

_MERGE_EVERY = 100_000


class SeenIds:
    """A set of exchange ids: the store's at load time plus those added since."""

    def __init__(self, ids: pl.Series | None = None) -> None:
        self._sorted = (ids if ids is not None else pl.Series(dtype=pl.String)).unique().sort()
        self._recent: set[str] = set()

    @classmethod
    def load(cls, db: str) -> SeenIds:
        """Read every exchange id of the store at `db` (which must exist and be a runtap store)."""
        con = connect_with_retry(db, read_only=True)
        try:
            frame = pl.DataFrame(con.sql("SELECT exchange_id FROM exchanges WHERE exchange_id IS NOT NULL"))
        finally:
            con.close()
        return cls(frame.get_column("exchange_id").cast(pl.String))

    def __contains__(self, exchange_id: str) -> bool:
        if exchange_id in self._recent:
            return True
        i = self._sorted.search_sorted(exchange_id, side="left")
        return i < len(self._sorted) and self._sorted[i] == exchange_id

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def add(self, exchange_id: str) -> None:
        """Remember an id stored by this ingest."""
        self._recent.add(exchange_id)
        if len(self._recent) >= _MERGE_EVERY:
            merged = pl.concat([self._sorted, pl.Series(list(self._recent), dtype=pl.String)])
            self._sorted = merged.sort()
            self._recent.clear()
