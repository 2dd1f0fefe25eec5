"""Writer threads: group commit of mutation functions on PostgreSQL, each function in its own savepoint.

Each thread owns one sync connection. It drains its queue, BEGINs, locks the revision-counter rows of
the group's tenants (`FOR UPDATE`, in tenant order, so two groups never deadlock), runs every function
in a savepoint, writes the counters and the change rows, COMMITs, and only then resolves the callers'
futures on the event loop. The counter row is the tenant's write lock across replicas, so a
read-modify-write inside a function is atomic and revisions commit in order with no gap.

Statements go out in pipeline mode: a function's writes do not wait for their answers, only its reads
do. A database error therefore fails the whole group (it may surface in a later function); the group is
then run again one function at a time, so only the function at fault fails.

Savepoints cost as much as the writes they guard (measured: docs/postgres-store.md), and most failing
functions fail before they write (a version conflict, a missing key), which needs no undo at all. So
a group first runs without savepoints; only if a function raises after writing is the group rolled
back and run again with a savepoint per function, so that the failure undoes just its own writes.

Faults: a lost connection before COMMIT, a serialisation failure or a deadlock runs the group again
(on a fresh connection, after a short backoff): functions may run more than once (store contract). A
connection lost during COMMIT answers StorageUnavailable: the outcome is unknown, so nothing is retried.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Any, Callable, Sequence

import psycopg

from ...clock import Clock
from ...engine.errors import EngineError
from ..base import Change, Entry
from ..groups import take_group
from .faults import is_retryable, request_refused, storage_error, unavailable
from .claims import ClaimWritesPG
from .conversations import ConversationWritesPG
from .idempotency import IdempotencyWritesPG
from .jobs import JobWritesPG
from .memory import MemoryWritesPG
from .coordination import CoordinationWritesPG
from .sessions import SessionWritesPG
from .memory_index import MemoryIndexWritesPG
from .support import SupportWritesPG
from .leases import LeaseWritesPG
from .states import StateWritesPG
from .webhooks import WebhookWritesPG

log = logging.getLogger("stigmer.store")

MAX_GROUP = 256  # mutations per commit; bounds the latency one commit adds to the first request in it
# Pauses before reconnecting after a lost connection: about 3 s in all, enough for a restart of
# PostgreSQL to cost a wait rather than errors. A writer that stays down tries once per group.
RECONNECT_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
MAX_CONFLICT_RETRIES = 5
USE_PIPELINE = True  # module attribute so the measurement script can compare

_ENTRY_COLUMNS = "value, version, create_rev, mod_rev, created_at, updated_at, expires_at"
_GET = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE tenant = %s AND ns = %s AND key = %s"
_PUT = (
    "INSERT INTO entries (tenant, ns, key, value, version, create_rev, mod_rev, created_at, updated_at, expires_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, ns, key) DO UPDATE SET"
    " value = EXCLUDED.value, version = EXCLUDED.version, create_rev = EXCLUDED.create_rev,"
    " mod_rev = EXCLUDED.mod_rev, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,"
    " expires_at = EXCLUDED.expires_at"
)
_DELETE = "DELETE FROM entries WHERE tenant = %s AND ns = %s AND key = %s"
# SKIP LOCKED: a row another transaction holds is skipped, not waited for (the sweep takes it next time).
_EXPIRED = (
    f"SELECT ns, key, {_ENTRY_COLUMNS} FROM entries WHERE tenant = %s AND expires_at <= %s"
    " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED"
)
_ENSURE = "INSERT INTO tenant_revisions (tenant, rev) SELECT unnest(%s::text[]), 0 ON CONFLICT DO NOTHING"
_LOCK = "SELECT tenant, rev FROM tenant_revisions WHERE tenant = ANY(%s) ORDER BY tenant FOR UPDATE"
_SET_REV = "UPDATE tenant_revisions SET rev = %s WHERE tenant = %s"
# All the group's change rows in one statement.
_RECORD = (
    "INSERT INTO changes (tenant, rev, seq, ns, key, type, value, prev_value, version, ts)"
    " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[],"
    " %s::bytea[], %s::bytea[], %s::bigint[], %s::float8[])"
)


class KVWritesPG:
    """`tx.kv`: the entries of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def get(self, namespace: str, key: str) -> Entry | None:
        tx = self._tx
        row = tx.cur.execute(_GET, (tx.tenant, namespace, key)).fetchone()
        return None if row is None else Entry(tx.tenant, namespace, key, *row)

    def put(self, e: Entry) -> None:
        tx = self._tx
        tx.check_tenant(e.tenant)
        tx.write(_PUT, (e.tenant, e.namespace, e.key, e.value, e.version, e.create_rev, e.mod_rev,
                        e.created_at, e.updated_at, e.expires_at))

    def delete(self, namespace: str, key: str) -> None:
        tx = self._tx
        tx.write(_DELETE, (tx.tenant, namespace, key))

    def expired(self, limit: int) -> list[Entry]:
        tx = self._tx
        rows = tx.cur.execute(_EXPIRED, (tx.tenant, tx.now, limit)).fetchall()
        return [Entry(tx.tenant, *row) for row in rows]


class WriteTxnPG:
    """The `WriteTxn` handed to one run of one mutation function."""

    __slots__ = ("cur", "tenant", "now", "kv", "leases", "states", "idempotency", "rev", "changes", "wrote", "dirty", "_savepoints",
                 "_in_savepoint", "after")

    def __init__(self, cur: psycopg.Cursor, tenant: str, now: float, rev: int, savepoints: bool):
        self.cur = cur  # the group's cursor: one per group keeps psycopg's per-cursor set-up off each statement
        self.tenant = tenant
        self.now = now
        self.kv = KVWritesPG(self)
        self.leases = LeaseWritesPG(self)
        self.states = StateWritesPG(self)
        self.idempotency = IdempotencyWritesPG(self)
        self.rev = rev  # the newest revision taken (the locked counter's value to begin with)
        self.changes: list[Change] = []
        self.wrote = False  # recorded or wrote anything (a commit that clears a storage fault)
        self.dirty = False  # sent a writing statement (something to undo)
        self._savepoints = savepoints
        self._in_savepoint = False
        self.after: list[Callable[[], None]] | None = None  # called on the loop after COMMIT

    @property
    def claims(self) -> ClaimWritesPG:  # made on use: most mutations never touch a claim
        return ClaimWritesPG(self)

    @property
    def conversations(self) -> ConversationWritesPG:
        return ConversationWritesPG(self)

    @property
    def jobs(self) -> JobWritesPG:
        return JobWritesPG(self)

    @property
    def webhooks(self) -> WebhookWritesPG:
        return WebhookWritesPG(self)

    @property
    def memory(self) -> MemoryWritesPG:
        return MemoryWritesPG(self)

    @property
    def coordination(self) -> CoordinationWritesPG:
        return CoordinationWritesPG(self)

    @property
    def sessions(self) -> SessionWritesPG:
        return SessionWritesPG(self)

    @property
    def memory_index(self) -> MemoryIndexWritesPG:
        return MemoryIndexWritesPG(self)

    @property
    def support(self) -> SupportWritesPG:
        return SupportWritesPG(self)

    def after_commit(self, fn: Callable[[], None]) -> None:
        if self.after is None:
            self.after = []
        self.after.append(fn)

    def new_revision(self) -> int:
        self.rev += 1
        return self.rev

    def record(self, change: Change) -> None:
        self.check_tenant(change.tenant)
        self.wrote = True
        self.changes.append(change)  # written with the group's other change rows, before COMMIT

    def write(self, sql: str, params: tuple) -> None:
        # The savepoint is taken at the first write: a function that only reads has nothing to undo.
        if self._savepoints and not self._in_savepoint:
            self.cur.execute("SAVEPOINT m")
            self._in_savepoint = True
        self.wrote = self.dirty = True
        self.cur.execute(sql, params)

    def check_tenant(self, tenant: str) -> None:
        if tenant != self.tenant:
            raise ValueError(f"a mutation of tenant {self.tenant!r} may not write tenant {tenant!r}")

    def undo(self) -> None:
        if self._in_savepoint:
            self.cur.execute("ROLLBACK TO SAVEPOINT m")
            self.cur.execute("RELEASE SAVEPOINT m")

    def keep(self) -> None:
        if self._in_savepoint:
            self.cur.execute("RELEASE SAVEPOINT m")


class _Job:
    __slots__ = ("tenant", "fn", "future")

    def __init__(self, tenant: str | None, fn: Callable[[WriteTxnPG], Any], future: asyncio.Future):
        self.tenant = tenant  # None: a store-internal write that takes no revision (the probe)
        self.fn = fn
        self.future = future


class _CommitUnknown(Exception):
    """The connection died during COMMIT: the group may or may not have been kept."""


class _ConnectFailed(Exception):
    pass


class _Retry(Exception):
    """Run the group again (a counter row went missing under us)."""


class _NeedsSavepoints(Exception):
    """A function raised after writing: run the group again, a savepoint per function."""


Outcome = tuple[asyncio.Future, bool, Any]
GroupResult = tuple[list[Outcome], list[Change], dict[str, int], bool, list[Callable[[], None]]]


class Writer:
    """One writer thread and its connection. `on_commit(changes, revs)` runs on the loop after each
    commit that took revisions; `on_fault(error)` / `on_clear()` keep the store's StorageFault;
    `observe(size, seconds)` (the metrics) runs on this thread after each group."""

    def __init__(self, name: str, connect: Callable[[], psycopg.Connection], loop: asyncio.AbstractEventLoop,
                 clock: Clock, on_commit: Callable[[list[Change], dict[str, int]], None],
                 on_fault: Callable[[EngineError], None], on_clear: Callable[[], None],
                 observe: Callable[[int, float], None] | None = None):
        self._connect = connect
        self._loop = loop
        self._clock = clock
        self._on_commit = on_commit
        self._on_fault = on_fault
        self._on_clear = on_clear
        self._observe = observe
        self._conn: psycopg.Connection | None = None
        self._down = False  # reconnecting failed after every delay; the next group tries only once
        self._known: set[str] = set()  # tenants whose counter row is known to exist
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, tenant: str | None, fn: Callable[[WriteTxnPG], Any]) -> asyncio.Future:
        future = self._loop.create_future()
        self._queue.put(_Job(tenant, fn, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._discard()

    # the thread

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, stopping = take_group(self._queue, job, MAX_GROUP)
            start = time.perf_counter()
            try:
                self._commit_group(batch)
            except BaseException as exc:  # never leave a caller waiting
                log.exception("writer failed")
                self._deliver_soon([(j.future, False, exc) for j in batch], [], {})
            if self._observe is not None:
                self._observe(len(batch), time.perf_counter() - start)
            if stopping:
                return

    def _commit_group(self, batch: list[_Job]) -> None:
        delays = iter(() if self._down else RECONNECT_DELAYS)
        conflicts = 0
        savepoints = False
        while True:
            try:
                outcomes, changes, revs, wrote, after = self._attempt(batch, savepoints)
            except _CommitUnknown as exc:
                self._discard()
                error = unavailable("the connection to PostgreSQL was lost during COMMIT;"
                                    " the write may or may not have been kept", exc.__cause__ or exc)
                self._on_fault(error)
                self._deliver_soon([(j.future, False, error) for j in batch], [], {})
                return
            except Exception as exc:
                if self._lost(exc):
                    self._discard()
                    delay = next(delays, None)
                    if delay is not None:
                        time.sleep(delay)
                        continue
                    self._down = True
                    error = unavailable("PostgreSQL cannot be reached; the write was not kept", exc.__cause__ or exc)
                    self._on_fault(error)
                    self._deliver_soon([(j.future, False, error) for j in batch], [], {})
                    return
                self._rollback()
                if isinstance(exc, _NeedsSavepoints):
                    savepoints = True
                    continue
                if (is_retryable(exc) or isinstance(exc, _Retry)) and conflicts < MAX_CONFLICT_RETRIES:
                    conflicts += 1
                    continue
                if len(batch) > 1 and isinstance(exc, psycopg.Error):
                    for job in batch:  # find the function at fault: one at a time
                        self._commit_group([job])
                    return
                fault = storage_error(exc)
                refused = request_refused(exc) if fault is None else None
                if fault is not None:
                    self._on_fault(fault)
                elif refused is None:
                    log.error("group commit failed", exc_info=exc)
                self._deliver_soon([(j.future, False, fault or refused or exc) for j in batch], [], {})
                return
            self._down = False
            if wrote:
                self._on_clear()
            self._deliver_soon(outcomes, changes, revs, after)
            return

    def _attempt(self, batch: list[_Job], savepoints: bool) -> GroupResult:
        """Run the group through COMMIT on the writer's connection (connecting if needed)."""
        conn = self._connection()
        tenants = sorted({j.tenant for j in batch if j.tenant is not None})
        unknown = [t for t in tenants if t not in self._known]
        if unknown:  # committed on its own, so the lock below takes every row in order (no deadlock)
            conn.execute(_ENSURE, (unknown,))
            conn.commit()
            self._known.update(unknown)
        if USE_PIPELINE:
            with conn.pipeline():
                result = self._run_group(conn, batch, tenants, savepoints)
        else:
            result = self._run_group(conn, batch, tenants, savepoints)
        # Every statement has answered (the pipeline is synced): only COMMIT itself is left in doubt.
        if result[1] or result[3]:
            try:
                conn.commit()
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    raise _CommitUnknown() from exc
                raise
        else:
            conn.rollback()  # nothing written: nothing to make durable
        return result

    def _run_group(self, conn: psycopg.Connection, batch: list[_Job], tenants: list[str],
                   savepoints: bool) -> GroupResult:
        cur = conn.cursor(binary=True)
        base: dict[str, int] = {}
        if tenants:
            base = dict(cur.execute(_LOCK, (tenants,)).fetchall())
            if len(base) != len(tenants):  # a counter row vanished (tables emptied under us)
                self._known.clear()
                raise _Retry()
        revs = dict(base)
        outcomes: list[Outcome] = []
        changes: list[Change] = []
        after: list[Callable[[], None]] = []
        wrote = False
        alone = len(batch) == 1
        for job in batch:
            tenant = job.tenant
            tx = WriteTxnPG(cur, tenant, self._clock.now(), revs.get(tenant, 0), savepoints)  # type: ignore[arg-type]
            try:
                result = job.fn(tx)
            except psycopg.Error:
                raise  # the transaction may be gone already: fail the group
            except Exception as exc:
                if alone:  # nothing else to keep: the whole transaction is rolled back
                    return [(job.future, False, exc)], [], {}, False, []
                if tx.dirty and not savepoints:
                    raise _NeedsSavepoints() from exc
                tx.undo()
                outcomes.append((job.future, False, exc))
                continue
            tx.keep()
            wrote = wrote or tx.wrote
            if tenant is not None:
                revs[tenant] = tx.rev
            changes.extend(tx.changes)
            if tx.after:
                after.extend(tx.after)
            outcomes.append((job.future, True, result))
        taken = {t: r for t, r in revs.items() if r != base[t]}
        if taken:
            for t, r in taken.items():
                cur.execute(_SET_REV, (r, t))
        if changes:
            seq: dict[tuple[str, int], int] = {}
            rows = []
            for c in changes:
                n = seq[c.tenant, c.rev] = seq.get((c.tenant, c.rev), 0) + 1  # write order within a revision
                rows.append((c.tenant, c.rev, n, c.namespace, c.key, c.type, c.value, c.prev_value, c.version, c.ts))
            cur.execute(_RECORD, [list(column) for column in zip(*rows)])
        return outcomes, changes, taken, wrote, after

    # connection

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._discard()
            try:
                self._conn = self._connect()
            except psycopg.Error as exc:
                raise _ConnectFailed() from exc
        return self._conn

    def _lost(self, exc: BaseException) -> bool:
        if isinstance(exc, _ConnectFailed):
            return True
        conn = self._conn
        return isinstance(exc, psycopg.Error) and (conn is None or conn.closed or conn.broken)

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def _rollback(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
        except psycopg.Error:
            self._discard()  # a connection that cannot roll back is not reused

    # back on the loop

    def _deliver_soon(self, outcomes: list[Outcome], changes: list[Change], revs: dict[str, int],
                      after: Sequence[Callable[[], None]] = ()) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, outcomes, changes, revs, after)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    def _deliver(self, outcomes: list[Outcome], changes: list[Change], revs: dict[str, int],
                 after: Sequence[Callable[[], None]]) -> None:
        if revs:
            try:
                self._on_commit(changes, revs)
            except Exception:
                log.exception("commit listener failed")
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
