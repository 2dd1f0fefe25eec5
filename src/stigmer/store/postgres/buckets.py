"""Token buckets shared by every replica (`store.buckets`): one row per bucket, refilled and charged in one
statement, on the database's clock (replicas' clocks may differ; the database has one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import PostgresStore

# tokens after refill = least(capacity, tokens + elapsed · rate); granted when that holds `cost`.
_TAKE = """
WITH now AS (SELECT extract(epoch FROM clock_timestamp())::double precision AS t)
INSERT INTO rate_buckets AS b (bucket, tokens, at, granted)
SELECT %(bucket)s, %(capacity)s - %(cost)s, now.t, %(capacity)s >= %(cost)s FROM now
ON CONFLICT (bucket) DO UPDATE SET
    tokens = CASE WHEN least(%(capacity)s, b.tokens + greatest(0, (SELECT t FROM now) - b.at) * %(rate)s) >= %(cost)s
                  THEN least(%(capacity)s, b.tokens + greatest(0, (SELECT t FROM now) - b.at) * %(rate)s) - %(cost)s
                  ELSE least(%(capacity)s, b.tokens + greatest(0, (SELECT t FROM now) - b.at) * %(rate)s) END,
    granted = least(%(capacity)s, b.tokens + greatest(0, (SELECT t FROM now) - b.at) * %(rate)s) >= %(cost)s,
    at = greatest(b.at, (SELECT t FROM now))
RETURNING tokens, granted, at
"""


class PostgresBuckets:
    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def take(self, bucket: str, capacity: float, rate: float, cost: float = 1.0) -> tuple[bool, float, float]:
        """Take `cost` tokens if the bucket holds them: (granted, tokens left, the database's time)."""
        rows = await self._store.fetch(_TAKE, {"bucket": bucket, "capacity": float(capacity), "rate": float(rate),
                                               "cost": float(cost)})
        tokens, granted, at = rows[0]
        return bool(granted), float(tokens), float(at)
