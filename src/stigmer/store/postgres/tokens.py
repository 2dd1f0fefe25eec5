"""Capability tokens on PostgreSQL (`store.tokens`), on the read pool; every read goes to the database,
so a revocation committed by one replica refuses the next request on every other.

Token checks that arrive together share one statement (as key reads do: batching.py): each check waits for a
statement sent after it arrived, so it sees every revocation committed before the request.

A mint and a revocation are serialised through row locks: a mint locks every ancestor `FOR SHARE` and
checks none is revoked; a revocation locks the token `FOR UPDATE` in one statement and revokes the
descendants in the next (READ COMMITTED: that statement's snapshot sees every child committed before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from ..base import TokenCheck, TokenRecord
from ..sqlite.tokens import CHECK_COLUMNS, COLUMNS, descendants_range
from .batching import PointReads

if TYPE_CHECKING:
    from .store import PostgresStore

_CHECK = (f"SELECT {CHECK_COLUMNS} FROM capability_tokens t LEFT JOIN api_keys k ON k.id = t.key_id"
          " WHERE t.digest = ANY(%s)")
_GET = f"SELECT {COLUMNS} FROM capability_tokens WHERE tenant = %s AND id = %s"


def _record(row: tuple) -> TokenRecord:
    id_, digest, tenant, name, scopes, prefixes, *rest = row
    return TokenRecord(id_, bytes(digest), tenant, name, tuple(scopes), tuple(prefixes), *rest)


class PostgresTokens:
    def __init__(self, store: "PostgresStore"):
        self._store = store
        self._checks: PointReads[bytes, TokenCheck] = PointReads(store, self._check)

    async def check(self, digest: bytes) -> TokenCheck | None:
        return await self._checks.get(digest)

    async def drain(self) -> None:
        """Wait for the checks in flight (the store is closing)."""
        await self._checks.drain()

    async def _check(self, digests: list[bytes]) -> dict[bytes, TokenCheck]:
        rows = await self._store.fetch(_CHECK, (digests,))
        return {bytes(r[1]): (r[0], bytes(r[1]), r[2], tuple(r[3]), tuple(r[4]), r[5], r[6], bool(r[7]))
                for r in rows}

    async def get(self, tenant: str, token_id: str) -> TokenRecord | None:
        rows = await self._store.fetch(_GET, (tenant, token_id))
        return _record(rows[0]) if rows else None

    async def list(self, tenant: str) -> list[TokenRecord]:
        rows = await self._store.fetch(
            f"SELECT {COLUMNS} FROM capability_tokens WHERE tenant = %s AND revoked_at IS NULL"
            " ORDER BY seq", (tenant,))
        return [_record(r) for r in rows]

    async def create(self, r: TokenRecord) -> bool:
        ancestors = r.ancestors()

        async def run(conn: psycopg.AsyncConnection) -> bool:
            async with conn.transaction():
                if ancestors:
                    cur = await conn.execute(
                        "SELECT revoked_at FROM capability_tokens WHERE tenant = %s AND id = ANY(%s) FOR SHARE",
                        (r.tenant, ancestors))
                    rows = await cur.fetchall()
                    if len(rows) != len(ancestors) or any(row[0] is not None for row in rows):
                        return False
                # ON CONFLICT (id): a repeat after a lost connection finds its own row.
                await conn.execute(
                    f"INSERT INTO capability_tokens ({COLUMNS}) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (r.id, r.digest, r.tenant, r.name, list(r.scopes), list(r.prefixes), r.parent_id, r.lineage,
                     r.key_id, r.key_prefix, r.created_at, r.expires_at, r.last_used_at, r.revoked_at))
            return True

        return await self._store.run(run)

    async def revoke(self, tenant: str, token_id: str, now: float) -> TokenRecord | None:
        async def run(conn: psycopg.AsyncConnection) -> TokenRecord | None:
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT lineage FROM capability_tokens WHERE tenant = %s AND id = %s FOR UPDATE", (tenant, token_id))
                row = await cur.fetchone()
                if row is None:
                    return None
                low, high = descendants_range(row[0])
                await conn.execute("UPDATE capability_tokens SET revoked_at = COALESCE(revoked_at, %s)"
                                   " WHERE tenant = %s AND lineage >= %s AND lineage < %s", (now, tenant, low, high))
                cur = await conn.execute(_GET, (tenant, token_id))
                return _record(await cur.fetchone())  # type: ignore[arg-type]

        return await self._store.run(run)

    async def touch(self, token_ids: list[str], now: float) -> None:
        await self._store.fetch("UPDATE capability_tokens SET last_used_at = %s WHERE id = ANY(%s) RETURNING 1",
                                (now, list(token_ids)))
