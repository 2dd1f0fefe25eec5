"""Episodes and memories on PostgreSQL: reads on the pool, writes inside the writer's transaction. Many rows
go in one statement of array parameters (unnest), so no batch meets the bound-parameter limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.memory import Episode, MemoryRecord
from ...engine.memory.subjects import SubjectCount
from .. import memory_rows as rows
from . import memory_index

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG


def _insert_many(table: str, columns: tuple[str, ...], types: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest("
            + ", ".join(f"%s::{t}[]" for t in types) + ")")


_INSERT_EPISODES = _insert_many("episodes", rows.EPISODE_COLUMNS, (
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "bigint", "bigint"))
_INSERT_MEMORIES = _insert_many("memories", rows.MEMORY_COLUMNS, (
    "text", "text", "text", "text", "text", "text", "text", "double precision", "bigint", "bigint", "text", "text",
    "text", "bigint", "bigint"))
_MARK_COMPILED = "UPDATE episodes SET last_compiled_at = %s WHERE tenant = %s AND id = ANY(%s::text[])"
_SUPERSEDE = ("UPDATE memories m SET status = 'superseded', valid_to = c.valid_to, updated_at = %s"
              " FROM unnest(%s::text[], %s::bigint[]) AS c(id, valid_to) WHERE m.tenant = %s AND m.id = c.id")


def _columns(records: list[tuple]) -> tuple:
    return tuple(list(column) for column in zip(*records))


class PostgresMemory:
    """`store.memory`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def episodes(self, tenant: str, tenant_id: str | None, subject_id: str) -> list[Episode]:
        sql, params = rows.episodes_sql(tenant, tenant_id, subject_id, "%s")
        return [rows.episode_of(r) for r in await self._store.fetch(sql, tuple(params))]

    async def memories(self, tenant: str, tenant_id: str | None, subject_id: str,
                       status: str | None) -> list[MemoryRecord]:
        sql, params = rows.memories_sql(tenant, tenant_id, subject_id, status, "%s")
        return [rows.memory_of(r) for r in await self._store.fetch(sql, tuple(params))]

    async def timeline(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int, offset: int,
                       newest_first: bool) -> tuple[list[Episode], int, list[MemoryRecord], int]:
        async def read(conn):
            out: list = []
            async with conn.transaction():  # one snapshot for both windows and their totals
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur = conn.cursor()
                for table, of in (("episodes", rows.episode_of), ("memories", rows.memory_of)):
                    sql, params = rows.window_sql(table, tenant, tenant_id, subject_id, limit, offset, newest_first,
                                                  "%s")
                    await cur.execute(sql, params)
                    found = [of(r) for r in await cur.fetchall()]
                    sql, params = rows.count_sql(table, tenant, tenant_id, subject_id, "%s")
                    await cur.execute(sql, params)
                    out += [found[::-1] if newest_first else found, (await cur.fetchone())[0]]
            return tuple(out)

        return await self._store.run(read)

    async def subjects(self, tenant: str, tenant_id: str | None, limit: int,
                       offset: int) -> tuple[list[SubjectCount], int]:
        (page, page_params), (total, total_params) = rows.subjects_sql(tenant, tenant_id, limit, offset, "%s",
                                                                       collate=' COLLATE "C"')

        async def read(conn):
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur = conn.cursor()
                await cur.execute(page, page_params)
                found = [SubjectCount(s, int(e), int(m)) for s, e, m in await cur.fetchall()]
                await cur.execute(total, total_params)
                return found, (await cur.fetchone())[0]

        return await self._store.run(read)

    async def uncompiled(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        sql, params = rows.uncompiled_sql(tenant, tenant_id, subject_id, limit, "%s")
        return [rows.episode_of(r) for r in await self._store.fetch(sql, tuple(params))]


class MemoryWritesPG:
    """`tx.memory`: episodes and memories of one Stigmer tenant's mutation."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def insert_episodes(self, episodes: list[Episode]) -> None:
        for e in episodes:
            self._tx.check_tenant(e.tenant)
        if episodes:
            self._tx.write(_INSERT_EPISODES, _columns([rows.episode_row(e) for e in episodes]))

    def uncompiled(self, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        sql, params = rows.uncompiled_sql(self._tx.tenant, tenant_id, subject_id, limit, "%s")
        return [rows.episode_of(r) for r in self._tx.cur.execute(sql, params).fetchall()]

    def mark_compiled(self, episode_ids: list[str], now: int) -> None:
        if episode_ids:
            self._tx.write(_MARK_COMPILED, (now, self._tx.tenant, episode_ids))

    def still_uncompiled(self, episode_ids: list[str]) -> set[str]:
        if not episode_ids:
            return set()
        sql, params = rows.still_uncompiled_sql(self._tx.tenant, "%s", " = ANY(%s::text[])")
        return {r[0] for r in self._tx.cur.execute(sql, [*params, episode_ids]).fetchall()}

    def insert_memories(self, memories: list[MemoryRecord]) -> None:
        for m in memories:
            self._tx.check_tenant(m.tenant)
        if memories:
            self._tx.write(_INSERT_MEMORIES, _columns([rows.memory_row(m) for m in memories]))
            memory_index.index(self._tx, memories)  # the search index, in the same transaction

    def newest_active(self, tenant_id: str | None, subject_id: str, limit: int) -> list[MemoryRecord]:
        sql, params = rows.newest_active_sql(self._tx.tenant, tenant_id, subject_id, limit, "%s")
        return [rows.memory_of(r) for r in self._tx.cur.execute(sql, params).fetchall()]

    def supersede(self, valid_to: dict[str, int], now: int) -> None:
        if valid_to:
            self._tx.write(_SUPERSEDE, (now, list(valid_to), list(valid_to.values()), self._tx.tenant))

    def delete_subject(self, tenant_id: str | None, subject_id: str) -> tuple[int, int]:
        counts = []
        for table in ("episodes", "memories"):
            sql, params = rows.delete_sql(table, self._tx.tenant, tenant_id, subject_id, "%s")
            # Counted in SQL: the writer's statements may be pipelined, where rowcount is not known.
            self._tx.write(f"WITH gone AS ({sql} RETURNING 1) SELECT count(*) FROM gone", tuple(params))
            counts.append(self._tx.cur.fetchone()[0])
        return counts[0], counts[1]
