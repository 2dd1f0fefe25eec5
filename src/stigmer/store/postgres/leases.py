"""Lease rows on PostgreSQL: reads on the pool, writes inside the writer's transaction, under the
tenant's revision-counter lock (so acquire, renew and release are serialised across replicas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import LeaseRecord

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

COLUMNS = "tenant, resource, id, holder, token, created_at, renewed_at, expires_at, released_at"
_GET = f"SELECT {COLUMNS} FROM leases WHERE tenant = %s AND resource = %s"
_BY_ID = f"SELECT {COLUMNS} FROM leases WHERE tenant = %s AND id = %s"
_PUT = (
    f"INSERT INTO leases ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (tenant, resource) DO UPDATE SET id = EXCLUDED.id, holder = EXCLUDED.holder,"
    " token = EXCLUDED.token, created_at = EXCLUDED.created_at, renewed_at = EXCLUDED.renewed_at,"
    " expires_at = EXCLUDED.expires_at, released_at = EXCLUDED.released_at"
)


class PostgresLeases:
    """`store.leases`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, resource: str) -> LeaseRecord | None:
        rows = await self._store.fetch(_GET, (tenant, resource))
        return LeaseRecord(*rows[0]) if rows else None

    async def by_id(self, tenant: str, lease_id: str) -> LeaseRecord | None:
        rows = await self._store.fetch(_BY_ID, (tenant, lease_id))
        return LeaseRecord(*rows[0]) if rows else None


class LeaseWritesPG:
    """`tx.leases`: the lease rows of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def get(self, resource: str) -> LeaseRecord | None:
        tx = self._tx
        row = tx.cur.execute(_GET, (tx.tenant, resource)).fetchone()
        return None if row is None else LeaseRecord(*row)

    def by_id(self, lease_id: str) -> LeaseRecord | None:
        tx = self._tx
        row = tx.cur.execute(_BY_ID, (tx.tenant, lease_id)).fetchone()
        return None if row is None else LeaseRecord(*row)

    def put(self, r: LeaseRecord) -> None:
        tx = self._tx
        tx.check_tenant(r.tenant)
        tx.write(_PUT, (r.tenant, r.resource, r.id, r.holder, r.token, r.created_at, r.renewed_at, r.expires_at,
                        r.released_at))
