"""Idempotency keys: a repeated request returns the first answer, and concurrent duplicates run once.

Rules (docs/idempotency.md):
- a record is (tenant, scope, key) -> the fingerprint of the first request and, once it succeeded, its
  answer (status, body, replayable headers), kept until `expires_at` (the retention after the answer);
  an expired record is as good as absent (the sweeper purges it);
- the same key with the same fingerprint replays the stored answer; with another fingerprint it is
  IdempotencyConflict, and nothing runs;
- only a success (2xx) is stored: a refused request releases the key, so a corrected retry may use it.

Two faces:
- in a mutation (`check_in` / `record_in`): the check and the record commit with the caller's own writes.
  Mutations of one tenant are serialised (store/base.py), so concurrent duplicates run once, and a crash
  cannot separate the write from its record;
- around any handler (`Idempotency.run`): a mutation reserves the key (a `pending` record), the handler
  runs, a second mutation stores its answer (or releases the key). A duplicate that finds the key pending
  waits for the first, up to WAIT_SECONDS, then replays. A running request renews its reservation every
  RENEW_SECONDS; one not renewed for RECLAIM_SECONDS (its request crashed) is taken over. A crash after
  the handler's write committed but before the answer was stored leaves a reservation that a retry
  reclaims after RECLAIM_SECONDS and runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Awaitable, Callable, Iterable, TypeVar

import msgspec

from ..store.base import Store, WriteTxn
from .errors import IdempotencyConflict, IdempotencyInProgress, InvalidArgument
from .ids import new_id
from .types import IdempotencyRecord

log = logging.getLogger("stigmer.idempotency")

T = TypeVar("T")

MAX_KEY_CHARS = 255
DEFAULT_RETENTION = 86_400.0
RECLAIM_SECONDS = 60.0  # a reservation not renewed for this long (store clock) belongs to a crashed request
RENEW_SECONDS = 15.0  # a running request renews its reservation this often, so a slow one is never reclaimed
WAIT_SECONDS = 10.0  # how long a duplicate waits for the first request (module attribute: tests shrink it)
FIRST_PAUSE, MAX_PAUSE = 0.002, 0.1  # a waiter re-reads the record this often (doubling): another replica's answer
PURGE_BATCH = 500
PENDING, DONE = "pending", "done"


class Replay(msgspec.Struct, frozen=True):
    """A stored answer: what the first request answered, to answer again."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def validate_key(key: str | None) -> str | None:
    """The key of an `Idempotency-Key` header: None when absent or empty, InvalidArgument when too long."""
    if not key:
        return None
    if len(key) > MAX_KEY_CHARS:
        raise InvalidArgument(f"Idempotency-Key must be at most {MAX_KEY_CHARS} characters",
                              field="Idempotency-Key", limit=MAX_KEY_CHARS)
    return key


def fingerprint(*parts: bytes | str) -> bytes:
    """SHA-256 of the parts, each length-prefixed (so ("ab", "c") and ("a", "bc") differ)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.digest()


def canonical_json(value: Any) -> bytes:
    """JSON whose object members are sorted: two requests that differ only in member order are one."""
    return msgspec.json.encode(value, order="sorted")


def _conflict() -> IdempotencyConflict:
    return IdempotencyConflict("Idempotency-Key was already used for a different request")


def _in_progress() -> IdempotencyInProgress:
    return IdempotencyInProgress("A request with this Idempotency-Key is currently being processed; retry shortly")


def _live(tx: WriteTxn, scope: str, key: str) -> IdempotencyRecord | None:
    r = tx.idempotency.get(scope, key)
    return None if r is None or r.expires_at <= tx.now else r


def _answer(r: IdempotencyRecord, fingerprint: bytes) -> Replay:
    """A finished record's answer for this request, or IdempotencyConflict for another request."""
    if r.fingerprint != fingerprint:
        raise _conflict()
    return Replay(r.status, r.body, r.headers)


def _abandoned(r: IdempotencyRecord, now: float) -> bool:
    return r.state == PENDING and r.created_at + RECLAIM_SECONDS <= now


# the in-transaction face


def check_in(tx: WriteTxn, scope: str, key: str, fingerprint: bytes) -> Replay | None:
    """Inside a mutation, before it decides anything: the stored answer to replay, None to go on (no live
    record, or an abandoned reservation), IdempotencyConflict for another request's key, and
    IdempotencyInProgress while a live reservation of the same request is held."""
    r = _live(tx, scope, key)
    if r is None:
        return None
    if r.fingerprint != fingerprint:
        raise _conflict()
    if r.state == DONE:
        return _answer(r, fingerprint)
    if _abandoned(r, tx.now):
        return None
    raise _in_progress()


def record_in(tx: WriteTxn, scope: str, key: str, fingerprint: bytes, status: int, body: bytes,
              headers: Iterable[tuple[str, str]] = (), *, retention: float = DEFAULT_RETENTION) -> None:
    """Store the answer in the same mutation as the writes it answers for."""
    tx.idempotency.put(IdempotencyRecord(tx.tenant, scope, key, fingerprint, DONE, status, bytes(body),
                                         tuple((str(k), str(v)) for k, v in headers), tx.now, tx.now + retention))


# the reservation face (mutations)


def reserve_in(tx: WriteTxn, scope: str, key: str, fingerprint: bytes, owner: str,
               hold: float) -> Replay | IdempotencyRecord:
    """The stored answer, or the pending record now in force: ours (`owner`) if we took the key."""
    r = _live(tx, scope, key)
    if r is not None:
        if r.fingerprint != fingerprint:
            raise _conflict()
        if r.state == DONE:
            return _answer(r, fingerprint)
        if not _abandoned(r, tx.now):
            return r
    mine = IdempotencyRecord(tx.tenant, scope, key, fingerprint, PENDING, 0, b"", (), tx.now, tx.now + hold, owner)
    tx.idempotency.put(mine)
    return mine


def renew_in(tx: WriteTxn, scope: str, key: str, owner: str) -> bool:
    """Mark our reservation alive now (its `created_at`, and an expiry no sooner than a reclaim would come);
    False if it is no longer ours."""
    r = tx.idempotency.get(scope, key)
    if r is None or r.state != PENDING or r.owner != owner:
        return False
    tx.idempotency.put(msgspec.structs.replace(r, created_at=tx.now,
                                               expires_at=max(r.expires_at, tx.now + RECLAIM_SECONDS)))
    return True


def complete_in(tx: WriteTxn, scope: str, key: str, owner: str, answer: Replay, retention: float) -> bool:
    """Turn our reservation into the stored answer; False if it is no longer ours (reclaimed)."""
    r = tx.idempotency.get(scope, key)
    if r is None or r.state != PENDING or r.owner != owner:
        return False
    tx.idempotency.put(msgspec.structs.replace(r, state=DONE, status=answer.status, body=answer.body,
                                               headers=answer.headers, expires_at=tx.now + retention, owner=""))
    return True


def release_in(tx: WriteTxn, scope: str, key: str, owner: str) -> None:
    r = tx.idempotency.get(scope, key)
    if r is not None and r.state == PENDING and r.owner == owner:
        tx.idempotency.delete(scope, key)


def _stored(answer: Any) -> Replay | None:
    return answer if isinstance(answer, Replay) else None


def _captured(capture: Callable[[Any], Replay | None], answer: Any) -> Replay | None:
    try:
        return capture(answer)
    except Exception:  # an answer that cannot be stored is not stored; the key is released
        log.exception("could not capture an answer for its idempotency record")
        return None


class Idempotency:
    """Idempotency keys over a store, records kept `retention` seconds after their answer."""

    def __init__(self, store: Store, retention: float = DEFAULT_RETENTION):
        self.store = store
        self.retention = retention
        self._waiting: dict[tuple[str, str, str], set[asyncio.Future[None]]] = {}
        self._finishing: set[asyncio.Future] = set()  # completions of handlers whose caller left

    # the in-transaction face, with this instance's retention

    def check_in(self, tx: WriteTxn, scope: str, key: str, fingerprint: bytes) -> Replay | None:
        return check_in(tx, scope, key, fingerprint)

    def record_in(self, tx: WriteTxn, scope: str, key: str, fingerprint: bytes, status: int, body: bytes,
                  headers: Iterable[tuple[str, str]] = ()) -> None:
        record_in(tx, scope, key, fingerprint, status, body, headers, retention=self.retention)

    async def get(self, tenant: str, scope: str, key: str) -> IdempotencyRecord | None:
        """The live record, or None."""
        r = await self.store.idempotency.get(tenant, scope, key)
        return None if r is None or r.expires_at <= self.store.clock.now() else r

    # around a handler

    async def run(self, tenant: str, scope: str, key: str, fingerprint: bytes, handler: Callable[[], Awaitable[T]],
                  capture: Callable[[T], Replay | None] = _stored) -> Replay | T:
        """Run `handler` once per (key, fingerprint): its answer, or the stored answer of the first run.
        `capture(answer)` says what to store (None: nothing, the key is released); only 2xx is stored."""
        if validate_key(key) is None:
            raise InvalidArgument("Idempotency-Key must not be empty", field="Idempotency-Key")
        found = await self.get(tenant, scope, key)
        if found is not None and found.state == DONE:  # a repeat of a finished request costs a read, no write
            return _answer(found, fingerprint)
        owner = new_id()  # outside the mutation: a rerun reserves under the same id
        hold = max(self.retention, RECLAIM_SECONDS)
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            got = await self.store.submit(tenant, lambda tx: reserve_in(tx, scope, key, fingerprint, owner, hold))
            if isinstance(got, Replay):
                return got
            if got.owner == owner:
                return await self._execute(tenant, scope, key, owner, handler, capture)
            replay = await self._wait(tenant, scope, key, fingerprint, got.owner, deadline)
            if replay is not None:
                return replay

    async def _wait(self, tenant: str, scope: str, key: str, fingerprint: bytes, holder: str,
                    deadline: float) -> Replay | None:
        """Wait while `holder` keeps the key: its stored answer, or None when the key is free to reserve."""
        loop = asyncio.get_running_loop()
        wake = (tenant, scope, key)
        pause = FIRST_PAUSE
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _in_progress()
            woken: asyncio.Future[None] = loop.create_future()
            self._waiting.setdefault(wake, set()).add(woken)  # before the read: no wake-up after it is missed
            try:
                r = await self.get(tenant, scope, key)
                if r is None or r.owner != holder or _abandoned(r, self.store.clock.now()):
                    return _answer(r, fingerprint) if r is not None and r.state == DONE else None
                await asyncio.wait({woken}, timeout=min(pause, remaining))
                pause = min(pause * 2, MAX_PAUSE)
            finally:
                waiters = self._waiting.get(wake)
                if waiters is not None:
                    waiters.discard(woken)
                    if not waiters:
                        del self._waiting[wake]

    def _wake(self, tenant: str, scope: str, key: str) -> None:
        for woken in self._waiting.pop((tenant, scope, key), ()):
            if not woken.done():
                woken.set_result(None)

    async def _execute(self, tenant: str, scope: str, key: str, owner: str, handler: Callable[[], Awaitable[T]],
                       capture: Callable[[T], Replay | None]) -> T:
        alive = asyncio.ensure_future(self._keep_alive(tenant, scope, key, owner))
        task = asyncio.ensure_future(handler())
        try:
            answer = await asyncio.shield(task)  # a caller that leaves does not stop the write it started
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._finish_later(tenant, scope, key, owner, done, capture, alive))
            raise
        except BaseException:
            await self._finish(tenant, scope, key, owner, None, alive)
            raise
        await self._finish(tenant, scope, key, owner, _captured(capture, answer), alive)
        return answer

    async def _keep_alive(self, tenant: str, scope: str, key: str, owner: str) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                if not await self.store.submit(tenant, lambda tx: renew_in(tx, scope, key, owner)):
                    return
            except Exception as exc:  # the next round tries again; reclaim waits RECLAIM_SECONDS
                log.warning("could not renew the idempotency reservation %r: %s", key, exc)

    async def _finish(self, tenant: str, scope: str, key: str, owner: str, answer: Replay | None,
                      alive: asyncio.Future) -> None:
        """Store a 2xx answer, release the key otherwise; a failure here leaves the reservation to be
        reclaimed (the answer itself already went out, or goes out now)."""
        alive.cancel()
        try:
            if answer is not None and 200 <= answer.status < 300:
                await self.store.submit(tenant, lambda tx: complete_in(tx, scope, key, owner, answer, self.retention))
            else:
                await self.store.submit(tenant, lambda tx: release_in(tx, scope, key, owner))
        except Exception as exc:
            log.warning("could not finish the idempotency record %r: %s", key, exc)
        finally:
            self._wake(tenant, scope, key)

    def _finish_later(self, tenant: str, scope: str, key: str, owner: str, done: asyncio.Future,
                      capture: Callable[[Any], Replay | None], alive: asyncio.Future) -> None:
        answer = None if done.cancelled() or done.exception() is not None else _captured(capture, done.result())
        finishing = asyncio.ensure_future(self._finish(tenant, scope, key, owner, answer, alive))
        self._finishing.add(finishing)
        finishing.add_done_callback(self._finishing.discard)


async def purge_expired(store: Store, limit: int = PURGE_BATCH) -> int:
    """Delete every expired record, `limit` at a time; return how many."""
    total = 0
    while True:
        n = await store.idempotency.purge(store.clock.now(), limit)
        total += n
        if n < limit:
            return total
