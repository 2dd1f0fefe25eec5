"""The webhook outbox on SQLite: events are written inside the mutation that reports them; claims and
outcomes are internal writes through the one writer, which is what makes a claim atomic here."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..base import WebhookEvent, WebhookOutcome
from ..webhook_rows import COLUMNS, PENDING_COUNT, WIDTH, counts_of, event_of, oldest_first, row_of
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

_GET = f"SELECT {COLUMNS} FROM webhook_events WHERE tenant = ? AND id = ?"
_COUNTS = "SELECT status, count(*), min(created_at) FROM webhook_events WHERE tenant = ? GROUP BY status"
_INSERT = f"INSERT INTO webhook_events ({COLUMNS}) VALUES ({', '.join('?' * WIDTH)})"
_DUE = "SELECT 1 FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= ? LIMIT 1"
_CLAIM = ("UPDATE webhook_events SET claim = ?, last_attempt_at = ?, next_attempt_at = ? WHERE id IN"
          " (SELECT id FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY created_at, id"
          f" LIMIT ?) RETURNING {COLUMNS}")
_SETTLE = ("UPDATE webhook_events SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, http_status = ?,"
           " delivered_at = ?, claim = NULL WHERE id = ? AND claim = ?")
_PURGE = ("DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events"
          " WHERE status <> 'pending' AND created_at < ? LIMIT ?)")
_DELETE_SUBJECT = "DELETE FROM webhook_events WHERE tenant = ? AND subject_id = ?"
_DELETE_SUBJECT_OF = _DELETE_SUBJECT + " AND tenant_id = ?"




class SQLiteWebhooks:
    """`store.webhooks`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def get(self, tenant: str, event_id: str) -> WebhookEvent | None:
        try:
            row = self._store.read_conn.execute(_GET, (tenant, event_id)).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None
        return None if row is None else event_of(row)

    async def counts(self, tenant: str) -> tuple[dict[str, int], float | None]:
        rows = await self._store.in_pool(_COUNTS, (tenant,))
        return counts_of(rows)

    async def count_pending(self) -> int:
        return (await self._store.in_pool(PENDING_COUNT, ()))[0][0]

    async def claim(self, now: float, until: float, claim: str, limit: int) -> list[WebhookEvent]:
        if not await self._store.in_pool(_DUE, (now,)):  # an idle outbox costs no write
            return []
        rows = await self._store.submit_internal(
            lambda tx: tx.conn.execute(_CLAIM, (claim, now, until, now, limit)).fetchall())
        return oldest_first(rows)

    async def settle(self, outcomes: list[WebhookOutcome]) -> int:
        def write(tx) -> int:
            return sum(tx.conn.execute(_SETTLE, (o.status, o.attempts, o.next_attempt_at, o.last_error, o.http_status,
                                                 o.delivered_at, o.id, o.claim)).rowcount for o in outcomes)

        return await self._store.submit_internal(write) if outcomes else 0

    async def purge(self, before: float, limit: int) -> int:
        return await self._store.submit_internal(lambda tx: tx.conn.execute(_PURGE, (before, limit)).rowcount)


class WebhookWrites:
    """`tx.webhooks`: the outbox rows of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def insert(self, e: WebhookEvent) -> None:
        if e.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may not write tenant {e.tenant!r}")
        self._conn.execute(_INSERT, row_of(e))

    def delete_subject(self, subject_id: str, tenant_id: str | None) -> int:
        if tenant_id is None:
            return self._conn.execute(_DELETE_SUBJECT, (self._tenant, subject_id)).rowcount
        return self._conn.execute(_DELETE_SUBJECT_OF, (self._tenant, subject_id, tenant_id)).rowcount
