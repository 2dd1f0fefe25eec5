"""Capability tokens on SQLite: reads inline on the read connection, writes through the writer thread
(which serialises a mint against a revocation: each runs alone in the one writer)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..base import TokenCheck, TokenRecord
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

COLUMNS = ("id, digest, tenant, name, scopes, prefixes, parent_id, lineage, key_id, key_prefix, created_at, "
           "expires_at, last_used_at, revoked_at")
# Only what authentication needs (every column more costs on each request).
CHECK_COLUMNS = "t.id, t.digest, t.tenant, t.scopes, t.prefixes, t.expires_at, t.revoked_at, k.revoked_at IS NOT NULL"
_CHECK = f"SELECT {CHECK_COLUMNS} FROM capability_tokens t LEFT JOIN api_keys k ON k.id = t.key_id WHERE t.digest=?"
_GET = f"SELECT {COLUMNS} FROM capability_tokens WHERE tenant=? AND id=?"


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()


def _record(row: tuple) -> TokenRecord:
    id_, digest, tenant, name, scopes, prefixes, *rest = row
    return TokenRecord(id_, bytes(digest), tenant, name, _split(scopes), _split(prefixes), *rest)


def descendants_range(lineage: str) -> tuple[str, str]:
    """[low, high): every lineage that starts with `lineage` (which ends with "/", and "0" follows "/")."""
    return lineage, lineage[:-1] + "0"


class SQLiteTokens:
    """`store.tokens`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        try:
            return self._store.read_conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None

    async def check(self, digest: bytes) -> TokenCheck | None:
        try:
            row = self._store.read_conn.execute(_CHECK, (digest,)).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None
        if row is None:
            return None
        id_, digest_, tenant, scopes, prefixes, expires_at, revoked_at, key_revoked = row
        return id_, bytes(digest_), tenant, _split(scopes), _split(prefixes), expires_at, revoked_at, bool(key_revoked)

    async def get(self, tenant: str, token_id: str) -> TokenRecord | None:
        rows = self._read(_GET, (tenant, token_id))
        return _record(rows[0]) if rows else None

    async def list(self, tenant: str) -> list[TokenRecord]:
        rows = await self._store.in_pool(
            f"SELECT {COLUMNS} FROM capability_tokens WHERE tenant=? AND revoked_at IS NULL ORDER BY rowid",
            (tenant,))
        return [_record(r) for r in rows]

    async def create(self, r: TokenRecord) -> bool:
        ancestors = r.ancestors()

        def run(tx) -> bool:
            if ancestors:
                marks = ",".join("?" * len(ancestors))
                alive = tx.conn.execute(
                    f"SELECT count(*) FROM capability_tokens WHERE tenant=? AND id IN ({marks}) AND revoked_at IS NULL",
                    (r.tenant, *ancestors)).fetchone()[0]
                if alive != len(ancestors):
                    return False
            tx.conn.execute(
                f"INSERT INTO capability_tokens ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (r.id, r.digest, r.tenant, r.name, "\n".join(r.scopes), "\n".join(r.prefixes), r.parent_id,
                 r.lineage, r.key_id, r.key_prefix, r.created_at, r.expires_at, r.last_used_at, r.revoked_at))
            return True

        return await self._store.submit_internal(run)

    async def revoke(self, tenant: str, token_id: str, now: float) -> TokenRecord | None:
        def run(tx) -> TokenRecord | None:
            row = tx.conn.execute("SELECT lineage FROM capability_tokens WHERE tenant=? AND id=?",
                                  (tenant, token_id)).fetchone()
            if row is None:
                return None
            low, high = descendants_range(row[0])
            tx.conn.execute("UPDATE capability_tokens SET revoked_at = COALESCE(revoked_at, ?)"
                            " WHERE tenant=? AND lineage >= ? AND lineage < ?", (now, tenant, low, high))
            return _record(tx.conn.execute(_GET, (tenant, token_id)).fetchone())

        return await self._store.submit_internal(run)

    async def touch(self, token_ids: list[str], now: float) -> None:
        def run(tx) -> None:
            tx.conn.executemany("UPDATE capability_tokens SET last_used_at=? WHERE id=?", [(now, t) for t in token_ids])

        await self._store.submit_internal(run)
