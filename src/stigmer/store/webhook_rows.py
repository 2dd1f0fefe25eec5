"""Webhook outbox rows as both stores hold them: `data` is compact JSON text, times are epoch seconds."""

from __future__ import annotations

from ..engine.types import WebhookEvent

COLUMNS = ("tenant, id, event, tenant_id, data, subject_id, status, attempts, max_attempts, created_at,"
           " next_attempt_at, last_attempt_at, last_error, http_status, delivered_at, claim")
WIDTH = COLUMNS.count(",") + 1
PENDING_COUNT = "SELECT count(*) FROM webhook_events WHERE status = 'pending'"  # the backlog, all tenants (a partial index)


def event_of(row: tuple) -> WebhookEvent:
    return WebhookEvent(row[0], row[1], row[2], row[3], row[4].encode(), *row[5:])


def row_of(e: WebhookEvent) -> tuple:
    return (e.tenant, e.id, e.event, e.tenant_id, e.data.decode(), e.subject_id, e.status, e.attempts,
            e.max_attempts, e.created_at, e.next_attempt_at, e.last_attempt_at, e.last_error, e.http_status,
            e.delivered_at, e.claim)


def oldest_first(rows: list[tuple]) -> list[WebhookEvent]:
    """Claimed rows (RETURNING gives no order) in claim order: created_at, then id."""
    return sorted(map(event_of, rows), key=lambda e: (e.created_at, e.id))


def counts_of(rows: list[tuple]) -> tuple[dict[str, int], float | None]:
    """(status, count, min created_at) rows as `WebhookReads.counts` answers them."""
    oldest = next((first for status, _, first in rows if status == "pending"), None)
    return {status: n for status, n, _ in rows}, oldest
