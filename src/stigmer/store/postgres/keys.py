"""Tenants and API keys on PostgreSQL (`store.keys`), on the read pool: no revision is involved."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from ..base import KeyRecord

if TYPE_CHECKING:
    from .store import PostgresStore

_COLUMNS = "id, digest, tenant, name, scopes, prefixes, created_at, expires_at, last_used_at, revoked_at"


def _record(row: tuple) -> KeyRecord:
    id_, digest, tenant, name, scopes, prefixes, *times = row
    return KeyRecord(id_, bytes(digest), tenant, name, tuple(scopes), tuple(prefixes), *times)


class PostgresKeys:
    def __init__(self, store: "PostgresStore"):
        self._store = store
        self._seen_any = False  # once a key exists it always will (revoked keys stay)

    async def any(self) -> bool:
        if not self._seen_any:
            rows = await self._store.fetch("SELECT EXISTS (SELECT 1 FROM api_keys)")
            self._seen_any = bool(rows[0][0])
        return self._seen_any

    async def by_digest(self, digest: bytes) -> KeyRecord | None:
        rows = await self._store.fetch(f"SELECT {_COLUMNS} FROM api_keys WHERE digest = %s", (digest,))
        return _record(rows[0]) if rows else None

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        where, params = ("WHERE tenant = %s", (tenant,)) if tenant is not None else ("", ())
        rows = await self._store.fetch(f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_at, id", params)
        return [_record(r) for r in rows]

    async def create(self, r: KeyRecord) -> KeyRecord:
        async def run(conn: psycopg.AsyncConnection) -> KeyRecord:
            async with conn.transaction():
                await conn.execute("INSERT INTO tenants (id, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                                   (r.tenant, r.created_at))
                # ON CONFLICT (id): a repeat after a lost connection finds its own row.
                cur = await conn.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING RETURNING id",
                    (r.id, r.digest, r.tenant, r.name, list(r.scopes), list(r.prefixes), r.created_at,
                     r.expires_at, r.last_used_at, r.revoked_at))
                if await cur.fetchone() is None:
                    cur = await conn.execute("SELECT digest FROM api_keys WHERE id = %s", (r.id,))
                    if bytes((await cur.fetchone())[0]) != r.digest:  # type: ignore[index]
                        raise psycopg.errors.UniqueViolation(f"an API key with id {r.id!r} exists")
            return r

        return await self._store.run(run)

    async def revoke(self, key_id: str, tenant: str | None, now: float) -> KeyRecord | None:
        where, params = ("id = %s AND tenant = %s", (key_id, tenant)) if tenant is not None else ("id = %s", (key_id,))
        rows = await self._store.fetch(
            f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE {where} RETURNING {_COLUMNS}",
            (now, *params))
        return _record(rows[0]) if rows else None

    async def touch(self, key_ids: list[str], now: float) -> None:
        await self._store.fetch("UPDATE api_keys SET last_used_at = %s WHERE id = ANY(%s) RETURNING 1",
                                (now, list(key_ids)))

    async def tenants(self) -> list[str]:
        rows = await self._store.fetch("SELECT id FROM tenants ORDER BY id")
        return [r[0] for r in rows]
