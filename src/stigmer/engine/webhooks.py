"""Webhooks: a durable outbox written with the change it reports, and its delivery (docs/webhooks.md).

- **Enqueue** (`enqueue_in`) writes the event row inside the caller's mutation, so an event exists iff
  the change committed; with no URL configured nothing is written.
- **Claim.** A worker takes due events (pending, `next_attempt_at <= now`, oldest first) with one atomic
  claim that leases them: `next_attempt_at` moves to the lease's end, so an event whose worker died is due
  again then. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, SQLite through its one writer, so no two
  workers or replicas hold one event at once.
- **Attempt.** One POST of the §6.10 body, signed when a secret is set, bounded by the timeout. A 2xx
  delivers; anything else records `last_error` and `http_status`, and schedules the next attempt
  `30·4^(n−1) s × U(0.5, 1.5)` later, or after attempt `max_attempts` makes the event `dead_letter`. An
  outcome is recorded only while the event still carries the worker's claim.
- **Loop.** The worker drains every due event, in batches sent concurrently, then waits for an enqueue in
  this process (after its commit) or one poll interval, whichever comes first.
- **Retention.** About once an hour the worker deletes settled events (delivered or dead-lettered) older than
  the retention, a batch at a time so the writer is never held long; pending events are never deleted.

Delivery is at least once: a worker that dies after the POST, or whose outcome is not recorded before
its lease ends, leaves the event to be sent again. Receivers deduplicate by `X-Webhook-Id`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import random
import uuid
from collections.abc import Mapping
from typing import Any, Callable

import httpx
import msgspec

from ..clock import Clock
from ..support.outbound import LoopClient
from ..store.base import Store, WriteTxn
from . import values
from .types import WebhookEvent, WebhookOutcome

log = logging.getLogger("stigmer.webhooks")

PENDING, DELIVERED, DEAD_LETTER = "pending", "delivered", "dead_letter"
STATUSES = (PENDING, DELIVERED, DEAD_LETTER)
POLL_SECONDS = 1.0  # the longest a due event waits for a worker that was not woken (spec: at least once a second)
BATCH = 32  # events one claim takes, sent concurrently (the worker claims again until none is due)
LEASE_MARGIN = 60.0  # a claim's lease outlasts its attempts' timeout by this, for recording the outcomes
FIRST_DELAY, GROWTH = 30.0, 4  # backoff: 30 s, 2 min, 8 min, 32 min ... before jitter
ERROR_BODY_CHARS = 200  # of a failed answer's body, in `last_error`
ERROR_MESSAGE_CHARS = 500  # of a transport error's message: a row stays small whatever an exception says
PURGE_SECONDS = 3600.0  # how often settled events past the retention are deleted
PURGE_BATCH = 1000  # events one purge statement deletes: a short hold of the writer
READ_BYTES = 65_536  # of an answer's body read back (a small body read lets the connection be reused)


class WebhookStats(msgspec.Struct, frozen=True):
    pending: int
    delivered: int
    dead_letter: int
    total: int
    oldest_pending_age: float | None  # seconds since the oldest pending event was written (None: none)


def offset_time(ts: float) -> str:
    """The offset form of Statewave §3.4: `2026-04-29T12:00:00.123456+00:00`, no fraction at 0 µs."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


def body_of(e: WebhookEvent) -> bytes:
    """The POST body: the same bytes at every attempt, so a signature and a receiver's dedup agree."""
    return values.encode({"event": e.event, "timestamp": offset_time(e.created_at), "data": msgspec.Raw(e.data),
                          "tenant_id": e.tenant_id})


def signature(secret: str, body: bytes) -> str:
    """The `X-Signature` value: `sha256=` and the lower-hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempt: int, jitter: float) -> float:
    """Seconds from failed attempt `attempt` (1-based) to the next; `jitter` is U(0, 1)."""
    return FIRST_DELAY * GROWTH ** (attempt - 1) * (0.5 + jitter)


def subject_of(data: Mapping[str, Any]) -> str | None:
    """The subject a subject delete removes the event with (Statewave §5.11): `data.subject_id`, or the one
    id of a `data.subject_ids` that holds exactly one."""
    subject = data.get("subject_id")
    if isinstance(subject, str):
        return subject
    many = data.get("subject_ids")
    if isinstance(many, list) and len(many) == 1 and isinstance(many[0], str):
        return many[0]
    return None


class Webhooks:
    """The outbox of one process and its delivery worker (`run`). Share one per process; `aclose()` at
    shutdown. `rng` gives the backoff's U(0, 1) and `transport` the HTTP transport (tests pin both)."""

    def __init__(self, store: Store, url: str, secret: str = "", timeout: float = 5.0, max_attempts: int = 5, *,
                 retention_hours: float = 168.0, clock: Clock | None = None,
                 rng: Callable[[], float] = random.random, transport: httpx.AsyncBaseTransport | None = None):
        self.url = (url or "").strip()
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the webhook URL must be an http:// or https:// URL, got {self.url!r}")
        if timeout <= 0 or max_attempts < 1 or retention_hours < 0:
            raise ValueError("the webhook timeout must be positive, max_attempts at least 1, the retention >= 0")
        self.store = store
        self.clock = clock or store.clock
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.retention_hours = float(retention_hours)  # 0: settled events are kept for ever
        self._purged_at = float("-inf")
        self._secret = secret or ""
        self._rng = rng
        self._http = LoopClient(self.timeout + 1.0, transport)  # the attempt's asyncio.timeout fires first
        self._wake = asyncio.Event()

    @classmethod
    def from_settings(cls, store: Store, settings: Any, clock: Clock | None = None) -> Webhooks:
        return cls(store, settings.webhook_url, settings.webhook_secret, settings.webhook_timeout_seconds,
                   settings.webhook_max_attempts, retention_hours=settings.webhook_retention_hours, clock=clock)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def __repr__(self) -> str:  # neither the secret nor the URL's path and query (a receiver's token) is shown
        origin = httpx.URL(self.url).copy_with(path="/", query=None, fragment=None, userinfo=b"") if self.url else ""
        return (f"Webhooks(url={str(origin)!r}, timeout={self.timeout:g}, max_attempts={self.max_attempts}, "
                f"secret={'(set)' if self._secret else '(none)'})")

    # the outbox

    def enqueue_in(self, tx: WriteTxn, event: str, data: Mapping[str, Any], *, tenant_id: str | None) -> str | None:
        """Write an event inside the caller's mutation (it commits with the change, or not at all) and wake
        this process's worker after the commit; return its id, or None when webhooks are off (nothing is
        written). `tenant_id` is the body's: a surface's own tenancy inside the Stigmer tenant, or None."""
        if not self.enabled:
            return None
        if not event or not isinstance(event, str):
            raise ValueError("a webhook event needs a name")
        if not isinstance(data, Mapping):
            raise ValueError("a webhook event's data is a JSON object")
        event_id = str(uuid.uuid4())
        tx.webhooks.insert(WebhookEvent(tx.tenant, event_id, event, tenant_id, values.encode(dict(data)),
                                        subject_of(data), PENDING, 0, self.max_attempts, tx.now, tx.now))
        tx.after_commit(self.wake)
        return event_id

    def delete_subject_in(self, tx: WriteTxn, subject_id: str, tenant_id: str | None) -> int:
        """Delete a subject's events inside the caller's mutation (Statewave §5.11): those whose body
        `tenant_id` is `tenant_id`, or every one for None (the unscoped mode); return how many."""
        return tx.webhooks.delete_subject(subject_id, tenant_id)

    async def stats(self, tenant: str) -> WebhookStats:
        counts, oldest = await self.store.webhooks.counts(tenant)
        n = [counts.get(s, 0) for s in STATUSES]
        age = None if oldest is None else max(0.0, self.clock.now() - oldest)
        return WebhookStats(*n, sum(counts.values()), age)

    async def get(self, tenant: str, event_id: str) -> WebhookEvent | None:
        return await self.store.webhooks.get(tenant, event_id)

    async def backlog(self) -> int:
        """How many events (every tenant) wait for delivery."""
        return await self.store.webhooks.count_pending()

    # delivery

    def wake(self) -> None:
        """Have the worker look for due events now (on the event loop)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled. An attempt cut off by the cancel is left claimed: its lease runs out and
        another worker (or this one, restarted) sends it again."""
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
                await self.purge_if_due()
            except Exception:
                log.exception("webhook delivery failed; retrying in %g s", POLL_SECONDS)
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass

    async def deliver_due(self) -> int:
        """Claim and attempt every due event, a batch at a time, until none is due; return the attempts made."""
        made = 0
        while True:
            now = self.clock.now()
            claim = uuid.uuid4().hex
            events = await self.store.webhooks.claim(now, now + self.timeout + LEASE_MARGIN, claim, BATCH)
            if not events:
                return made
            outcomes = await asyncio.gather(*(self._attempt(e, claim) for e in events))
            await self.store.webhooks.settle(outcomes)
            made += len(events)

    async def purge_if_due(self) -> int:
        """Purge when a retention is set and the last purge is PURGE_SECONDS old; return how many went."""
        if not self.retention_hours or self.clock.now() - self._purged_at < PURGE_SECONDS:
            return 0
        return await self.purge_settled()

    async def purge_settled(self) -> int:
        """Delete every settled event older than the retention, a batch at a time; return how many went."""
        now = self.clock.now()
        before, gone = now - self.retention_hours * 3600, 0
        while (n := await self.store.webhooks.purge(before, PURGE_BATCH)) > 0:
            gone += n
        self._purged_at = now
        if gone:
            log.info("purged %d settled webhook event(s) older than %g h", gone, self.retention_hours)
        return gone

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _attempt(self, e: WebhookEvent, claim: str) -> WebhookOutcome:
        body = body_of(e)
        headers = {"Content-Type": "application/json", "X-Webhook-Id": e.id}
        if self._secret:
            headers["X-Signature"] = signature(self._secret, body)
        status: int | None
        try:
            async with asyncio.timeout(self.timeout):
                async with self._http.get().stream("POST", self.url, content=body, headers=headers) as response:
                    status = response.status_code
                    head = await _head(response, READ_BYTES)
            if 200 <= status < 300:
                error = None
            else:
                error = f"HTTP {status}: {head.decode('utf-8', 'replace')[:ERROR_BODY_CHARS]}"
        except TimeoutError:
            status, error = None, f"TimeoutError: no answer within {self.timeout:g} s"
        except Exception as exc:  # any failure to get an answer is the attempt's outcome, never the worker's
            status, error = None, f"{type(exc).__name__}: {str(exc)[:ERROR_MESSAGE_CHARS]}"
        now = self.clock.now()
        attempt = e.attempts + 1
        if error is None:
            return WebhookOutcome(e.id, claim, DELIVERED, attempt, None, None, status, now)
        if attempt >= e.max_attempts:
            return WebhookOutcome(e.id, claim, DEAD_LETTER, attempt, None, error, status, None)
        return WebhookOutcome(e.id, claim, PENDING, attempt, now + backoff(attempt, self._rng()), error,
                              status, None)

async def _head(response: httpx.Response, limit: int) -> bytes:
    """Up to the first `limit` bytes of a streamed body (the rest is not waited for)."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)
