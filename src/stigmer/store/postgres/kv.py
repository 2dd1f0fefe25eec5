"""Key/value reads on PostgreSQL (`store.kv`), on the read pool."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable

from ..base import Change, Entry
from .batching import PointReads
from .writer import _ENTRY_COLUMNS

if TYPE_CHECKING:
    from .store import PostgresStore

CHANGE_COLUMNS = "tenant, rev, ns, key, type, value, prev_value, version, ts"
# Keys never contain U+10FFFF (the engine rejects it), and "C" collation compares UTF-8 bytes, so this
# bounds every key that starts with a prefix.
PREFIX_END = "\U0010ffff"
_NO_REVISION = 1 << 62
BATCH_GETS = True  # module attributes so the measurement script can compare
_GET = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE tenant = %s AND ns = %s AND key = %s"
_GET_BATCH = (
    f"SELECT q.tenant, q.ns, q.key, {_ENTRY_COLUMNS}"
    " FROM unnest(%s::text[], %s::text[], %s::text[]) AS q (tenant, ns, key)"
    ' JOIN entries e ON e.tenant = q.tenant COLLATE "C" AND e.ns = q.ns COLLATE "C" AND e.key = q.key COLLATE "C"'
)
log = logging.getLogger("stigmer.store")


def prefix_clause(prefix: str) -> tuple[str, tuple[str, ...]]:
    if not prefix:
        return "", ()
    return " AND key >= %s AND key < %s", (prefix, prefix + PREFIX_END)


class PostgresKV:
    """Point reads that arrive together share one statement (batching.py)."""

    def __init__(self, store: "PostgresStore"):
        self._store = store
        self._gets: PointReads[tuple[str, str, str], Entry] = PointReads(store, self._read)

    async def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        if not BATCH_GETS:
            rows = await self._store.fetch(_GET, (tenant, namespace, key))
            return Entry(tenant, namespace, key, *rows[0]) if rows else None
        return await self._gets.get((tenant, namespace, key))

    async def drain(self) -> None:
        await self._gets.drain()

    async def _read(self, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Entry]:
        if len(wanted) == 1:
            tenant, namespace, key = wanted[0]
            rows = [(tenant, namespace, key, *row) for row in await self._store.fetch(_GET, wanted[0])]
        else:
            rows = await self._store.fetch(_GET_BATCH, tuple(list(column) for column in zip(*wanted)))
        return {(r[0], r[1], r[2]): Entry(*r) for r in rows}

    async def get_many(self, tenant: str, namespace: str, keys: Iterable[str]) -> list[Entry | None]:
        keys = list(keys)
        rows = await self._store.fetch(  # one statement reads one snapshot
            f"SELECT key, {_ENTRY_COLUMNS} FROM entries WHERE tenant = %s AND ns = %s AND key = ANY(%s)",
            (tenant, namespace, list(dict.fromkeys(keys))))
        found = {row[0]: Entry(tenant, namespace, *row) for row in rows}
        return [found.get(k) for k in keys]

    async def scan(self, tenant: str, namespace: str, prefix: str, after: str | None, limit: int,
                   now: float) -> list[Entry]:
        where, params = prefix_clause(prefix)
        if after is not None:
            where += " AND key > %s"
            params += (after,)
        rows = await self._store.fetch(
            f"SELECT key, {_ENTRY_COLUMNS} FROM entries WHERE tenant = %s AND ns = %s{where}"
            " AND (expires_at IS NULL OR expires_at > %s) ORDER BY key LIMIT %s",
            (tenant, namespace, *params, now, limit))
        return [Entry(tenant, namespace, *row) for row in rows]

    async def history(self, tenant: str, namespace: str, key: str, before_rev: int | None,
                      limit: int) -> list[Change]:
        rows = await self._store.fetch(
            f"SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant = %s AND ns = %s AND key = %s AND rev < %s"
            " ORDER BY rev DESC, seq DESC LIMIT %s",
            (tenant, namespace, key, before_rev if before_rev is not None else _NO_REVISION, limit))
        return [Change(*row) for row in rows]

    async def namespaces(self, tenant: str, now: float,
                         ranges: list[tuple[str, str]] | None = None) -> list[tuple[str, int]]:
        live = " AND (expires_at IS NULL OR expires_at > %s)"
        if ranges is None:
            rows = await self._store.fetch(f"SELECT ns, count(*) FROM entries WHERE tenant = %s{live} GROUP BY ns"
                                           " ORDER BY ns COLLATE \"C\"", (tenant, now))
            return [(ns, n) for ns, n in rows]
        counts: dict[str, int] = {}
        for ns, prefix in ranges:
            where, params = prefix_clause(prefix)
            rows = await self._store.fetch(f"SELECT count(*) FROM entries WHERE tenant = %s AND ns = %s{where}{live}",
                                           (tenant, ns, *params, now))
            counts[ns] = counts.get(ns, 0) + rows[0][0]
        return sorted(counts.items())

    async def due_tenants(self, now: float, limit: int) -> list[str]:
        # One index probe per tenant (entries_expiry leads with tenant), however many rows are due.
        rows = await self._store.fetch(
            "SELECT r.tenant FROM tenant_revisions r WHERE EXISTS (SELECT 1 FROM entries e"
            " WHERE e.tenant = r.tenant AND e.expires_at <= %s) ORDER BY r.tenant LIMIT %s",
            (now, limit))
        return [r[0] for r in rows]
