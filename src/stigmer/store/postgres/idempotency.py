"""Idempotency records on PostgreSQL: reads on the pool, writes inside the writer's transaction under
the tenant's revision-counter lock (so a check and a record are serialised across replicas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..base import IdempotencyRecord

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

COLUMNS = "tenant, scope, key, fingerprint, state, status, body, headers, created_at, expires_at, owner"
_GET = f"SELECT {COLUMNS} FROM idempotency WHERE tenant = %s AND scope = %s AND key = %s"
_PUT = (
    f"INSERT INTO idempotency ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (tenant, scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, state = EXCLUDED.state,"
    " status = EXCLUDED.status, body = EXCLUDED.body, headers = EXCLUDED.headers,"
    " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner"
)
_DELETE = "DELETE FROM idempotency WHERE tenant = %s AND scope = %s AND key = %s"
# Outside any tenant's lock: a record a mutation has just rewritten is re-checked by DELETE after its
# row lock, so only still-expired rows go; SKIP LOCKED leaves rows being written for the next round.
_PURGE = (
    "DELETE FROM idempotency WHERE (tenant, scope, key) IN (SELECT tenant, scope, key FROM idempotency"
    " WHERE expires_at <= %s ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
)

_headers = msgspec.json.Decoder(tuple[tuple[str, str], ...])


def _record(row: tuple) -> IdempotencyRecord:
    return IdempotencyRecord(*row[:7], _headers.decode(row[7]), *row[8:])


def _row(r: IdempotencyRecord) -> tuple:
    return (r.tenant, r.scope, r.key, r.fingerprint, r.state, r.status, r.body,
            msgspec.json.encode(r.headers).decode(), r.created_at, r.expires_at, r.owner)


class PostgresIdempotency:
    """`store.idempotency`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, scope: str, key: str) -> IdempotencyRecord | None:
        rows = await self._store.fetch(_GET, (tenant, scope, key))
        return _record(rows[0]) if rows else None

    async def purge(self, now: float, limit: int) -> int:
        async def run(conn) -> int:
            cur = await conn.execute(_PURGE, (now, limit))
            return cur.rowcount

        return await self._store.run(run)


class IdempotencyWritesPG:
    """`tx.idempotency`: the records of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        tx = self._tx
        row = tx.cur.execute(_GET, (tx.tenant, scope, key)).fetchone()
        return None if row is None else _record(row)

    def put(self, r: IdempotencyRecord) -> None:
        tx = self._tx
        tx.check_tenant(r.tenant)
        tx.write(_PUT, _row(r))

    def delete(self, scope: str, key: str) -> None:
        tx = self._tx
        tx.write(_DELETE, (tx.tenant, scope, key))
