"""The Statewave support layer and admin on SQLite: resolutions, health-state records and the reads the
support figures and the admin endpoints need. Reads run on the reader pool (several in one read
transaction, so they share a snapshot); writes on the writer's connection inside the mutation."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from ...engine.jobs import Job
from ...engine.memory import Episode, MemoryRecord
from ...engine.memory.resolutions import Resolution
from .. import memory_rows
from .. import support_rows as rows
from ..job_rows import COLUMNS as JOB_COLUMNS, job_of

if TYPE_CHECKING:
    from .store import SQLiteStore

_INSERT_RESOLUTION = rows.insert_resolution_sql("?")
_UPDATE_RESOLUTION = rows.update_resolution_sql("?")
_INSERT_HEALTH = rows.health_insert_sql("?")
_IDS = "(SELECT value FROM json_each(?))"  # a JSON array of ids, one parameter


def _payload(name: str) -> str:
    return f"json_extract(payload, '$.{name}')"


def _snapshot(conn: sqlite3.Connection, work):
    conn.execute("BEGIN")  # one read transaction: every statement sees one snapshot
    try:
        return work()
    finally:
        conn.execute("COMMIT")


def _window(conn, tenant, tenant_id, subject_id, limit) -> list[Episode]:
    sql, params = rows.episode_window_sql(tenant, tenant_id, subject_id, limit, "?")
    return [memory_rows.episode_of(r) for r in conn.execute(sql, params)]


def _resolutions(conn, tenant, tenant_id, subject_id, status, limit, offset) -> list[Resolution]:
    sql, params = rows.resolutions_sql(tenant, tenant_id, subject_id, status, limit, offset, "?")
    return [rows.resolution_of(r) for r in conn.execute(sql, params)]


class SQLiteSupport:
    """`store.support`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def resolutions(self, tenant: str, tenant_id: str | None, subject_id: str, status: str | None,
                          limit: int, offset: int) -> list[Resolution]:
        return await self._store.in_pool_do(
            lambda conn: _resolutions(conn, tenant, tenant_id, subject_id, status, limit, offset))

    async def sla_inputs(self, tenant: str, tenant_id: str | None, subject_id: str, episodes: int,
                         resolutions: int) -> tuple[list[Episode], list[Resolution]]:
        def both(conn):
            return _snapshot(conn, lambda: (_window(conn, tenant, tenant_id, subject_id, episodes),
                                            _resolutions(conn, tenant, tenant_id, subject_id, None, resolutions, 0)))

        return await self._store.in_pool_do(both)

    async def compile_jobs(self, tenant: str, kind: str, status: str | None, subject_id: str | None,
                           tenant_id: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        where, params = rows.compile_jobs_where(tenant, kind, status, subject_id, tenant_id, _payload, "?")

        def both(conn):
            return _snapshot(conn, lambda: (
                [job_of(r) for r in conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs{where}"
                                                 " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                                                 (*params, limit, offset))],
                conn.execute(f"SELECT count(*) FROM jobs{where}", params).fetchone()[0]))

        return await self._store.in_pool_do(both)

    async def export(self, tenant: str, tenant_id: str | None, subject_id: str) -> tuple[list[Episode],
                                                                                      list[MemoryRecord]]:
        (esql, eparams), (msql, mparams) = rows.export_sql(tenant, tenant_id, subject_id, "?")

        def both(conn):
            return _snapshot(conn, lambda: ([memory_rows.episode_of(r) for r in conn.execute(esql, eparams)],
                                            [memory_rows.memory_of(r) for r in conn.execute(msql, mparams)]))

        return await self._store.in_pool_do(both)

    async def null_tenant_rows(self, tenant: str, kind: str) -> tuple[int, int, int]:
        sql, params = rows.null_tenant_sql(kind, tenant, _payload, "?")
        return tuple((await self._store.in_pool(sql, tuple(params)))[0])  # type: ignore[return-value]


class SupportWrites:
    """`tx.support`: resolutions and health-state records of one Stigmer tenant's mutation, and the reads
    a mutation makes before it decides."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def resolution(self, tenant_id: str | None, subject_id: str, session_id: str) -> Resolution | None:
        sql, params = rows.resolution_sql(self._tenant, tenant_id, subject_id, session_id, "?")
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else rows.resolution_of(row)

    def resolutions(self, tenant_id: str | None, subject_id: str, status: str | None, limit: int,
                    offset: int) -> list[Resolution]:
        return _resolutions(self._conn, self._tenant, tenant_id, subject_id, status, limit, offset)

    def insert_resolution(self, r: Resolution) -> None:
        if r.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may only write its own rows")
        self._conn.execute(_INSERT_RESOLUTION, rows.resolution_row(r))

    def update_resolution(self, r: Resolution) -> None:
        self._conn.execute(_UPDATE_RESOLUTION, rows.update_resolution_params(r))

    def episode_window(self, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        return _window(self._conn, self._tenant, tenant_id, subject_id, limit)

    def facts(self, tenant_id: str | None, subject_id: str, limit: int) -> list[MemoryRecord]:
        sql, params = rows.facts_sql(self._tenant, tenant_id, subject_id, limit, "?")
        return [memory_rows.memory_of(r) for r in self._conn.execute(sql, params)]

    def health_state(self, tenant_id: str | None, subject_id: str) -> str | None:
        sql, params = rows.health_get_sql(self._tenant, tenant_id, subject_id, "?")
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def put_health_state(self, tenant_id: str | None, subject_id: str, state: str, score: int, now: int,
                         exists: bool) -> None:
        if exists:
            self._conn.execute(*rows.health_update_sql(self._tenant, tenant_id, subject_id, state, score, now, "?"))
        else:
            self._conn.execute(_INSERT_HEALTH, (self._tenant, tenant_id, subject_id, state, score, now))

    def delete_subject(self, tenant_id: str | None, subject_id: str) -> int:
        sql, params = rows.delete_sql("health_states", self._tenant, tenant_id, subject_id, "?")
        self._conn.execute(sql, params)
        sql, params = rows.delete_sql("resolutions", self._tenant, tenant_id, subject_id, "?")
        return self._conn.execute(sql, params).rowcount

    def existing_ids(self, table: str, ids: list[str]) -> int:
        """How many of `ids` the Stigmer tenant's `episodes` or `memories` already hold (import, §5.17)."""
        if table not in ("episodes", "memories"):
            raise ValueError(table)
        return self._conn.execute(f"SELECT count(*) FROM {table} WHERE tenant = ? AND id IN {_IDS}",
                                  (self._tenant, json.dumps(ids))).fetchone()[0]
