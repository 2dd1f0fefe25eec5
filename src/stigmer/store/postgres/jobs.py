"""Jobs on PostgreSQL: reads on the pool; enqueueing inside the mutation that makes the job (`tx.jobs`);
claims, renewals and outcomes as single statements on the pool. A claim takes due rows `FOR UPDATE SKIP
LOCKED`, so replicas claiming at once each get other jobs and none waits on another; a renewal or an
outcome holds only while the row still carries the claim's token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.jobs import Job
from ..job_rows import ABANDONED, COLUMNS, DUE, LEASE_RAN_OUT, PENDING_COUNT, UNFINISHED, job_of, job_row

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

_KINDS = "(SELECT unnest(%s::text[]))"
_RUNNING_SINCE = f"SELECT count(*) FROM jobs WHERE {UNFINISHED} AND status = 'running' AND started_at < %s"
_GET = f"SELECT {COLUMNS} FROM jobs WHERE tenant = %s AND id = %s"
_INSERT = f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join(['%s'] * 14)})"
_CLAIM = (
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = %s, claimed_until = %s, claim = %s"
    f" WHERE (tenant, id) IN (SELECT tenant, id FROM jobs WHERE {DUE.format(now='%s', kinds=_KINDS, retrying=_KINDS)}"
    f" ORDER BY created_at, tenant, id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}"
)
_ABANDON = (
    "UPDATE jobs SET status = 'failed', completed_at = %s, claim = NULL, claimed_until = NULL,"
    f" error = CASE WHEN kind IN {_KINDS} THEN %s ELSE {LEASE_RAN_OUT} END"
    f" WHERE (tenant, id) IN (SELECT tenant, id FROM jobs WHERE {ABANDONED.format(now='%s', kinds=_KINDS)}"
    " FOR UPDATE SKIP LOCKED)"
)
_RENEW = "UPDATE jobs SET claimed_until = %s WHERE tenant = %s AND id = %s AND claim = %s AND status = 'running'"
_FINISH = (
    "UPDATE jobs SET status = %s, result = %s, error = %s, completed_at = %s, claim = NULL, claimed_until = NULL"
    " WHERE tenant = %s AND id = %s AND claim = %s AND status = 'running'"
)
_PURGE = ("DELETE FROM jobs WHERE (tenant, id) IN (SELECT tenant, id FROM jobs"
          " WHERE status IN ('completed', 'failed') AND created_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)")
PURGE_BATCH = 1000


def _filters(tenant: str, status: str | None, kind: str | None) -> tuple[str, tuple]:
    where, params = "tenant = %s", [tenant]
    if status is not None:
        where += " AND status = %s"
        params.append(status)
    if kind is not None:
        where += " AND kind = %s"
        params.append(kind)
    return where, tuple(params)


class PostgresJobs:
    """`store.jobs`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, job_id: str) -> Job | None:
        rows = await self._store.fetch(_GET, (tenant, job_id))
        return job_of(rows[0]) if rows else None

    async def list(self, tenant: str, status: str | None, kind: str | None, limit: int,
                   offset: int) -> tuple[list[Job], int]:
        where, params = _filters(tenant, status, kind)

        async def both(conn) -> tuple[list[Job], int]:
            async with conn.transaction():  # one snapshot for the page and the total
                cur = conn.cursor()
                await cur.execute(f"SELECT {COLUMNS} FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC"
                                  " LIMIT %s OFFSET %s", (*params, limit, offset))
                rows = await cur.fetchall()
                await cur.execute(f"SELECT count(*) FROM jobs WHERE {where}", params)
                total = (await cur.fetchone())[0]
            return [job_of(r) for r in rows], total

        return await self._store.run(both)

    async def _update(self, sql: str, params: tuple) -> int:
        async def run(conn) -> int:
            return (await conn.execute(sql, params)).rowcount

        return await self._store.run(run)

    async def claim(self, kinds: list[str], retrying: list[str], now: float, until: float, token: str,
                    limit: int) -> list[Job]:
        rows = await self._store.fetch(_CLAIM, (now, until, token, kinds, now, retrying, limit))
        return sorted((job_of(r) for r in rows), key=lambda j: (j.created_at, j.tenant, j.id))

    async def abandon(self, now: float, failing: list[str], error: str) -> int:
        return await self._update(_ABANDON, (now, failing, error, now, failing))

    async def renew(self, tenant: str, job_id: str, token: str, until: float) -> bool:
        return await self._update(_RENEW, (until, tenant, job_id, token)) == 1

    async def finish(self, tenant: str, job_id: str, token: str, status: str, result: str | None,
                     error: str | None, now: float) -> bool:
        return await self._update(_FINISH, (status, result, error, now, tenant, job_id, token)) == 1

    async def count_running(self, started_before: float) -> int:
        return (await self._store.fetch(_RUNNING_SINCE, (started_before,)))[0][0]

    async def count_pending(self) -> int:
        return (await self._store.fetch(PENDING_COUNT))[0][0]

    async def purge(self, before: float) -> int:
        total = 0
        while True:
            n = await self._update(_PURGE, (before, PURGE_BATCH))
            total += n
            if n < PURGE_BATCH:
                return total


class JobWritesPG:
    """`tx.jobs`: the jobs of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def exists(self, job_id: str) -> bool:
        tx = self._tx
        return tx.cur.execute("SELECT 1 FROM jobs WHERE tenant = %s AND id = %s", (tx.tenant, job_id)).fetchone() is not None

    def insert(self, job: Job) -> None:
        tx = self._tx
        tx.check_tenant(job.tenant)
        tx.write(_INSERT, job_row(job))

    def of_kind(self, kind: str) -> list[Job]:
        """The transaction's tenant's jobs of `kind` (a subject delete picks its compile jobs among them)."""
        tx = self._tx
        return [job_of(r) for r in tx.cur.execute(f"SELECT {COLUMNS} FROM jobs WHERE tenant = %s AND kind = %s",
                                                  (tx.tenant, kind)).fetchall()]

    def delete(self, job_ids: list[str]) -> int:
        if not job_ids:
            return 0
        tx = self._tx
        tx.write("WITH gone AS (DELETE FROM jobs WHERE tenant = %s AND id = ANY(%s::text[]) RETURNING 1)"
                 " SELECT count(*) FROM gone", (tx.tenant, list(job_ids)))
        return tx.cur.fetchone()[0]
