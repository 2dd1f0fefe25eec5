"""Rate-limit windows on SQLite (`store.rate_windows`): each hit is one store-internal write of the single
writer (group-committed with the others), so a count is exact across every request of the process."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import SQLiteStore

_HIT = ("INSERT INTO rate_windows (bucket, window_start, count) VALUES (?, ?, 1)"
        " ON CONFLICT (bucket, window_start) DO UPDATE SET count = count + 1 RETURNING count")
_PURGE = "DELETE FROM rate_windows WHERE window_start < ?"


class SQLiteRateWindows:
    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def hit(self, bucket: str, window_start: int, purge_before: int | None) -> int:
        def write(tx) -> int:
            if purge_before is not None:
                tx.conn.execute(_PURGE, (purge_before,))
            return tx.conn.execute(_HIT, (bucket, window_start)).fetchone()[0]

        return await self._store.submit_internal(write)
