"""The Statewave support layer and admin on PostgreSQL: resolutions, health-state records and the reads the
support figures and the admin endpoints need. Reads that belong together run in one REPEATABLE READ
transaction (one snapshot); writes run inside the writer's transaction, under the tenant's lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.jobs import Job
from ...engine.memory import Episode, MemoryRecord
from ...engine.memory.resolutions import Resolution
from .. import memory_rows
from .. import support_rows as rows
from ..job_rows import COLUMNS as JOB_COLUMNS, job_of

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

_INSERT_RESOLUTION = rows.insert_resolution_sql("%s")
_UPDATE_RESOLUTION = rows.update_resolution_sql("%s")
_INSERT_HEALTH = rows.health_insert_sql("%s")


def _payload(name: str) -> str:
    return f"(payload::jsonb ->> '{name}')"


async def _snapshot(conn, statements: list[tuple[str, list]]) -> list[list[tuple]]:
    async with conn.transaction():
        cur = conn.cursor()
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        results = []
        for sql, params in statements:
            await cur.execute(sql, params)
            results.append(await cur.fetchall())
        return results


class PostgresSupport:
    """`store.support`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def resolutions(self, tenant: str, tenant_id: str | None, subject_id: str, status: str | None,
                          limit: int, offset: int) -> list[Resolution]:
        sql, params = rows.resolutions_sql(tenant, tenant_id, subject_id, status, limit, offset, "%s")
        return [rows.resolution_of(r) for r in await self._store.fetch(sql, tuple(params))]

    async def sla_inputs(self, tenant: str, tenant_id: str | None, subject_id: str, episodes: int,
                         resolutions: int) -> tuple[list[Episode], list[Resolution]]:
        statements = [rows.episode_window_sql(tenant, tenant_id, subject_id, episodes, "%s"),
                      rows.resolutions_sql(tenant, tenant_id, subject_id, None, resolutions, 0, "%s")]
        window, recent = await self._store.run(lambda conn: _snapshot(conn, statements))
        return [memory_rows.episode_of(r) for r in window], [rows.resolution_of(r) for r in recent]

    async def compile_jobs(self, tenant: str, kind: str, status: str | None, subject_id: str | None,
                           tenant_id: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        where, params = rows.compile_jobs_where(tenant, kind, status, subject_id, tenant_id, _payload, "%s")
        statements = [(f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY created_at DESC, id DESC"
                       " LIMIT %s OFFSET %s", [*params, limit, offset]),
                      (f"SELECT count(*) FROM jobs{where}", params)]
        page, total = await self._store.run(lambda conn: _snapshot(conn, statements))
        return [job_of(r) for r in page], total[0][0]

    async def export(self, tenant: str, tenant_id: str | None, subject_id: str) -> tuple[list[Episode],
                                                                                      list[MemoryRecord]]:
        statements = rows.export_sql(tenant, tenant_id, subject_id, "%s")
        episodes, memories = await self._store.run(lambda conn: _snapshot(conn, statements))
        return [memory_rows.episode_of(r) for r in episodes], [memory_rows.memory_of(r) for r in memories]

    async def null_tenant_rows(self, tenant: str, kind: str) -> tuple[int, int, int]:
        sql, params = rows.null_tenant_sql(kind, tenant, _payload, "%s")
        return tuple((await self._store.fetch(sql, tuple(params)))[0])  # type: ignore[return-value]


class SupportWritesPG:
    """`tx.support`: resolutions and health-state records of the transaction's tenant, and the reads a
    mutation makes before it decides."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def _all(self, sql: str, params: list) -> list[tuple]:
        return self._tx.cur.execute(sql, params).fetchall()

    def resolution(self, tenant_id: str | None, subject_id: str, session_id: str) -> Resolution | None:
        found = self._all(*rows.resolution_sql(self._tx.tenant, tenant_id, subject_id, session_id, "%s"))
        return rows.resolution_of(found[0]) if found else None

    def resolutions(self, tenant_id: str | None, subject_id: str, status: str | None, limit: int,
                    offset: int) -> list[Resolution]:
        sql, params = rows.resolutions_sql(self._tx.tenant, tenant_id, subject_id, status, limit, offset, "%s")
        return [rows.resolution_of(r) for r in self._all(sql, params)]

    def insert_resolution(self, r: Resolution) -> None:
        self._tx.check_tenant(r.tenant)
        self._tx.write(_INSERT_RESOLUTION, rows.resolution_row(r))

    def update_resolution(self, r: Resolution) -> None:
        self._tx.write(_UPDATE_RESOLUTION, rows.update_resolution_params(r))

    def episode_window(self, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        sql, params = rows.episode_window_sql(self._tx.tenant, tenant_id, subject_id, limit, "%s")
        return [memory_rows.episode_of(r) for r in self._all(sql, params)]

    def facts(self, tenant_id: str | None, subject_id: str, limit: int) -> list[MemoryRecord]:
        sql, params = rows.facts_sql(self._tx.tenant, tenant_id, subject_id, limit, "%s")
        return [memory_rows.memory_of(r) for r in self._all(sql, params)]

    def health_state(self, tenant_id: str | None, subject_id: str) -> str | None:
        found = self._all(*rows.health_get_sql(self._tx.tenant, tenant_id, subject_id, "%s"))
        return found[0][0] if found else None

    def put_health_state(self, tenant_id: str | None, subject_id: str, state: str, score: int, now: int,
                         exists: bool) -> None:
        tx = self._tx
        if exists:
            tx.write(*_tuple(rows.health_update_sql(tx.tenant, tenant_id, subject_id, state, score, now, "%s")))
        else:
            tx.write(_INSERT_HEALTH, (tx.tenant, tenant_id, subject_id, state, score, now))

    def delete_subject(self, tenant_id: str | None, subject_id: str) -> int:
        tx = self._tx  # counted by the statement itself: in pipeline mode a cursor's rowcount is not known yet
        tx.write(*_tuple(rows.delete_sql("health_states", tx.tenant, tenant_id, subject_id, "%s")))
        sql, params = rows.delete_sql("resolutions", tx.tenant, tenant_id, subject_id, "%s")
        tx.write(f"WITH gone AS ({sql} RETURNING 1) SELECT count(*) FROM gone", tuple(params))
        return tx.cur.fetchone()[0]  # type: ignore[index]

    def existing_ids(self, table: str, ids: list[str]) -> int:
        """How many of `ids` the Stigmer tenant's `episodes` or `memories` already hold (import, §5.17)."""
        if table not in ("episodes", "memories"):
            raise ValueError(table)
        return self._all(f"SELECT count(*) FROM {table} WHERE tenant = %s AND id = ANY(%s::text[])",
                         [self._tx.tenant, ids])[0][0]


def _tuple(statement: tuple[str, list]) -> tuple[str, tuple]:
    return statement[0], tuple(statement[1])
