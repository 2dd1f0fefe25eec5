"""Semantic sessions on PostgreSQL: reads on the pool, writes inside the writer's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.sessions.model import EntityRow, MemoryRow, SessionRow
from .. import session_rows as rows

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

SQL = rows.sql("%s")


class PostgresSessions:
    """`store.sessions`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, session_id: str) -> SessionRow | None:
        found = await self._store.fetch(SQL["get"], (tenant, session_id))
        return rows.session_of(found[0]) if found else None

    async def count(self) -> int:
        return (await self._store.fetch(SQL["count"]))[0][0]

    async def list(self, tenant: str, kind: str) -> list[SessionRow]:
        return [rows.session_of(r) for r in await self._store.fetch(SQL["list"], (tenant, kind))]

    async def page(self, tenant: str, kind: str, limit: int, before: tuple[float, str] | None = None) -> list[SessionRow]:
        if before is None:
            found = await self._store.fetch(SQL["page"], (tenant, kind, limit))
        else:
            found = await self._store.fetch(SQL["page_before"], (tenant, kind, before[0], before[0], before[1], limit))
        return [rows.session_of(r) for r in found]

    async def memories(self, tenant: str, session_id: str) -> list[MemoryRow]:
        return [rows.memory_of(r) for r in await self._store.fetch(SQL["memories"], (tenant, session_id))]

    async def by_hash(self, tenant: str, session_id: str, memory_hash: str) -> list[MemoryRow]:
        return [rows.memory_of(r) for r in await self._store.fetch(SQL["by_hash"], (tenant, session_id, memory_hash))]

    async def entities(self, tenant: str, session_id: str) -> list[EntityRow]:
        return [rows.entity_of(r) for r in await self._store.fetch(SQL["entities"], (tenant, session_id))]

    async def snapshot(self, tenant: str, session_id: str) -> tuple[SessionRow | None, list[MemoryRow], list[EntityRow]]:
        """The session, its memories and entities from one snapshot (a repeatable-read transaction)."""
        async def read(conn):
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                s = await (await conn.execute(SQL["get"], (tenant, session_id))).fetchall()
                if not s:
                    return None, [], []
                m = await (await conn.execute(SQL["memories"], (tenant, session_id))).fetchall()
                e = await (await conn.execute(SQL["entities"], (tenant, session_id))).fetchall()
                return rows.session_of(s[0]), [rows.memory_of(r) for r in m], [rows.entity_of(r) for r in e]
        return await self._store.run(read)


class SessionWritesPG:
    """`tx.sessions`: the sessions of one tenant's mutation."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def get(self, session_id: str) -> SessionRow | None:
        r = self._tx.cur.execute(SQL["get"], (self._tx.tenant, session_id)).fetchone()
        return rows.session_of(r) if r else None

    def insert(self, row: SessionRow) -> None:
        self._tx.check_tenant(row.tenant)
        self._tx.write(SQL["insert"], rows.session_row(row))
        self._tx.write(SQL["heads"], (self._tx.tenant, row.session_id, row.heads, row.heads_checksum))

    def update(self, session_id: str, state: str | None, vector: bytes | None, checksum: str | None, heads: str,
               heads_checksum: str) -> None:
        """The heads row always; the state row (state, vector, checksum) unless `state` is None."""
        if state is not None:
            self._tx.write(SQL["update"], (state, vector, checksum, self._tx.tenant, session_id))
        self._tx.write(SQL["heads"], (self._tx.tenant, session_id, heads, heads_checksum))

    def delete(self, session_id: str) -> bool:
        gone = self.get(session_id) is not None  # statements are pipelined: no rowcount (writer.py)
        self._tx.write(SQL["delete"], (self._tx.tenant, session_id))
        self._tx.write(SQL["delete_heads"], (self._tx.tenant, session_id))
        self.clear_memories(session_id)
        self.clear_entities(session_id)
        return gone

    def list(self, kind: str) -> list[SessionRow]:
        return [rows.session_of(r) for r in self._tx.cur.execute(SQL["list"], (self._tx.tenant, kind)).fetchall()]

    def memories(self, session_id: str, after_rev: int = -1) -> list[MemoryRow]:
        cur = self._tx.cur.execute(SQL["memories_after"], (self._tx.tenant, session_id, after_rev))
        return [rows.memory_of(r) for r in cur.fetchall()]

    def put_memories(self, memories: list[MemoryRow]) -> None:
        for m in memories:
            self._tx.check_tenant(m.tenant)
        if memories:
            for m in memories:
                self._tx.write(SQL["put_memory"], rows.memory_row(m))

    def memory_stats(self, session_id: str, stats: list[tuple[str, str, int, int, int]]) -> None:
        if stats:
            t = self._tx.tenant
            for i, tier, a, lt, rev in stats:
                self._tx.write(SQL["stats"], (tier, a, lt, rev, t, session_id, i))

    def clear_memories(self, session_id: str) -> None:
        self._tx.write(SQL["clear_memories"], (self._tx.tenant, session_id))

    def entities(self, session_id: str) -> list[EntityRow]:
        return [rows.entity_of(r) for r in self._tx.cur.execute(SQL["entities"], (self._tx.tenant, session_id)).fetchall()]

    def put_entities(self, entities: list[EntityRow]) -> None:
        for e in entities:
            self._tx.check_tenant(e.tenant)
        if entities:
            for e in entities:
                self._tx.write(SQL["put_entity"], rows.entity_row(e))

    def delete_entity(self, session_id: str, key: str) -> bool:
        if self._tx.cur.execute(SQL["has_entity"], (self._tx.tenant, session_id, key)).fetchone() is None:
            return False
        self._tx.write(SQL["delete_entity"], (self._tx.tenant, session_id, key))
        return True

    def clear_entities(self, session_id: str) -> None:
        self._tx.write(SQL["clear_entities"], (self._tx.tenant, session_id))
