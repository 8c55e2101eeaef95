"""The exchange ids a store already holds, kept compact so ingest stays idempotent on big stores.

Ids are loaded once, at the start of an ingest, in chunks, into one sorted numpy array of
fixed-width bytes (36 bytes a flow id: a million stored exchanges cost ~36 MB where a Python set
would cost ~120 MB) and looked up by binary search (a few microseconds). Ids stored during the
ingest go to a small set, merged into the array now and then, so memory grows with what is
stored, never with the size of the files read.
"""

from __future__ import annotations

import numpy as np

from runtap.store.reader import connect_with_retry

_MERGE_EVERY = 100_000
_FETCH = 100_000


class SeenIds:
    """A set of exchange ids: the store's at load time plus those added since."""

    def __init__(self, ids: list[str] = ()) -> None:
        self._sorted = np.sort(_packed(ids))
        self._recent: set[str] = set()

    @classmethod
    def load(cls, db: str) -> SeenIds:
        """Read every exchange id of the store at `db` (which must exist and be a runtap store)."""
        seen = cls()
        con = connect_with_retry(db, read_only=True)
        try:
            cursor = con.execute("SELECT exchange_id FROM exchanges WHERE exchange_id IS NOT NULL")
            parts = [seen._sorted]
            while chunk := cursor.fetchmany(_FETCH):
                parts.append(_packed([row[0] for row in chunk]))
        finally:
            con.close()
        seen._sorted = np.sort(np.concatenate(parts))
        return seen

    def __contains__(self, exchange_id: str) -> bool:
        if exchange_id in self._recent:
            return True
        key = exchange_id.encode()
        if len(key) > self._sorted.itemsize:  # longer than every stored id
            return False
        i = int(np.searchsorted(self._sorted, key))
        return i < len(self._sorted) and self._sorted[i] == key

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def add(self, exchange_id: str) -> None:
        """Remember an id stored by this ingest."""
        self._recent.add(exchange_id)
        if len(self._recent) >= _MERGE_EVERY:
            self._sorted = np.sort(np.concatenate([self._sorted, _packed(self._recent)]))
            self._recent.clear()


def _packed(ids) -> np.ndarray:
    return np.array([i.encode() for i in ids], dtype=bytes) if ids else np.array([], dtype="S1")
