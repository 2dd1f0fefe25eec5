"""Tenants and API keys on SQLite: point reads inline, writes through the writer thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import KeyRecord

if TYPE_CHECKING:
    from .store import SQLiteStore

_COLUMNS = "id, digest, tenant, name, scopes, prefixes, created_at, expires_at, last_used_at, revoked_at"


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()


def _record(row: tuple) -> KeyRecord:
    id_, digest, tenant, name, scopes, prefixes, *times = row
    return KeyRecord(id_, bytes(digest), tenant, name, _split(scopes), _split(prefixes), *times)


class SQLiteKeys:
    def __init__(self, store: "SQLiteStore"):
        self._store = store
        self._seen_any = False  # once a key exists it always will (revoked keys stay)

    async def any(self) -> bool:
        if not self._seen_any:
            self._seen_any = self._store.read_conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys)").fetchone()[0] == 1
        return self._seen_any

    async def by_digest(self, digest: bytes) -> KeyRecord | None:
        row = self._store.read_conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE digest=?", (digest,)).fetchone()
        return None if row is None else _record(row)

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        where, params = ("WHERE tenant=?", (tenant,)) if tenant is not None else ("", ())
        rows = await self._store.in_pool(f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_at, id", params)
        return [_record(r) for r in rows]

    async def create(self, r: KeyRecord) -> KeyRecord:
        def run(tx) -> KeyRecord:
            tx.conn.execute("INSERT OR IGNORE INTO tenants (id, created_at) VALUES (?, ?)", (r.tenant, r.created_at))
            tx.conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (r.id, r.digest, r.tenant, r.name, "\n".join(r.scopes), "\n".join(r.prefixes), r.created_at,
                 r.expires_at, r.last_used_at, r.revoked_at))
            return r

        return await self._store.submit_internal(run)

    async def revoke(self, key_id: str, tenant: str | None, now: float) -> KeyRecord | None:
        def run(tx) -> KeyRecord | None:
            where, params = ("id=? AND tenant=?", (key_id, tenant)) if tenant is not None else ("id=?", (key_id,))
            tx.conn.execute(f"UPDATE api_keys SET revoked_at=? WHERE {where} AND revoked_at IS NULL", (now, *params))
            row = tx.conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE {where}", params).fetchone()
            return None if row is None else _record(row)

        return await self._store.submit_internal(run)

    async def touch(self, key_ids: list[str], now: float) -> None:
        def run(tx) -> None:
            tx.conn.executemany("UPDATE api_keys SET last_used_at=? WHERE id=?", [(now, k) for k in key_ids])

        await self._store.submit_internal(run)

    async def tenants(self) -> list[str]:
        rows = await self._store.in_pool("SELECT id FROM tenants ORDER BY id", ())
        return [r[0] for r in rows]


def keys_exist(data_dir: str) -> bool:
    """Whether the database in `data_dir` holds any API key, read without starting a store."""
    import os
    import sqlite3

    from .store import DB_FILE

    path = os.path.join(data_dir, DB_FILE)
    if not os.path.exists(path):
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys)").fetchone()[0] == 1
    except sqlite3.OperationalError:  # a database from before keys existed
        return False
    finally:
        conn.close()
