"""Leases: a named resource held by one holder for a TTL, with a fencing token that only ever grows.

Rules (docs/leases.md):
- a lease is active while it is not released and `expires_at > now` (the store clock, at request time);
  at most one is active per (tenant, resource);
- acquire succeeds only when no lease is active; it issues token = 1 + the highest token ever issued for
  the resource (1 for the first) and a new lease id; the previous lease is superseded forever;
- renew and release name the resource's newest lease by its id or token (or both); any other lease is
  "not found". Renew sets `expires_at = now + ttl` (from now, never from the old expiry); renewing an
  expired, not yet superseded lease is LEASE_EXPIRED; releasing one succeeds;
- each lease is also the key `_leases/<resource>` (a reserved namespace, written only here) whose expiry
  is the lease's: acquire and renew put it, release deletes it, and expiry is its `expire` change (by the
  TTL sweeper, or on the spot by the next operation on the resource). So watchers, history and the
  change feed see every lease event, in the same revision order as every other write;
- a blocking acquire (`wait > 0`) queues: first come, first served per resource within this process.
  Only the head of a queue retries, on every change of the lease key (which reaches every replica
  through the change feed) and when the holder's lease is due to expire.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import msgspec

from ..store.base import Store, WriteTxn
from . import kv, states, values
from .changes import ChangeHub
from .ids import new_id
from .errors import Compacted, InvalidArgument, LeaseConflict, LeaseExpired, NotFound
from .types import ChangeFilter, LeaseRecord

log = logging.getLogger("stigmer.leases")

LEASES = "_leases"  # the reserved namespace that mirrors every active lease (engine/access.py)
MAX_HOLDER_CHARS = 255
RECHECK_SECONDS = 1.0  # a queue head retries at least this often (a doorbell lost, a clock moved by hand)


class LeaseLimits(msgspec.Struct, frozen=True):
    default_ttl: float = 60.0
    max_ttl: float = 3600.0
    max_wait: float = 30.0


class LeaseOutcome(msgspec.Struct, frozen=True):
    """A lease as a write left it, and the revision of that write (0 when it changed no key)."""

    lease: LeaseRecord
    revision: int


def _lease_value(r: LeaseRecord) -> bytes:
    return values.encode({"lease_id": r.id, "holder": r.holder, "fencing_token": r.token,
                          "created_at": r.created_at, "renewed_at": r.renewed_at, "expires_at": r.expires_at})


def _mirror(tx: WriteTxn, r: LeaseRecord) -> int:
    """Make `_leases/<resource>` say what the lease row says; return the revision taken (0: none).
    An expired mirror found here records its `expire` first (kv.live)."""
    current = kv.live(tx, LEASES, r.resource)
    if r.active(tx.now):
        op = kv.Op("put", LEASES, r.resource, value=_lease_value(r), ttl=r.expires_at - tx.now)
        return kv.write_in(tx, op, current).mod_rev  # type: ignore[union-attr]
    if current is None:
        return 0
    return kv.write_in(tx, kv.Op("delete", LEASES, r.resource), current).revision  # type: ignore[union-attr]


def _conflict(r: LeaseRecord) -> LeaseConflict:
    return LeaseConflict("the resource has an active lease", resource=r.resource, holder=r.holder,
                         fencing_token=r.token, expires_at=r.expires_at)


def _newest(tx: WriteTxn, resource: str, lease_id: str | None, token: int | None) -> LeaseRecord:
    """The resource's newest lease if it is the one named and not released; else NotFound."""
    r = tx.leases.get(resource)
    if (r is None or r.released_at is not None or (lease_id is not None and r.id != lease_id)
            or (token is not None and r.token != token)):
        raise NotFound("lease not found (unknown, released or superseded)", resource=resource)
    return r


def acquire_in(tx: WriteTxn, resource: str, holder: str, ttl: float, lease_id: str) -> LeaseOutcome:
    current = tx.leases.get(resource)
    if current is not None and current.active(tx.now):
        raise _conflict(current)  # before any write: a refused acquire changes nothing
    now = tx.now
    r = LeaseRecord(tx.tenant, resource, lease_id, holder, (current.token if current else 0) + 1, now, now, now + ttl)
    tx.leases.put(r)
    return LeaseOutcome(r, _mirror(tx, r))


def renew_in(tx: WriteTxn, resource: str, lease_id: str | None, token: int | None, ttl: float) -> LeaseOutcome:
    r = _newest(tx, resource, lease_id, token)
    if r.expires_at <= tx.now:
        raise LeaseExpired("the lease has expired", resource=resource, fencing_token=r.token, expires_at=r.expires_at)
    r = msgspec.structs.replace(r, renewed_at=tx.now, expires_at=tx.now + ttl)
    tx.leases.put(r)
    return LeaseOutcome(r, _mirror(tx, r))


def _named_by_id(tx: WriteTxn, lease_id: str) -> LeaseRecord:
    r = tx.leases.by_id(lease_id)
    if r is None or r.released_at is not None:
        raise NotFound("lease not found (unknown, released or superseded)", lease_id=lease_id)
    return r


def release_in(tx: WriteTxn, resource: str, lease_id: str | None, token: int | None) -> LeaseOutcome:
    r = msgspec.structs.replace(_newest(tx, resource, lease_id, token), released_at=tx.now)
    tx.leases.put(r)
    return LeaseOutcome(r, _mirror(tx, r))


def new_lease_id() -> str:
    return new_id()


class Leases:
    """Lease operations over a store; `hub` wakes blocking acquires when the lease key changes."""

    def __init__(self, store: Store, hub: ChangeHub, limits: LeaseLimits | None = None,
                 kv_limits: kv.Limits | None = None):
        self.store = store
        self.hub = hub
        self.limits = limits or LeaseLimits()
        self.kv_limits = kv_limits or kv.Limits()
        self._queues: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._giving_back: set[asyncio.Future] = set()  # releases of leases granted to waiters that left

    # validation, before anything reaches the writer

    def _resource(self, resource: str) -> None:
        limits = self.kv_limits
        if isinstance(resource, str) and resource.startswith(states.STATES + "/"):
            # a state key's lease (engine/states.py): its key may be 1024 characters, up to 4096 bytes
            limits = msgspec.structs.replace(limits, max_key_bytes=max(
                limits.max_key_bytes, len(states.lease_resource("")) + 4 * states.MAX_KEY_CHARS))
        try:
            kv.validate_key(resource, limits)
        except InvalidArgument as exc:
            raise InvalidArgument(exc.message.replace("key", "resource", 1), field="resource") from None

    def _ttl(self, ttl: float | None) -> float:
        if ttl is None:
            return self.limits.default_ttl
        if not values.is_number(ttl) or not 0 < ttl <= self.limits.max_ttl:
            raise InvalidArgument(f"ttl must be a positive number of seconds, at most {self.limits.max_ttl:g}",
                                  field="ttl", limit=self.limits.max_ttl)
        return float(ttl)

    def _named(self, lease_id: str | None, token: int | None) -> None:
        if lease_id is None and token is None:
            raise InvalidArgument("name the lease: its lease_id or its fencing_token", field="lease_id")
        if lease_id is not None and (not isinstance(lease_id, str) or not lease_id):
            raise InvalidArgument("lease_id must be a non-empty string", field="lease_id")
        if token is not None and (not isinstance(token, int) or isinstance(token, bool) or token < 1):
            raise InvalidArgument("fencing_token must be a positive integer", field="fencing_token")

    # reads

    async def get(self, tenant: str, resource: str) -> LeaseRecord | None:
        """The resource's newest lease (active or not), or None if it never had one."""
        self._resource(resource)
        return await self.store.leases.get(tenant, resource)

    def active(self, r: LeaseRecord) -> bool:
        return r.active(self.store.clock.now())

    # writes

    async def acquire(self, tenant: str, resource: str, holder: str, ttl: float | None = None,
                      wait: float = 0.0) -> LeaseOutcome:
        """Take the resource's lease, or raise LeaseConflict. With `wait` > 0, queue behind the other
        waiters of this process for up to `wait` seconds."""
        self._resource(resource)
        if not isinstance(holder, str) or not 1 <= len(holder) <= MAX_HOLDER_CHARS:
            raise InvalidArgument(f"holder must be a string of 1-{MAX_HOLDER_CHARS} characters", field="holder")
        ttl = self._ttl(ttl)
        if not values.is_number(wait) or not 0 <= wait <= self.limits.max_wait:
            raise InvalidArgument(f"wait must be 0-{self.limits.max_wait:g} seconds", field="wait",
                                  limit=self.limits.max_wait)
        lease_id = new_lease_id()  # outside the mutation: a rerun issues the same id

        async def attempt() -> LeaseOutcome:
            return await self.store.submit(tenant, lambda tx: acquire_in(tx, resource, holder, ttl, lease_id))

        queue = self._queues.get((tenant, resource))
        if wait <= 0:
            if queue:  # first come, first served: the waiters are ahead of this caller
                raise LeaseConflict("the resource's lease is queued for by earlier callers",
                                    resource=resource, queued=len(queue))
            return await attempt()
        return await self._queued(tenant, resource, float(wait), attempt)

    async def _queued(self, tenant: str, resource: str, wait: float, attempt) -> LeaseOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        queue = self._queues.setdefault((tenant, resource), deque())
        turn: asyncio.Future[None] = loop.create_future()
        queue.append(turn)
        if len(queue) == 1:
            turn.set_result(None)
        watcher = None
        try:
            await asyncio.wait({turn}, timeout=wait)
            if not turn.done():  # the wait ended behind other waiters
                current = await self.store.leases.get(tenant, resource)
                if current is not None and self.active(current):
                    raise _conflict(current)
                raise LeaseConflict("the wait ended behind earlier callers", resource=resource, queued=len(queue) - 1)
            flt = ChangeFilter(tenant, LEASES, key=resource)
            watcher = await self.hub.watch(flt)  # before the attempt: no change after it is missed
            while True:
                try:
                    return await self._attempt(tenant, attempt)
                except LeaseConflict as exc:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise
                    until_expiry = float(exc.details.get("expires_at", 0)) - self.store.clock.now()
                    pause = min(remaining, RECHECK_SECONDS, max(until_expiry, 0.0) + 0.001)
                    if watcher.closed:  # the server is shutting down
                        raise
                try:
                    await watcher.next(pause)
                except Compacted:
                    watcher.close()
                    watcher = await self.hub.watch(flt)
        finally:
            if watcher is not None:
                watcher.close()
            head = queue[0] is turn
            queue.remove(turn)
            if not queue:
                self._queues.pop((tenant, resource), None)
            elif head:
                queue[0].set_result(None)

    async def _attempt(self, tenant: str, attempt) -> LeaseOutcome:
        """One acquire attempt of a waiter; if the waiter is cancelled (its client left) while the attempt
        is in the writer, a lease it is granted after all is released at once rather than held for nobody."""
        task = asyncio.ensure_future(attempt())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._give_back(tenant, done))
            raise

    def _give_back(self, tenant: str, done: "asyncio.Future[LeaseOutcome]") -> None:
        if done.cancelled() or done.exception() is not None:
            return
        lease = done.result().lease
        release = asyncio.ensure_future(self.release(tenant, lease.resource, lease_id=lease.id))
        self._giving_back.add(release)
        release.add_done_callback(self._given_back)

    def _given_back(self, release: asyncio.Future) -> None:
        self._giving_back.discard(release)
        if not release.cancelled() and release.exception() is not None:
            log.warning("could not release a lease its waiter left: %s", release.exception())

    async def renew(self, tenant: str, resource: str, *, lease_id: str | None = None, token: int | None = None,
                    ttl: float | None = None) -> LeaseOutcome:
        self._resource(resource)
        self._named(lease_id, token)
        ttl = self._ttl(ttl)
        return await self.store.submit(tenant, lambda tx: renew_in(tx, resource, lease_id, token, ttl))

    async def renew_by_id(self, tenant: str, lease_id: str, ttl: float | None = None) -> LeaseOutcome:
        """Renew a lease named only by its id (the AgentState routes)."""
        ttl = self._ttl(ttl)
        return await self.store.submit(
            tenant, lambda tx: renew_in(tx, _named_by_id(tx, lease_id).resource, lease_id, None, ttl))

    async def release_by_id(self, tenant: str, lease_id: str) -> LeaseOutcome:
        return await self.store.submit(
            tenant, lambda tx: release_in(tx, _named_by_id(tx, lease_id).resource, lease_id, None))

    async def release(self, tenant: str, resource: str, *, lease_id: str | None = None,
                      token: int | None = None) -> LeaseOutcome:
        self._resource(resource)
        self._named(lease_id, token)
        return await self.store.submit(tenant, lambda tx: release_in(tx, resource, lease_id, token))
