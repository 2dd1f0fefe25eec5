"""The single writer thread: group commit of mutation functions.

Requests hand mutation functions to a queue. The thread drains the queue and runs every pending function
in one transaction. Entry and change writes are held in memory per mutation and written by the group in
three statements, so one mutation's failure undoes nothing in SQL and fails none of the others; a mutation
that failed after writing SQL of its own makes the group run again with a savepoint per mutation. The
thread commits once with `synchronous=FULL` and only then resolves the callers' futures on the event loop
and publishes the group's changes. The keys a group wrote are held out of the entry cache from before its
flush until after COMMIT. Read-modify-write operations are atomic because only this thread writes.

A storage fault (disk full, read-only, I/O error) fails the whole group: SQLite may already have rolled
the transaction back. The thread rolls back, retries each mutation of the group on its own (so one large
write cannot fail small ones that fit), answers StorageFull / StorageUnavailable, records the fault for
readiness and keeps serving; the next commit that writes clears the fault.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from typing import Any, Callable

from ...engine.errors import EngineError, StorageUnavailable
from ...clock import Clock
from ..base import Change, Entry, StorageFault
from ..groups import take_group
from .faults import storage_error
from .cache import CacheKey, EntryCache
from .kv import GroupWrites, KVWrites
from .claims import ClaimWrites
from .conversations import ConversationWrites
from .coordination import CoordinationWrites
from .idempotency import IdempotencyWrites
from .jobs import JobWrites
from .leases import LeaseWrites
from .memory import MemoryWrites
from .sessions import SessionWrites
from .memory_index import MemoryIndexWrites
from .support import SupportWrites
from .states import StateWrites
from .webhooks import WebhookWrites

log = logging.getLogger("stigmer.store")

MAX_GROUP = 512  # mutations per commit; bounds the latency one commit adds to the first request in it


class WriteTxnSQLite:
    """The `WriteTxn` handed to one mutation function (`conn` is for the store's own repositories)."""

    __slots__ = ("conn", "tenant", "now", "kv", "leases", "states", "idempotency", "_committed_revs", "_group_revs", "rev", "changes",
                 "change_rows", "after")

    def __init__(self, group: GroupWrites, tenant: str, now: float, committed_revs: dict[str, int],
                 group_revs: dict[str, int]):
        self.conn = group.conn
        self.tenant = tenant
        self.now = now
        self.kv = KVWrites(group, tenant, now)
        self.leases = LeaseWrites(group.conn, tenant)
        self.states = StateWrites(group.conn, tenant)
        self.idempotency = IdempotencyWrites(group.conn, tenant)
        self._committed_revs = committed_revs  # durable before this group
        self._group_revs = group_revs  # taken by earlier mutations of this group
        self.rev = 0  # the newest revision this mutation took
        self.changes: list[Change] = []
        self.change_rows: list[tuple] = []  # written by the group's flush
        self.after: list[Callable[[], None]] | None = None  # called on the loop after COMMIT

    @property
    def claims(self) -> ClaimWrites:  # made on use: most mutations never touch a claim
        return ClaimWrites(self.conn, self.tenant)

    @property
    def conversations(self) -> ConversationWrites:
        return ConversationWrites(self.conn, self.tenant)

    @property
    def jobs(self) -> JobWrites:
        return JobWrites(self.conn, self.tenant)

    @property
    def webhooks(self) -> WebhookWrites:
        return WebhookWrites(self.conn, self.tenant)

    @property
    def memory(self) -> MemoryWrites:
        return MemoryWrites(self.conn, self.tenant)

    @property
    def coordination(self) -> CoordinationWrites:
        return CoordinationWrites(self.conn, self.tenant)

    @property
    def sessions(self) -> SessionWrites:
        return SessionWrites(self.conn, self.tenant)

    @property
    def memory_index(self) -> MemoryIndexWrites:
        return MemoryIndexWrites(self.conn, self.tenant)

    @property
    def support(self) -> SupportWrites:
        return SupportWrites(self.conn, self.tenant)

    def after_commit(self, fn: Callable[[], None]) -> None:
        if self.after is None:
            self.after = []
        self.after.append(fn)

    def new_revision(self) -> int:
        t = self.tenant
        self.rev = (self.rev or self._group_revs.get(t) or self._committed_revs.get(t, 0)) + 1
        return self.rev

    def record(self, c: Change) -> None:
        self.changes.append(c)
        self.change_rows.append(
            (c.tenant, c.rev, len(self.changes), c.namespace, c.key, c.type, c.value, c.prev_value, c.version, c.ts))


class _Rerun(Exception):
    """A mutation failed after writing SQL itself: run the group again, each mutation in a savepoint."""


class _Job:
    __slots__ = ("tenant", "fn", "future")

    def __init__(self, tenant: str, fn: Callable[[WriteTxnSQLite], Any], future: asyncio.Future):
        self.tenant = tenant
        self.fn = fn
        self.future = future


class Writer:
    """Owns the only write connection. `on_commit(changes, revs)` runs on the loop after each commit;
    `observe(size, seconds)` (the metrics) on this thread after each group."""

    def __init__(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop, clock: Clock,
                 revs: dict[str, int], on_commit: Callable[[list[Change]], None], cache: EntryCache,
                 observe: Callable[[int, float], None] | None = None):
        self._conn = conn
        self._cache = cache
        self._loop = loop
        self._clock = clock
        self._revs = revs  # committed revision per tenant; only this thread changes it
        self._on_commit = on_commit
        self._observe = observe
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopped = False
        self.fault: StorageFault | None = None  # set and cleared by this thread only
        self._thread = threading.Thread(target=self._run, name="stigmer-writer", daemon=True)
        self._thread.start()

    def submit(self, tenant: str, fn: Callable[[WriteTxnSQLite], Any]) -> asyncio.Future:
        future = self._loop.create_future()
        if self._stopped:  # nothing reads the queue any more: fail now rather than never
            future.set_exception(StorageUnavailable("the store is closed", reason="closed"))
        else:
            self._queue.put(_Job(tenant, fn, future))
        return future

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, stopping = take_group(self._queue, job, MAX_GROUP)
            start = time.perf_counter()
            self._commit_group(batch)
            if self._observe is not None:
                self._observe(len(batch), time.perf_counter() - start)
            if stopping:
                return

    def _commit_group(self, batch: list[_Job], savepoints: bool = False) -> None:
        written: dict[CacheKey, Entry | None] = {}
        after: list[Callable[[], None]] = []
        try:
            outcomes, changes, new_revs, wrote = self._run_group(batch, written, after, savepoints)
            self._conn.execute("COMMIT")
        except _Rerun:
            self._rollback()
            self._cache.release(written)
            self._commit_group(batch, savepoints=True)  # mutations may be run again (store contract)
            return
        except Exception as exc:  # the group failed as a whole: nothing in it holds
            self._rollback()
            self._cache.release(written)
            fault = storage_error(exc)
            if fault is not None and len(batch) > 1:
                for job in batch:  # mutations may be retried (store contract)
                    self._commit_group([job])
                return
            if fault is None:
                log.exception("group commit failed")
            else:
                self._fault_began(fault)
            outcomes = [(job.future, False, fault or exc) for job in batch]
            changes, new_revs, after = [], {}, []
        else:
            self._cache.release(written, written)
            if wrote and self.fault is not None:
                log.warning("storage fault cleared after %.1f s", self._clock.now() - self.fault.since)
                self.fault = None
        self._revs.update(new_revs)
        self._loop.call_soon_threadsafe(self._deliver, outcomes, changes, after)

    def _run_group(self, batch: list[_Job], written: dict[CacheKey, Entry | None], after: list[Callable[[], None]],
                   savepoints: bool) -> tuple[
            list[tuple[asyncio.Future, bool, Any]], list[Change], dict[str, int], bool]:
        """Run every mutation inside one transaction, up to (not including) COMMIT; `written` gets the
        entries written, held out of the entry cache from before the flush until the caller releases them,
        and `after` the after-commit calls of the mutations that succeeded.

        Entry and change writes are held in memory, so a mutation that fails undoes nothing in SQL; one
        that fails after writing SQL itself (a store repository's `tx.conn`) makes the group run again
        with a savepoint per mutation."""
        conn = self._conn
        group = GroupWrites(conn, self._cache)
        outcomes: list[tuple[asyncio.Future, bool, Any]] = []
        changes: list[Change] = []
        new_revs: dict[str, int] = {}
        wrote = False
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            tx = WriteTxnSQLite(group, job.tenant, self._clock.now(), self._revs, new_revs)
            before = conn.total_changes
            if savepoints:
                conn.execute("SAVEPOINT m")
            try:
                result = job.fn(tx)
            except Exception as exc:
                if storage_error(exc) is not None:
                    raise  # the transaction may be gone already: fail the group
                if savepoints:
                    conn.execute("ROLLBACK TO m")  # the mutation's own failure: undo just it
                    conn.execute("RELEASE m")
                elif conn.total_changes != before:
                    raise _Rerun from exc
                outcomes.append((job.future, False, exc))
                continue
            if savepoints:
                conn.execute("RELEASE m")
            wrote = wrote or bool(tx.kv.written) or conn.total_changes > before
            group.keep(tx.kv, tx.change_rows)
            if tx.rev:
                new_revs[job.tenant] = tx.rev
            changes.extend(tx.changes)
            if tx.after:
                after.extend(tx.after)
            outcomes.append((job.future, True, result))
        written.update(group.committed())
        self._cache.hold(written)
        group.flush()
        if new_revs:
            conn.executemany(
                "INSERT INTO tenant_revisions (tenant, rev) VALUES (?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET rev = excluded.rev",
                list(new_revs.items()),
            )
        return outcomes, changes, new_revs, wrote

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # nothing to roll back: SQLite already did (it does on FULL and IOERR) or BEGIN failed
        if self._conn.in_transaction:
            log.error("write connection still in a transaction after ROLLBACK")

    def _fault_began(self, fault: EngineError) -> None:
        code, reason, now = fault.code, str(fault.details.get("reason", fault.message)), self._clock.now()
        if self.fault is None:
            log.warning("storage fault: %s (%s); writes fail until it clears", code, reason)
        self.fault = StorageFault(code, reason, self.fault.since if self.fault else now, now)

    def _deliver(self, outcomes: list[tuple[asyncio.Future, bool, Any]], changes: list[Change],
                 after: list[Callable[[], None]]) -> None:
        if changes:
            self._on_commit(changes)
        for fn in after:
            try:
                fn()
            except Exception:
                log.exception("after-commit call failed")
        for future, ok, value in outcomes:
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
