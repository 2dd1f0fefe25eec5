"""Semantic sessions on SQLite: reads on the reader pool, writes on the writer's connection."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ...engine.sessions.model import EntityRow, MemoryRow, SessionRow
from .. import session_rows as rows

if TYPE_CHECKING:
    from .store import SQLiteStore

SQL = rows.sql("?")


class SQLiteSessions:
    """`store.sessions`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def get(self, tenant: str, session_id: str) -> SessionRow | None:
        found = await self._store.in_pool(SQL["get"], (tenant, session_id))
        return rows.session_of(found[0]) if found else None

    async def count(self) -> int:
        return (await self._store.in_pool(SQL["count"], ()))[0][0]

    async def list(self, tenant: str, kind: str) -> list[SessionRow]:
        return [rows.session_of(r) for r in await self._store.in_pool(SQL["list"], (tenant, kind))]

    async def page(self, tenant: str, kind: str, limit: int, before: tuple[float, str] | None = None) -> list[SessionRow]:
        if before is None:
            found = await self._store.in_pool(SQL["page"], (tenant, kind, limit))
        else:
            found = await self._store.in_pool(SQL["page_before"], (tenant, kind, before[0], before[0], before[1], limit))
        return [rows.session_of(r) for r in found]

    async def memories(self, tenant: str, session_id: str) -> list[MemoryRow]:
        return [rows.memory_of(r) for r in await self._store.in_pool(SQL["memories"], (tenant, session_id))]

    async def by_hash(self, tenant: str, session_id: str, memory_hash: str) -> list[MemoryRow]:
        return [rows.memory_of(r) for r in await self._store.in_pool(SQL["by_hash"], (tenant, session_id, memory_hash))]

    async def entities(self, tenant: str, session_id: str) -> list[EntityRow]:
        return [rows.entity_of(r) for r in await self._store.in_pool(SQL["entities"], (tenant, session_id))]

    async def snapshot(self, tenant: str, session_id: str) -> tuple[SessionRow | None, list[MemoryRow], list[EntityRow]]:
        """The session, its memories and entities from one read transaction."""
        def read(conn: sqlite3.Connection):
            conn.execute("BEGIN")
            try:
                s = conn.execute(SQL["get"], (tenant, session_id)).fetchall()
                if not s:
                    return None, [], []
                m = conn.execute(SQL["memories"], (tenant, session_id)).fetchall()
                e = conn.execute(SQL["entities"], (tenant, session_id)).fetchall()
                return rows.session_of(s[0]), [rows.memory_of(r) for r in m], [rows.entity_of(r) for r in e]
            finally:
                conn.execute("COMMIT")
        return await self._store.in_pool_do(read)


class SessionWrites:
    """`tx.sessions`: the sessions of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def get(self, session_id: str) -> SessionRow | None:
        r = self._conn.execute(SQL["get"], (self._tenant, session_id)).fetchone()
        return rows.session_of(r) if r else None

    def insert(self, row: SessionRow) -> None:
        if row.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may only write its own rows")
        self._conn.execute(SQL["insert"], rows.session_row(row))
        self._conn.execute(SQL["heads"], (self._tenant, row.session_id, row.heads, row.heads_checksum))

    def update(self, session_id: str, state: str | None, vector: bytes | None, checksum: str | None, heads: str,
               heads_checksum: str) -> None:
        """The heads row always; the state row (state, vector, checksum) unless `state` is None."""
        if state is not None:
            self._conn.execute(SQL["update"], (state, vector, checksum, self._tenant, session_id))
        self._conn.execute(SQL["heads"], (self._tenant, session_id, heads, heads_checksum))

    def delete(self, session_id: str) -> bool:
        gone = self._conn.execute(SQL["delete"], (self._tenant, session_id)).rowcount > 0
        self._conn.execute(SQL["delete_heads"], (self._tenant, session_id))
        self.clear_memories(session_id)
        self.clear_entities(session_id)
        return gone

    def list(self, kind: str) -> list[SessionRow]:
        return [rows.session_of(r) for r in self._conn.execute(SQL["list"], (self._tenant, kind))]

    def memories(self, session_id: str, after_rev: int = -1) -> list[MemoryRow]:
        return [rows.memory_of(r) for r in self._conn.execute(SQL["memories_after"], (self._tenant, session_id, after_rev))]

    def put_memories(self, memories: list[MemoryRow]) -> None:
        if any(m.tenant != self._tenant for m in memories):
            raise ValueError(f"a mutation of tenant {self._tenant!r} may only write its own rows")
        self._conn.executemany(SQL["put_memory"], [rows.memory_row(m) for m in memories])

    def memory_stats(self, session_id: str, stats: list[tuple[str, str, int, int, int]]) -> None:
        """(id, tier, access_count, last_access_turn, rev) of existing memories."""
        self._conn.executemany(SQL["stats"], [(t, a, lt, rev, self._tenant, session_id, i) for i, t, a, lt, rev in stats])

    def clear_memories(self, session_id: str) -> None:
        self._conn.execute(SQL["clear_memories"], (self._tenant, session_id))

    def entities(self, session_id: str) -> list[EntityRow]:
        return [rows.entity_of(r) for r in self._conn.execute(SQL["entities"], (self._tenant, session_id))]

    def put_entities(self, entities: list[EntityRow]) -> None:
        if any(e.tenant != self._tenant for e in entities):
            raise ValueError(f"a mutation of tenant {self._tenant!r} may only write its own rows")
        self._conn.executemany(SQL["put_entity"], [rows.entity_row(e) for e in entities])

    def delete_entity(self, session_id: str, key: str) -> bool:
        return self._conn.execute(SQL["delete_entity"], (self._tenant, session_id, key)).rowcount > 0

    def clear_entities(self, session_id: str) -> None:
        self._conn.execute(SQL["clear_entities"], (self._tenant, session_id))
