"""The PostgreSQL store: several Stigmer replicas share one database.

Writes go to writer threads (writer.py), routed by tenant so one tenant's mutations group in one thread;
reads run on an async connection pool on the event loop; the doorbell (doorbell.py) tells other
replicas that a tenant moved. Nothing about revisions is cached here: another replica may have moved
them, so every answer about them comes from the database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from typing import Any, Callable, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from ...clock import Clock, SystemClock
from ...engine.errors import EngineError, StorageUnavailable
from ..base import Change, CommitListener, StorageFault
from ..dsn import mask_url
from .analytics import postgres_analytics
from .claims import PostgresClaims
from .conversations import PostgresConversations
from .doorbell import Doorbell
from .faults import request_refused, storage_error, unavailable
from .idempotency import PostgresIdempotency
from .jobs import PostgresJobs
from .memory import PostgresMemory
from .sessions import PostgresSessions
from .buckets import PostgresBuckets
from .memory_index import PostgresMemoryIndex
from .ratewindows import PostgresRateWindows
from .support import PostgresSupport
from .keys import PostgresKeys
from .kv import PostgresKV
from .leases import PostgresLeases
from .tokens import PostgresTokens
from .webhooks import PostgresWebhooks
from .log import PostgresLog
from .migrations import migrate
from .states import PostgresStates
from .writer import Writer, WriteTxnPG

T = TypeVar("T")
log = logging.getLogger("stigmer.store")

# Every connection: fail fast when the server is not there, and notice a silent peer (keepalives) in
# about 15 s instead of the kernel's two hours.
CONNECT_OPTIONS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                   "keepalives_count": 5}
POOL_TIMEOUT = 3.0  # seconds a read waits for a pooled connection before StorageUnavailable
# How long the pool keeps retrying a lost connection in the background (psycopg_pool backs off 1 s,
# 2 s, 4 s...). Kept short: once it gives up, the next read that waits reconnects at once, so a
# database back after a long outage serves reads again without waiting out a long backoff.
POOL_RECONNECT_TIMEOUT = 2.0


class PostgresStore:
    def __init__(self, url: str, *, clock: Clock = SystemClock(), pool_size: int = 8, writers: int = 2,
                 tick_seconds: float = 1.0):
        assert pool_size >= 1 and writers >= 1, "pool_size and writers must be at least 1"
        self.url = url
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.pool_size = pool_size
        self.writers = writers
        self.kv = PostgresKV(self)
        self.log = PostgresLog(self)
        self.leases = PostgresLeases(self)
        self.states = PostgresStates(self)
        self.claims = PostgresClaims(self)
        self.conversations = PostgresConversations(self)
        self.analytics = postgres_analytics(self)
        self.idempotency = PostgresIdempotency(self)
        self.jobs = PostgresJobs(self)
        self.webhooks = PostgresWebhooks(self)
        self.memory = PostgresMemory(self)
        self.sessions = PostgresSessions(self)
        self.buckets = PostgresBuckets(self)  # rate limits shared by the replicas
        self.memory_index = PostgresMemoryIndex(self)
        self.rate_windows = PostgresRateWindows(self)
        self.support = PostgresSupport(self)
        self.keys = PostgresKeys(self)
        self.tokens = PostgresTokens(self)
        self._listener: CommitListener | None = None
        self.observe_group: Callable[[int, float], None] | None = None  # (size, seconds) per group, from a writer thread; set before open()
        self._fault: StorageFault | None = None
        self._fault_lock = threading.Lock()
        self._writers: list[Writer] = []
        self._pool: AsyncConnectionPool | None = None
        self._doorbell: Doorbell | None = None

    # life cycle

    async def open(self) -> None:
        where = f"cannot connect to PostgreSQL at {mask_url(self.url)}"
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self._options("stigmer-migrate"))
        except psycopg.Error as exc:
            raise unavailable(where, exc) from None
        async with conn:
            encoding = (await (await conn.execute("SHOW server_encoding")).fetchone())[0]  # type: ignore[index]
            if encoding != "UTF8":
                raise RuntimeError(f"the database's encoding is {encoding}; Stigmer needs a UTF8 database")
            await migrate(conn)
        try:
            self._pool = AsyncConnectionPool(
                self.url, min_size=self.pool_size, max_size=self.pool_size, open=False, timeout=POOL_TIMEOUT,
                reconnect_timeout=POOL_RECONNECT_TIMEOUT, kwargs={"autocommit": True, **self._options("stigmer-read")},
                name="stigmer-read")
            await self._pool.open(wait=True, timeout=POOL_TIMEOUT)
            loop = asyncio.get_running_loop()
            self._writers = [Writer(f"stigmer-writer-{i}", self._write_connection, loop, self.clock,
                                    self._on_commit, self._fault_began, self._fault_cleared, self.observe_group)
                             for i in range(self.writers)]
            self._doorbell = Doorbell(self._notify_connection, self._rang)
            await self._doorbell.open()
        except BaseException as exc:
            await self.close()  # nothing half-open is left behind
            if isinstance(exc, psycopg.Error):
                raise unavailable(where, exc) from None
            raise

    async def close(self) -> None:
        writers, self._writers = self._writers, []
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in writers))
        await asyncio.sleep(0)  # deliveries the writers scheduled run before the doorbell goes
        if self._doorbell is not None:
            await self._doorbell.close()
            self._doorbell = None
        if self._pool is not None:
            await self.kv.drain()
            await self.tokens.drain()
            await self._pool.close()
            self._pool = None

    def set_listener(self, listener: CommitListener) -> None:
        self._listener = listener

    # connections

    def _options(self, application: str) -> dict[str, Any]:
        options: dict[str, Any] = dict(CONNECT_OPTIONS)
        if "application_name" not in self.url:
            options["application_name"] = application
        return options

    def _write_connection(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=False, **self._options("stigmer-write"))

    async def _notify_connection(self, application: str) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, **self._options(application))

    async def fetch(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        """One statement on a pooled connection (autocommit: one snapshot per statement)."""
        return await self.run(lambda conn: _fetchall(conn, sql, params))

    async def run(self, work: Callable[[psycopg.AsyncConnection], Any]) -> Any:
        """`await work(conn)` on a pooled connection. A connection found dead is replaced and the work
        done once more (every caller's work is safe to repeat); storage faults become engine errors."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    try:
                        return await work(conn)
                    except psycopg.Error:
                        if attempt == 1 and (conn.broken or conn.closed):
                            raise _Stale() from None
                        raise
            except _Stale:
                await self._pool.check()  # drop every dead idle connection, not just this one
            except psycopg.Error as exc:
                raise storage_error(exc) or request_refused(exc) or exc from None
        raise AssertionError("unreachable")

    # writes

    async def submit(self, tenant: str, fn: Callable[[WriteTxnPG], T]) -> T:
        if not self._writers:
            raise StorageUnavailable("the store is not open", reason="closed")
        writer = self._writers[zlib.crc32(tenant.encode()) % len(self._writers)]
        return await writer.submit(tenant, fn)

    def _on_commit(self, changes: list[Change], revs: dict[str, int]) -> None:
        if self._doorbell is not None:
            self._doorbell.ring(revs)
        if changes and self._listener is not None:
            self._listener.committed(changes)

    def _rang(self, tenant: str, rev: int) -> None:
        if self._listener is not None:
            self._listener.rang(tenant, rev)

    # health

    def _fault_began(self, error: EngineError) -> None:
        reason, now = str(error.details.get("reason", error.message)), self.clock.now()
        with self._fault_lock:
            if self._fault is None:
                log.warning("storage fault: %s (%s); writes fail until it clears", error.code, reason)
            since = self._fault.since if self._fault else now
            self._fault = StorageFault(error.code, reason, since, now)

    def _fault_cleared(self) -> None:
        if self._fault is None:
            return
        with self._fault_lock:
            if self._fault is not None:
                log.warning("storage fault cleared after %.1f s", self.clock.now() - self._fault.since)
                self._fault = None

    def health(self) -> StorageFault | None:
        return self._fault

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def probe(self) -> None:
        if not self._writers:
            raise RuntimeError("the store is not open")
        await self._writers[0].submit(None, _probe)

    def describe(self) -> dict[str, Any]:
        return {"kind": "postgresql", "url": mask_url(self.url), "writers": self.writers,
                "pool_size": self.pool_size}


class _Stale(Exception):
    pass


async def _fetchall(conn: psycopg.AsyncConnection, sql: str, params: tuple | dict) -> list[tuple]:
    cur = conn.cursor(binary=True)  # bytea arrives as it is stored, not hex-encoded
    await cur.execute(sql, params)
    return await cur.fetchall()


def _probe(tx: WriteTxnPG) -> None:
    tx.write("INSERT INTO store_probe (id, at) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at",
             (tx.now,))
