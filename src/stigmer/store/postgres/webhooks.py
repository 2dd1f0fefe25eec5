"""The webhook outbox on PostgreSQL: events are written inside the mutation that reports them (under the
tenant's revision-counter lock); every replica's worker claims due events with one statement whose
`FOR UPDATE SKIP LOCKED` hands each row to one claimer, and records outcomes with another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import WebhookEvent, WebhookOutcome
from ..webhook_rows import COLUMNS, PENDING_COUNT, WIDTH, counts_of, event_of, oldest_first, row_of

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

_GET = f"SELECT {COLUMNS} FROM webhook_events WHERE tenant = %s AND id = %s"
_COUNTS = "SELECT status, count(*), min(created_at) FROM webhook_events WHERE tenant = %s GROUP BY status"
_INSERT = f"INSERT INTO webhook_events ({COLUMNS}) VALUES ({', '.join(['%s'] * WIDTH)})"
# A row another claimer has locked is skipped; one it has just claimed is re-checked after its lock is
# released (READ COMMITTED re-evaluates the WHERE on the new row version) and no longer due.
_CLAIM = ("UPDATE webhook_events SET claim = %s, last_attempt_at = %s, next_attempt_at = %s WHERE id IN"
          " (SELECT id FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= %s"
          f" ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}")
_SETTLE = (
    "UPDATE webhook_events e SET status = o.status, attempts = o.attempts, next_attempt_at = o.next_attempt_at,"
    " last_error = o.last_error, http_status = o.http_status, delivered_at = o.delivered_at, claim = NULL"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::float8[], %s::text[], %s::int[], %s::float8[])"
    " AS o(id, claim, status, attempts, next_attempt_at, last_error, http_status, delivered_at)"
    " WHERE e.id = o.id AND e.claim = o.claim"
)
_PURGE = ("DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events"
          " WHERE status <> 'pending' AND created_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)")
_DELETE_SUBJECT = ("WITH gone AS (DELETE FROM webhook_events WHERE tenant = %s AND subject_id = %s{} RETURNING 1)"
                   " SELECT count(*) FROM gone")
_DELETE_ALL = _DELETE_SUBJECT.format("")
_DELETE_OF = _DELETE_SUBJECT.format(" AND tenant_id = %s")


class PostgresWebhooks:
    """`store.webhooks`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, event_id: str) -> WebhookEvent | None:
        rows = await self._store.fetch(_GET, (tenant, event_id))
        return event_of(rows[0]) if rows else None

    async def counts(self, tenant: str) -> tuple[dict[str, int], float | None]:
        rows = await self._store.fetch(_COUNTS, (tenant,))
        return counts_of(rows)

    async def count_pending(self) -> int:
        return (await self._store.fetch(PENDING_COUNT))[0][0]

    async def claim(self, now: float, until: float, claim: str, limit: int) -> list[WebhookEvent]:
        rows = await self._store.fetch(_CLAIM, (claim, now, until, now, limit))  # one statement: one transaction
        return oldest_first(rows)

    async def settle(self, outcomes: list[WebhookOutcome]) -> int:
        if not outcomes:
            return 0
        columns = [list(c) for c in zip(*((o.id, o.claim, o.status, o.attempts, o.next_attempt_at, o.last_error,
                                           o.http_status, o.delivered_at) for o in outcomes))]

        async def run(conn) -> int:
            return (await conn.execute(_SETTLE, columns)).rowcount

        return await self._store.run(run)

    async def purge(self, before: float, limit: int) -> int:
        async def run(conn) -> int:
            return (await conn.execute(_PURGE, (before, limit))).rowcount

        return await self._store.run(run)


class WebhookWritesPG:
    """`tx.webhooks`: the outbox rows of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def insert(self, e: WebhookEvent) -> None:
        tx = self._tx
        tx.check_tenant(e.tenant)
        tx.write(_INSERT, row_of(e))

    def delete_subject(self, subject_id: str, tenant_id: str | None) -> int:
        tx = self._tx
        if tenant_id is None:
            tx.write(_DELETE_ALL, (tx.tenant, subject_id))
        else:
            tx.write(_DELETE_OF, (tx.tenant, subject_id, tenant_id))
        return tx.cur.fetchone()[0]  # type: ignore[index]
