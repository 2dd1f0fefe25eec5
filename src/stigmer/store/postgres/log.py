"""The changes table on PostgreSQL (`store.log`): revisions, reads and compaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import psycopg

from ..base import Change, ChangeFilter, RevisionInfo
from .kv import CHANGE_COLUMNS, prefix_clause

if TYPE_CHECKING:
    from .store import PostgresStore

# The newest revision whose rows are all older than the cutoff: below the first revision holding a
# younger row (replicas' clocks may differ a little, so ts need not grow with rev).
_COMPACT_TOP = (
    "SELECT MAX(rev) FROM changes WHERE tenant = %(t)s AND ts < %(x)s AND rev < COALESCE("
    "(SELECT MIN(rev) FROM changes WHERE tenant = %(t)s AND ts >= %(x)s), 9223372036854775807)"
)


class PostgresLog:
    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def revision(self, tenant: str) -> RevisionInfo:
        rows = await self._store.fetch("SELECT rev, compacted_rev FROM tenant_revisions WHERE tenant = %s",
                                       (tenant,))
        return RevisionInfo(*rows[0]) if rows else RevisionInfo(0, 0)

    async def revisions(self, tenants: Iterable[str]) -> dict[str, int]:
        tenants = list(tenants)
        revs = dict.fromkeys(tenants, 0)
        if tenants:
            revs.update(await self._store.fetch(
                "SELECT tenant, rev FROM tenant_revisions WHERE tenant = ANY(%s)", (tenants,)))
        return revs

    async def read(self, flt: ChangeFilter, after_rev: int, limit: int) -> list[Change]:
        where, params = "", ()
        if flt.namespace is not None:
            where += " AND ns = %s"
            params += (flt.namespace,)
            if flt.key is not None:
                where += " AND key = %s"
                params += (flt.key,)
            elif flt.prefix:
                clause, extra = prefix_clause(flt.prefix)
                where += clause
                params += extra
        if flt.hidden:
            where += " AND ns <> ALL(%s)"
            params += (list(flt.hidden),)
        rows = await self._store.fetch(
            f"SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant = %s AND rev > %s{where} ORDER BY rev, seq LIMIT %s",
            (flt.tenant, after_rev, *params, limit))
        return [Change(*row) for row in rows]

    async def compact(self, older_than: float) -> int:
        # Whole revisions go together, and each tenant's rows go in the transaction that moves its
        # compaction point, so a reader sees either both or neither. The counter row is locked last,
        # for an instant, so the tenant's writers wait only for the COMMIT.
        tenants = await self._store.fetch("SELECT DISTINCT tenant FROM changes WHERE ts < %s", (older_than,))
        removed = 0
        for (tenant,) in tenants:
            removed += await self._store.run(lambda conn, t=tenant: _compact_tenant(conn, t, older_than))
        return removed


async def _compact_tenant(conn: psycopg.AsyncConnection, tenant: str, older_than: float) -> int:
    async with conn.transaction():
        cur = await conn.execute(_COMPACT_TOP, {"t": tenant, "x": older_than})
        top = (await cur.fetchone())[0]  # type: ignore[index]
        if top is None:
            return 0
        cur = await conn.execute("DELETE FROM changes WHERE tenant = %s AND rev <= %s", (tenant, top))
        await conn.execute("UPDATE tenant_revisions SET compacted_rev = GREATEST(compacted_rev, %s) WHERE tenant = %s",
                           (top, tenant))
        return cur.rowcount
