"""Episodes and memories on SQLite: reads on the reader pool, writes on the writer's connection (many rows
in one executemany, so no batch meets the bound-parameter limit)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ...engine.memory import Episode, MemoryRecord
from ...engine.memory.subjects import SubjectCount
from .. import memory_rows as rows
from . import memory_index

if TYPE_CHECKING:
    from .store import SQLiteStore

_INSERT_EPISODE = rows.insert_sql("episodes", rows.EPISODE_COLUMNS, "?")
_INSERT_MEMORY = rows.insert_sql("memories", rows.MEMORY_COLUMNS, "?")
_MARK_COMPILED = "UPDATE episodes SET last_compiled_at = ? WHERE tenant = ? AND id = ?"
_SUPERSEDE = ("UPDATE memories SET status = 'superseded', valid_to = ?, updated_at = ?"
              " WHERE tenant = ? AND id = ?")


class SQLiteMemory:
    """`store.memory`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def episodes(self, tenant: str, tenant_id: str | None, subject_id: str) -> list[Episode]:
        sql, params = rows.episodes_sql(tenant, tenant_id, subject_id, "?")
        return [rows.episode_of(r) for r in await self._store.in_pool(sql, tuple(params))]

    async def memories(self, tenant: str, tenant_id: str | None, subject_id: str,
                       status: str | None) -> list[MemoryRecord]:
        sql, params = rows.memories_sql(tenant, tenant_id, subject_id, status, "?")
        return [rows.memory_of(r) for r in await self._store.in_pool(sql, tuple(params))]

    async def timeline(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int, offset: int,
                       newest_first: bool) -> tuple[list[Episode], int, list[MemoryRecord], int]:
        def read(conn: sqlite3.Connection):
            conn.execute("BEGIN")  # one snapshot for both windows and their totals
            try:
                out = []
                for table, of in (("episodes", rows.episode_of), ("memories", rows.memory_of)):
                    sql, params = rows.window_sql(table, tenant, tenant_id, subject_id, limit, offset, newest_first, "?")
                    found = [of(r) for r in conn.execute(sql, params)]
                    sql, params = rows.count_sql(table, tenant, tenant_id, subject_id, "?")
                    out += [found[::-1] if newest_first else found, conn.execute(sql, params).fetchone()[0]]
            finally:
                conn.execute("COMMIT")
            return tuple(out)

        return await self._store.in_pool_do(read)

    async def subjects(self, tenant: str, tenant_id: str | None, limit: int,
                       offset: int) -> tuple[list[SubjectCount], int]:
        (page, page_params), (total, total_params) = rows.subjects_sql(tenant, tenant_id, limit, offset, "?")

        def read(conn: sqlite3.Connection):
            conn.execute("BEGIN")
            try:
                found = [SubjectCount(s, int(e), int(m)) for s, e, m in conn.execute(page, page_params)]
                return found, conn.execute(total, total_params).fetchone()[0]
            finally:
                conn.execute("COMMIT")

        return await self._store.in_pool_do(read)

    async def uncompiled(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        sql, params = rows.uncompiled_sql(tenant, tenant_id, subject_id, limit, "?")
        return [rows.episode_of(r) for r in await self._store.in_pool(sql, tuple(params))]


class MemoryWrites:
    """`tx.memory`: episodes and memories of one Stigmer tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def _check(self, records: list) -> None:
        if any(r.tenant != self._tenant for r in records):
            raise ValueError(f"a mutation of tenant {self._tenant!r} may only write its own rows")

    def insert_episodes(self, episodes: list[Episode]) -> None:
        self._check(episodes)
        self._conn.executemany(_INSERT_EPISODE, [rows.episode_row(e) for e in episodes])

    def uncompiled(self, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        sql, params = rows.uncompiled_sql(self._tenant, tenant_id, subject_id, limit, "?")
        return [rows.episode_of(r) for r in self._conn.execute(sql, params)]

    def mark_compiled(self, episode_ids: list[str], now: int) -> None:
        self._conn.executemany(_MARK_COMPILED, [(now, self._tenant, i) for i in episode_ids])

    def still_uncompiled(self, episode_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(episode_ids), 500):  # well inside SQLite's bound-parameter limit
            chunk = episode_ids[start:start + 500]
            sql, params = rows.still_uncompiled_sql(self._tenant, "?", f" IN ({', '.join('?' * len(chunk))})")
            found.update(r[0] for r in self._conn.execute(sql, [*params, *chunk]))
        return found

    def insert_memories(self, memories: list[MemoryRecord]) -> None:
        self._check(memories)
        self._conn.executemany(_INSERT_MEMORY, [rows.memory_row(m) for m in memories])
        memory_index.index(self._conn, self._tenant, memories)  # the search index, in the same transaction

    def newest_active(self, tenant_id: str | None, subject_id: str, limit: int) -> list[MemoryRecord]:
        sql, params = rows.newest_active_sql(self._tenant, tenant_id, subject_id, limit, "?")
        return [rows.memory_of(r) for r in self._conn.execute(sql, params)]

    def supersede(self, valid_to: dict[str, int], now: int) -> None:
        self._conn.executemany(_SUPERSEDE, [(to, now, self._tenant, i) for i, to in valid_to.items()])

    def delete_subject(self, tenant_id: str | None, subject_id: str) -> tuple[int, int]:
        counts = []
        for table in ("episodes", "memories"):
            sql, params = rows.delete_sql(table, self._tenant, tenant_id, subject_id, "?")
            counts.append(self._conn.execute(sql, params).rowcount)
        return counts[0], counts[1]
