"""Lease rows on SQLite: reads inline on the read connection, writes through the writer's connection.

A lease mutation writes its row with SQL at once (entry writes are held in memory by the group); the
engine raises before it writes, so a refused acquire costs the group no rerun (writer.py `_Rerun`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..base import LeaseRecord
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

COLUMNS = "tenant, resource, id, holder, token, created_at, renewed_at, expires_at, released_at"
_GET = f"SELECT {COLUMNS} FROM leases WHERE tenant=? AND resource=?"
_BY_ID = f"SELECT {COLUMNS} FROM leases WHERE tenant=? AND id=?"
_PUT = f"INSERT OR REPLACE INTO leases ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"


def _lease(conn: sqlite3.Connection, sql: str, params: tuple) -> LeaseRecord | None:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else LeaseRecord(*row)


class SQLiteLeases:
    """`store.leases`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def get(self, tenant: str, resource: str) -> LeaseRecord | None:
        return self._read(_GET, (tenant, resource))

    async def by_id(self, tenant: str, lease_id: str) -> LeaseRecord | None:
        return self._read(_BY_ID, (tenant, lease_id))

    def _read(self, sql: str, params: tuple) -> LeaseRecord | None:
        try:
            return _lease(self._store.read_conn, sql, params)
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None


class LeaseWrites:
    """`tx.leases`: the lease rows of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def get(self, resource: str) -> LeaseRecord | None:
        return _lease(self._conn, _GET, (self._tenant, resource))

    def by_id(self, lease_id: str) -> LeaseRecord | None:
        return _lease(self._conn, _BY_ID, (self._tenant, lease_id))

    def put(self, r: LeaseRecord) -> None:
        if r.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may not write tenant {r.tenant!r}")
        self._conn.execute(_PUT, (r.tenant, r.resource, r.id, r.holder, r.token, r.created_at, r.renewed_at,
                                  r.expires_at, r.released_at))
