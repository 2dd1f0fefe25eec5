"""Rate-limit windows on PostgreSQL (`store.rate_windows`): one atomic upsert per hit on the pool, shared
by every replica of the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import PostgresStore

_HIT = ("INSERT INTO rate_windows (bucket, window_start, count) VALUES (%s, %s, 1)"
        " ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_windows.count + 1 RETURNING count")
_PURGE = "DELETE FROM rate_windows WHERE window_start < %s"


class PostgresRateWindows:
    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def hit(self, bucket: str, window_start: int, purge_before: int | None) -> int:
        async def run(conn) -> int:
            if purge_before is not None:
                await conn.execute(_PURGE, (purge_before,))
            return (await (await conn.execute(_HIT, (bucket, window_start))).fetchone())[0]

        return await self._store.run(run)
