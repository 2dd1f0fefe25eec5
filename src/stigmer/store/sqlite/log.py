"""The changes table on SQLite: revision information, change reads for watchers, compaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..base import Change, ChangeFilter, RevisionInfo
from .kv import CHANGE_COLUMNS, prefix_clause

if TYPE_CHECKING:
    from .store import SQLiteStore


class SQLiteLog:
    """`store.log`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def revision(self, tenant: str) -> RevisionInfo:
        row = self._store.read_conn.execute(
            "SELECT rev, compacted_rev FROM tenant_revisions WHERE tenant=?", (tenant,)).fetchone()
        return RevisionInfo(*row) if row else RevisionInfo(0, 0)

    async def revisions(self, tenants: Iterable[str]) -> dict[str, int]:
        tenants = list(tenants)
        if not tenants:
            return {}
        rows = self._store.read_conn.execute(
            f"SELECT tenant, rev FROM tenant_revisions WHERE tenant IN ({','.join('?' * len(tenants))})",
            tenants).fetchall()
        return {**dict.fromkeys(tenants, 0), **dict(rows)}

    async def read(self, flt: ChangeFilter, after_rev: int, limit: int) -> list[Change]:
        where, params = "", ()
        if flt.namespace is not None:
            where += " AND ns=?"
            params += (flt.namespace,)
            if flt.key is not None:
                where += " AND key=?"
                params += (flt.key,)
            elif flt.prefix:
                clause, extra = prefix_clause(flt.prefix)
                where += clause
                params += extra
        if flt.hidden:
            where += f" AND ns NOT IN ({','.join('?' * len(flt.hidden))})"
            params += flt.hidden
        rows = await self._store.in_pool(
            f"SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant=? AND rev>?{where} ORDER BY rev, seq LIMIT ?",
            (flt.tenant, after_rev, *params, limit))
        return [Change(*row) for row in rows]

    async def compact(self, older_than: float) -> int:
        # Whole revisions go together: a revision is removed only when all its rows are old. The point
        # moves in the transaction that removes the rows, so a reader sees both or neither.
        tops = await self._store.in_pool("SELECT tenant, MAX(rev) FROM changes WHERE ts < ? GROUP BY tenant",
                                         (older_than,))

        def run(tx) -> int:
            removed = 0
            for tenant, top in tops:
                removed += tx.conn.execute("DELETE FROM changes WHERE tenant=? AND rev<=?", (tenant, top)).rowcount
                tx.conn.execute(
                    "UPDATE tenant_revisions SET compacted_rev = MAX(compacted_rev, ?) WHERE tenant=?", (top, tenant))
            return removed

        return await self._store.submit_internal(run) if tops else 0
