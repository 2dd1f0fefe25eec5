"""Jobs on SQLite: reads on the read connection and the reader pool; enqueueing inside the mutation that
makes the job (`tx.jobs`); claims, renewals and outcomes as store-internal writes of the single writer,
which makes each one atomic (no two claims ever take one job)."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from ...engine.jobs import Job
from ..job_rows import ABANDONED, COLUMNS, DUE, LEASE_RAN_OUT, PENDING_COUNT, UNFINISHED, job_of, job_row
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

_KINDS = "(SELECT value FROM json_each(?))"  # a JSON array of kinds, one parameter
_GET = f"SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND id = ?"
_INSERT = f"INSERT INTO jobs ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_CLAIM = (
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?, claimed_until = ?, claim = ?"
    f" WHERE (tenant, id) IN (SELECT tenant, id FROM jobs WHERE {DUE.format(now='?', kinds=_KINDS, retrying=_KINDS)}"
    f" ORDER BY created_at, tenant, id LIMIT ?) RETURNING {COLUMNS}"
)
_ABANDON = (
    "UPDATE jobs SET status = 'failed', completed_at = ?, claim = NULL, claimed_until = NULL,"
    f" error = CASE WHEN kind IN {_KINDS} THEN ? ELSE {LEASE_RAN_OUT} END"
    f" WHERE {ABANDONED.format(now='?', kinds=_KINDS)}"
)
_RENEW = "UPDATE jobs SET claimed_until = ? WHERE tenant = ? AND id = ? AND claim = ? AND status = 'running'"
_FINISH = (
    "UPDATE jobs SET status = ?, result = ?, error = ?, completed_at = ?, claim = NULL, claimed_until = NULL"
    " WHERE tenant = ? AND id = ? AND claim = ? AND status = 'running'"
)
_PURGE = ("DELETE FROM jobs WHERE (tenant, id) IN (SELECT tenant, id FROM jobs"
          " WHERE status IN ('completed', 'failed') AND created_at < ? LIMIT ?)")
PURGE_BATCH = 1000
_RUNNING_SINCE = f"SELECT count(*) FROM jobs WHERE {UNFINISHED} AND status = 'running' AND started_at < ?"


def _filters(tenant: str, status: str | None, kind: str | None) -> tuple[str, tuple]:
    where, params = "tenant = ?", [tenant]
    if status is not None:
        where += " AND status = ?"
        params.append(status)
    if kind is not None:
        where += " AND kind = ?"
        params.append(kind)
    return where, tuple(params)


def _json_list(items: list[str]) -> str:
    return json.dumps(items)


class SQLiteJobs:
    """`store.jobs`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def get(self, tenant: str, job_id: str) -> Job | None:
        try:
            row = self._store.read_conn.execute(_GET, (tenant, job_id)).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None
        return None if row is None else job_of(row)

    async def list(self, tenant: str, status: str | None, kind: str | None, limit: int,
                   offset: int) -> tuple[list[Job], int]:
        where, params = _filters(tenant, status, kind)

        def both(conn: sqlite3.Connection) -> tuple[list[Job], int]:
            conn.execute("BEGIN")  # one snapshot for the page and the total
            try:
                rows = conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC"
                                    " LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
                total = conn.execute(f"SELECT count(*) FROM jobs WHERE {where}", params).fetchone()[0]
            finally:
                conn.execute("COMMIT")
            return [job_of(r) for r in rows], total

        return await self._store.in_pool_do(both)

    async def claim(self, kinds: list[str], retrying: list[str], now: float, until: float, token: str,
                    limit: int) -> list[Job]:
        params = (now, until, token, _json_list(kinds), now, _json_list(retrying), limit)
        rows = await self._store.submit_internal(lambda tx: tx.conn.execute(_CLAIM, params).fetchall())
        return sorted((job_of(r) for r in rows), key=lambda j: (j.created_at, j.tenant, j.id))

    async def abandon(self, now: float, failing: list[str], error: str) -> int:
        params = (now, _json_list(failing), error, now, _json_list(failing))
        return await self._store.submit_internal(lambda tx: tx.conn.execute(_ABANDON, params).rowcount)

    async def renew(self, tenant: str, job_id: str, token: str, until: float) -> bool:
        params = (until, tenant, job_id, token)
        return await self._store.submit_internal(lambda tx: tx.conn.execute(_RENEW, params).rowcount == 1)

    async def finish(self, tenant: str, job_id: str, token: str, status: str, result: str | None,
                     error: str | None, now: float) -> bool:
        params = (status, result, error, now, tenant, job_id, token)
        return await self._store.submit_internal(lambda tx: tx.conn.execute(_FINISH, params).rowcount == 1)

    async def count_running(self, started_before: float) -> int:
        rows = await self._store.in_pool(_RUNNING_SINCE, (started_before,))
        return rows[0][0]

    async def count_pending(self) -> int:
        return (await self._store.in_pool(PENDING_COUNT, ()))[0][0]

    async def purge(self, before: float) -> int:
        total = 0
        while True:
            n = await self._store.submit_internal(lambda tx: tx.conn.execute(_PURGE, (before, PURGE_BATCH)).rowcount)
            total += n
            if n < PURGE_BATCH:
                return total


class JobWrites:
    """`tx.jobs`: the jobs of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def exists(self, job_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM jobs WHERE tenant = ? AND id = ?",
                                  (self._tenant, job_id)).fetchone() is not None

    def insert(self, job: Job) -> None:
        if job.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may not write tenant {job.tenant!r}")
        self._conn.execute(_INSERT, job_row(job))

    def of_kind(self, kind: str) -> list[Job]:
        """The transaction's tenant's jobs of `kind` (a subject delete picks its compile jobs among them)."""
        return [job_of(r) for r in self._conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND kind = ?",
                                                      (self._tenant, kind))]

    def delete(self, job_ids: list[str]) -> int:
        return sum(self._conn.execute("DELETE FROM jobs WHERE tenant = ? AND id = ?", (self._tenant, i)).rowcount
                   for i in job_ids)
