"""Versioned entries on SQLite: point reads (through the entry cache) and pages of up to 100 entries
inline on the read connection, larger scans and history in the reader pool, writes inside the writer's
transaction."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Iterable

from ..base import Change, Entry
from .cache import CacheKey, EntryCache
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

ENTRY_COLUMNS = "value, version, create_rev, mod_rev, created_at, updated_at, expires_at"
CHANGE_COLUMNS = "tenant, rev, ns, key, type, value, prev_value, version, ts"
# Keys never contain U+10FFFF (the engine rejects it), so this bounds every key that starts with a prefix.
PREFIX_END = "\U0010ffff"
# Pages up to this many rows are read on the event loop: the hop to the pool cost more than it spared.
INLINE_SCAN_ROWS = 101


def prefix_clause(prefix: str) -> tuple[str, tuple[str, ...]]:
    if not prefix:
        return "", ()
    return " AND key >= ? AND key < ?", (prefix, prefix + PREFIX_END)


class SQLiteKV:
    """`store.kv`: reads of entries and of one key's history."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store
        self.cache = EntryCache()

    def _inline(self, sql: str, params: tuple) -> list[tuple]:
        # Point reads take microseconds: a thread hop would cost more than the read.
        try:
            return self._store.read_conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None

    async def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        def read() -> Entry | None:
            rows = self._inline(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=? AND key=?",
                                (tenant, namespace, key))
            return Entry(tenant, namespace, key, *rows[0]) if rows else None

        return self.cache.get((tenant, namespace, key), read)

    async def get_many(self, tenant: str, namespace: str, keys: Iterable[str]) -> list[Entry | None]:
        keys = list(keys)
        unique = list(dict.fromkeys(keys))
        rows = self._inline(  # one statement reads one snapshot
            f"SELECT key, {ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=? AND key IN ({','.join('?' * len(unique))})",
            (tenant, namespace, *unique))
        found = {row[0]: Entry(tenant, namespace, *row) for row in rows}
        return [found.get(k) for k in keys]

    async def scan(self, tenant: str, namespace: str, prefix: str, after: str | None, limit: int,
                   now: float) -> list[Entry]:
        where, params = prefix_clause(prefix)
        if after is not None:
            where += " AND key > ?"
            params += (after,)
        sql = (f"SELECT key, {ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=?{where}"
               " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?")
        params = (tenant, namespace, *params, now, limit)
        rows = self._inline(sql, params) if limit <= INLINE_SCAN_ROWS else await self._store.in_pool(sql, params)
        return [Entry(tenant, namespace, *row) for row in rows]

    async def history(self, tenant: str, namespace: str, key: str, before_rev: int | None,
                      limit: int) -> list[Change]:
        rows = await self._store.in_pool(
            f"SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant=? AND ns=? AND key=? AND rev<?"
            " ORDER BY rev DESC, seq DESC LIMIT ?",
            (tenant, namespace, key, before_rev if before_rev is not None else 1 << 62, limit))
        return [Change(*row) for row in rows]

    async def namespaces(self, tenant: str, now: float,
                         ranges: list[tuple[str, str]] | None = None) -> list[tuple[str, int]]:
        live = " AND (expires_at IS NULL OR expires_at > ?)"
        if ranges is None:
            rows = await self._store.in_pool(f"SELECT ns, count(*) FROM entries WHERE tenant=?{live} GROUP BY ns"
                                             " ORDER BY ns", (tenant, now))
            return [(ns, n) for ns, n in rows]
        counts: dict[str, int] = {}
        for ns, prefix in ranges:
            where, params = prefix_clause(prefix)
            rows = await self._store.in_pool(f"SELECT count(*) FROM entries WHERE tenant=? AND ns=?{where}{live}",
                                             (tenant, ns, *params, now))
            counts[ns] = counts.get(ns, 0) + rows[0][0]
        return sorted(counts.items())

    async def due_tenants(self, now: float, limit: int) -> list[str]:
        rows = self._inline("SELECT DISTINCT tenant FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?"
                            " LIMIT ?", (now, limit))
        return [r[0] for r in rows]


_DELETED = object()  # a key this group deleted
_ABSENT = object()  # a key this group has not written


class GroupWrites:
    """The entry and change writes of one commit group, held in memory until `flush` writes them in
    three statements: each SQL statement releases and retakes the GIL, and the writer waited on the
    event loop for every one (five a mutation before). Later mutations of the group read the held
    writes; a failed mutation's own are dropped. Stored rows are read through the entry cache: what
    the database holds outside this group's writes is the committed state."""

    __slots__ = ("conn", "cache", "entries", "change_rows")

    def __init__(self, conn: sqlite3.Connection, cache: EntryCache):
        self.conn = conn
        self.cache = cache
        self.entries: dict[CacheKey, Entry | object] = {}
        self.change_rows: list[tuple] = []

    def stored(self, k: CacheKey) -> Entry | None:
        def read() -> Entry | None:
            row = self.conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=? AND key=?",
                                    k).fetchone()
            return None if row is None else Entry(*k, *row)

        return self.cache.get(k, read)

    def committed(self) -> dict[CacheKey, Entry | None]:
        """What the group writes, key by key (None: deleted)."""
        return {k: None if e is _DELETED else e for k, e in self.entries.items()}  # type: ignore[misc]

    def keep(self, kv: "KVWrites", change_rows: list[tuple]) -> None:
        """A mutation succeeded: its writes join the group's."""
        self.entries.update(kv.written)
        self.change_rows.extend(change_rows)

    def flush(self) -> None:
        puts = [(*k, e.value, e.version, e.create_rev, e.mod_rev, e.created_at, e.updated_at, e.expires_at)
                for k, e in self.entries.items() if e is not _DELETED]
        deletes = [k for k, e in self.entries.items() if e is _DELETED]
        if deletes:
            self.conn.executemany("DELETE FROM entries WHERE tenant=? AND ns=? AND key=?", deletes)
        if puts:
            self.conn.executemany(
                "INSERT OR REPLACE INTO entries (tenant, ns, key, value, version, create_rev, mod_rev, created_at,"
                " updated_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)", puts)
        if self.change_rows:
            self.conn.executemany(
                "INSERT INTO changes (tenant, rev, seq, ns, key, type, value, prev_value, version, ts)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)", self.change_rows)


class KVWrites:
    """`tx.kv`: entry writes of one tenant's mutation, held in `written` until the mutation succeeds."""

    __slots__ = ("_group", "_tenant", "_now", "written")

    def __init__(self, group: GroupWrites, tenant: str, now: float):
        self._group = group
        self._tenant = tenant
        self._now = now
        self.written: dict[CacheKey, Entry | object] = {}

    def get(self, namespace: str, key: str) -> Entry | None:
        k = (self._tenant, namespace, key)
        e = self.written.get(k, _ABSENT)
        if e is _ABSENT:
            e = self._group.entries.get(k, _ABSENT)
            if e is _ABSENT:
                return self._group.stored(k)
        return None if e is _DELETED else e  # type: ignore[return-value]

    def put(self, e: Entry) -> None:
        self.written[(e.tenant, e.namespace, e.key)] = e

    def delete(self, namespace: str, key: str) -> None:
        self.written[(self._tenant, namespace, key)] = _DELETED

    def expired(self, limit: int) -> list[Entry]:
        held = {**self._group.entries, **self.written}
        rows = self._group.conn.execute(
            f"SELECT ns, key, {ENTRY_COLUMNS} FROM entries WHERE tenant=? AND expires_at IS NOT NULL"
            " AND expires_at <= ? ORDER BY expires_at LIMIT ?", (self._tenant, self._now, limit + len(held))).fetchall()
        due = [Entry(self._tenant, *row) for row in rows if (self._tenant, row[0], row[1]) not in held]
        due += [e for k, e in held.items() if k[0] == self._tenant and e is not _DELETED
                and e.expires_at is not None and e.expires_at <= self._now]  # type: ignore[union-attr]
        due.sort(key=lambda e: e.expires_at)
        return due[:limit]
