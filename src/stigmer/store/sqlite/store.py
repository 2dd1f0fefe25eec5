"""The embedded SQLite store: WAL, synchronous=FULL, one writer thread, inline point reads, a reader pool."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

from ..base import Change, ChangeFilter, Entry, RevisionInfo, StorageFault
from .faults import storage_error
from .keys import SQLiteKeys
from .migrations import migrate
from .writer import _ENTRY_COLUMNS, Writer, WriteTxnSQLite

T = TypeVar("T")

DB_FILE = "stigmer.db"
_CHANGE_COLUMNS = "tenant, rev, ns, key, type, value, prev_value, version, ts"
# Keys never contain U+10FFFF (the engine rejects it), so this bounds every key that starts with a prefix.
_PREFIX_END = "\U0010ffff"


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _prefix_clause(prefix: str) -> tuple[str, tuple[str, ...]]:
    if not prefix:
        return "", ()
    return " AND key >= ? AND key < ?", (prefix, prefix + _PREFIX_END)


class SQLiteStore:
    def __init__(self, data_dir: str, reader_threads: int = 2):
        self.path = os.path.join(data_dir, DB_FILE)
        self._data_dir = data_dir
        self._reader_threads = reader_threads
        self._revisions: dict[str, RevisionInfo] = {}
        self._listener: Callable[[list[Change]], Any] | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.keys = SQLiteKeys(self)

    # life cycle

    async def open(self) -> None:
        os.makedirs(self._data_dir, exist_ok=True)
        write_conn = _connect(self.path)
        migrate(write_conn)
        rows = write_conn.execute("SELECT tenant, rev, compacted_rev FROM tenant_revisions").fetchall()
        self._revisions = {t: RevisionInfo(rev, compacted) for t, rev, compacted in rows}
        self._read = _connect(self.path)
        self._pool = ThreadPoolExecutor(self._reader_threads, thread_name_prefix="stigmer-reader")
        self._writer = Writer(write_conn, asyncio.get_running_loop(), {t: r.current for t, r in self._revisions.items()},
                              self._on_commit)
        self._write_conn = write_conn

    async def close(self) -> None:
        self._writer.stop()
        self._pool.shutdown(wait=True)
        for conn in [self._read, self._write_conn, *self._readers]:
            conn.close()

    def set_listener(self, listener: Callable[[list[Change]], Any]) -> None:
        self._listener = listener

    def _on_commit(self, changes: list[Change], revs: dict[str, int]) -> None:
        for tenant, rev in revs.items():
            old = self._revisions.get(tenant)
            self._revisions[tenant] = RevisionInfo(rev, old.compacted if old else 0)
        if changes and self._listener is not None:
            self._listener(changes)

    # writes

    def submit(self, fn: Callable[[WriteTxnSQLite], T]) -> "asyncio.Future[T]":
        return self._writer.submit(fn)

    # reads

    def revision(self, tenant: str) -> RevisionInfo:
        return self._revisions.get(tenant) or RevisionInfo(0, 0)

    def committed_revision(self, tenant: str) -> int:
        """The tenant's revision as the database holds it. It can be ahead of `revision()`, which follows
        commits as they are published: a reader may already see a commit the loop has not announced yet."""
        row = self._read.execute("SELECT rev FROM tenant_revisions WHERE tenant=?", (tenant,)).fetchone()
        return row[0] if row else 0

    def ping(self) -> None:
        self._read.execute("SELECT 1").fetchone()

    def health(self) -> StorageFault | None:
        return self._writer.fault

    async def probe(self) -> None:
        await self.submit(_probe)

    def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        try:
            row = self._read.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=? AND key=?", (tenant, namespace, key)
            ).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None
        return None if row is None else Entry(tenant, namespace, key, *row)

    async def get_many(self, tenant: str, namespace: str, keys: Iterable[str]) -> list[Entry | None]:
        keys = list(keys)
        unique = list(dict.fromkeys(keys))
        marks = ",".join("?" * len(unique))
        try:
            rows = self._read.execute(  # one statement reads one snapshot
                f"SELECT key, {_ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=? AND key IN ({marks})",
                (tenant, namespace, *unique),
            ).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None
        found = {row[0]: Entry(tenant, namespace, *row) for row in rows}
        return [found.get(k) for k in keys]

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    async def _in_pool(self, sql: str, params: tuple) -> list[tuple]:
        def run() -> list[tuple]:
            try:
                return self._reader().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise storage_error(exc) or exc from None

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def scan(self, tenant: str, namespace: str, prefix: str, after: str | None, limit: int, now: float) -> list[Entry]:
        where, params = _prefix_clause(prefix)
        if after is not None:
            where += " AND key > ?"
            params += (after,)
        rows = await self._in_pool(
            f"SELECT key, {_ENTRY_COLUMNS} FROM entries WHERE tenant=? AND ns=?{where}"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
            (tenant, namespace, *params, now, limit),
        )
        return [Entry(tenant, namespace, *row) for row in rows]

    async def changes(self, flt: ChangeFilter, after_rev: int, limit: int) -> list[Change]:
        where, params = "", ()
        if flt.namespace is not None:
            where += " AND ns=?"
            params += (flt.namespace,)
            if flt.key is not None:
                where += " AND key=?"
                params += (flt.key,)
            elif flt.prefix:
                clause, extra = _prefix_clause(flt.prefix)
                where += clause
                params += extra
        if flt.hidden:
            where += f" AND ns NOT IN ({','.join('?' * len(flt.hidden))})"
            params += flt.hidden
        rows = await self._in_pool(
            f"SELECT {_CHANGE_COLUMNS} FROM changes WHERE tenant=? AND rev>?{where} ORDER BY rev, seq LIMIT ?",
            (flt.tenant, after_rev, *params, limit),
        )
        return [Change(*row) for row in rows]

    async def key_history(self, tenant: str, namespace: str, key: str, before_rev: int | None, limit: int) -> list[Change]:
        rows = await self._in_pool(
            f"SELECT {_CHANGE_COLUMNS} FROM changes WHERE tenant=? AND ns=? AND key=? AND rev<?"
            " ORDER BY rev DESC, seq DESC LIMIT ?",
            (tenant, namespace, key, before_rev if before_rev is not None else 1 << 62, limit),
        )
        return [Change(*row) for row in rows]

    async def compact(self, older_than: float) -> int:
        # Whole revisions go together: a revision is removed only when all its rows are old. The new
        # compaction point is published before rows go, so a reader that checks it after reading can
        # never take a partial history for a complete one.
        tops = await self._in_pool("SELECT tenant, MAX(rev) FROM changes WHERE ts < ? GROUP BY tenant", (older_than,))
        for tenant, top in tops:
            info = self.revision(tenant)
            self._revisions[tenant] = RevisionInfo(info.current, max(info.compacted, top))

        def run(tx: WriteTxnSQLite) -> int:
            removed = 0
            for tenant, top in tops:
                removed += tx.conn.execute("DELETE FROM changes WHERE tenant=? AND rev<=?", (tenant, top)).rowcount
                tx.conn.execute(
                    "UPDATE tenant_revisions SET compacted_rev = MAX(compacted_rev, ?) WHERE tenant=?", (top, tenant)
                )
            return removed

        return await self.submit(run) if tops else 0


def _probe(tx: WriteTxnSQLite) -> None:
    tx.conn.execute("INSERT INTO store_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    (tx.now,))


def check_data_dir(data_dir: str) -> None:
    """Raise OSError unless the store can write in `data_dir` (creating it if needed): SQLite's WAL files
    need it, and a clear message at start-up beats a traceback from the first PRAGMA."""
    os.makedirs(data_dir, exist_ok=True)
    probe = os.path.join(data_dir, f".stigmer-write-check-{os.getpid()}")
    with open(probe, "wb") as f:
        f.write(b"ok")
    os.remove(probe)
