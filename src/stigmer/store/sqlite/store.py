"""The embedded SQLite store: WAL, synchronous=FULL, one writer thread, inline point reads, a reader pool."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ...clock import Clock, SystemClock
from ..base import CommitListener, StorageFault
from .analytics import sqlite_analytics
from .claims import SQLiteClaims
from .conversations import SQLiteConversations
from .faults import storage_error
from .idempotency import SQLiteIdempotency
from .jobs import SQLiteJobs
from .memory import SQLiteMemory
from .sessions import SQLiteSessions
from .memory_index import SQLiteMemoryIndex
from .ratewindows import SQLiteRateWindows
from .support import SQLiteSupport
from .keys import SQLiteKeys
from .kv import SQLiteKV
from .leases import SQLiteLeases
from .lock import DataDirLock
from .states import SQLiteStates
from .tokens import SQLiteTokens
from .webhooks import SQLiteWebhooks
from .log import SQLiteLog
from .migrations import migrate
from .writer import Writer, WriteTxnSQLite

T = TypeVar("T")

DB_FILE = "stigmer.db"
_INTERNAL = ""  # the tenant of the store's own writes (keys, compaction, the probe): no tenant's revision


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class SQLiteStore:
    tick_seconds = None  # one process owns the file: every commit is local

    def __init__(self, data_dir: str, *, clock: Clock | None = None, reader_threads: int = 2):
        self.path = os.path.join(data_dir, DB_FILE)
        self.clock = clock or SystemClock()
        self._data_dir = data_dir
        self._reader_threads = reader_threads
        self._listener: CommitListener | None = None
        self.observe_group: Callable[[int, float], None] | None = None  # (size, seconds) per group, from a writer thread; set before open()
        self.closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.kv = SQLiteKV(self)
        self.log = SQLiteLog(self)
        self.leases = SQLiteLeases(self)
        self.states = SQLiteStates(self)
        self.claims = SQLiteClaims(self)
        self.conversations = SQLiteConversations(self)
        self.analytics = sqlite_analytics(self)
        self.idempotency = SQLiteIdempotency(self)
        self.jobs = SQLiteJobs(self)
        self.webhooks = SQLiteWebhooks(self)
        self.memory = SQLiteMemory(self)
        self.sessions = SQLiteSessions(self)
        self.buckets = None  # one process owns the file: its in-memory buckets are the only ones
        self.memory_index = SQLiteMemoryIndex(self)
        self.rate_windows = SQLiteRateWindows(self)
        self.support = SQLiteSupport(self)
        self.keys = SQLiteKeys(self)
        self.tokens = SQLiteTokens(self)

    # life cycle

    async def open(self) -> None:
        os.makedirs(self._data_dir, exist_ok=True)
        self._lock = DataDirLock(self._data_dir).acquire()  # DataDirInUse: another store has this directory
        try:
            write_conn = _connect(self.path)
            migrate(write_conn)
            revs = dict(write_conn.execute("SELECT tenant, rev FROM tenant_revisions").fetchall())
        except BaseException:
            self._lock.release()
            raise
        self.read_conn = _connect(self.path)
        self._pool = ThreadPoolExecutor(self._reader_threads, thread_name_prefix="stigmer-reader")
        self._writer = Writer(write_conn, asyncio.get_running_loop(), self.clock, revs, self._on_commit, self.kv.cache,
                              self.observe_group)
        self._write_conn = write_conn

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.stop()
        self._pool.shutdown(wait=True)
        for conn in [self.read_conn, self._write_conn, *self._readers]:
            conn.close()
        self._lock.release()

    def set_listener(self, listener: CommitListener) -> None:
        self._listener = listener

    def _on_commit(self, changes) -> None:
        if self._listener is not None:
            self._listener.committed(changes)

    def describe(self) -> dict[str, Any]:
        return {"kind": "sqlite", "path": self.path}

    # writes

    def submit(self, tenant: str, fn: Callable[[WriteTxnSQLite], T]) -> "asyncio.Future[T]":
        """Every mutation goes through the one writer thread, which serialises all tenants at once."""
        if not tenant:
            raise ValueError("a mutation needs a tenant")
        return self._writer.submit(tenant, fn)

    def submit_internal(self, fn: Callable[[WriteTxnSQLite], T]) -> "asyncio.Future[T]":
        """A write of the store's own repositories (`tx.conn`); it takes no revision."""
        return self._writer.submit(_INTERNAL, fn)

    # health

    async def ping(self) -> None:
        try:
            self.read_conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None

    def health(self) -> StorageFault | None:
        return self._writer.fault

    async def probe(self) -> None:
        await self.submit_internal(_probe)

    # the reader pool, for the repositories

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    async def in_pool(self, sql: str, params: tuple) -> list[tuple]:
        return await self.in_pool_do(lambda conn: conn.execute(sql, params).fetchall())

    async def in_pool_do(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` on a reader of the pool (its statements may share one read transaction)."""
        def run() -> T:
            try:
                return work(self._reader())
            except sqlite3.Error as exc:
                raise storage_error(exc) or exc from None

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)


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
