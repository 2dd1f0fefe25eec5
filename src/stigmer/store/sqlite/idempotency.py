"""Idempotency records on SQLite: reads inline on the read connection, writes through the writer's
connection (inside the mutation's transaction, like lease rows), purges as one internal write."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import msgspec

from ..base import IdempotencyRecord
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

COLUMNS = "tenant, scope, key, fingerprint, state, status, body, headers, created_at, expires_at, owner"
_GET = f"SELECT {COLUMNS} FROM idempotency WHERE tenant=? AND scope=? AND key=?"
_PUT = f"INSERT OR REPLACE INTO idempotency ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_DELETE = "DELETE FROM idempotency WHERE tenant=? AND scope=? AND key=?"
_DUE = "SELECT 1 FROM idempotency WHERE expires_at <= ? LIMIT 1"
_PURGE = ("DELETE FROM idempotency WHERE (tenant, scope, key) IN"
          " (SELECT tenant, scope, key FROM idempotency WHERE expires_at <= ? LIMIT ?)")

_headers = msgspec.json.Decoder(tuple[tuple[str, str], ...])


def _record(row: tuple) -> IdempotencyRecord:
    return IdempotencyRecord(*row[:7], _headers.decode(row[7]), *row[8:])


def _row(r: IdempotencyRecord) -> tuple:
    return (r.tenant, r.scope, r.key, r.fingerprint, r.state, r.status, r.body,
            msgspec.json.encode(r.headers).decode(), r.created_at, r.expires_at, r.owner)


class SQLiteIdempotency:
    """`store.idempotency`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def get(self, tenant: str, scope: str, key: str) -> IdempotencyRecord | None:
        try:
            row = self._store.read_conn.execute(_GET, (tenant, scope, key)).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None
        return None if row is None else _record(row)

    async def purge(self, now: float, limit: int) -> int:
        if not await self._store.in_pool(_DUE, (now,)):  # the common case costs no write
            return 0
        return await self._store.submit_internal(lambda tx: tx.conn.execute(_PURGE, (now, limit)).rowcount)


class IdempotencyWrites:
    """`tx.idempotency`: the records of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._conn.execute(_GET, (self._tenant, scope, key)).fetchone()
        return None if row is None else _record(row)

    def put(self, r: IdempotencyRecord) -> None:
        if r.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may not write tenant {r.tenant!r}")
        self._conn.execute(_PUT, _row(r))

    def delete(self, scope: str, key: str) -> None:
        self._conn.execute(_DELETE, (self._tenant, scope, key))
