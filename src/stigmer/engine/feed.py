"""The change feed: turns commits into contiguous, ordered change sets for the hub, per tenant.

It owns the delivered position of every tenant. A local commit whose first revision follows that
position is handed over a little later, after the writer's acknowledgements (which the store resolves
in the same callback) have gone out; anything else (a remote commit heard by doorbell or by the periodic
tick, a local commit that overtook a remote one) makes the feed read the changes table from the
delivered position. So revision N+1 is never delivered before N, and a lost doorbell or a dropped
listener connection costs latency (until the next tick), never an event. Tenants nobody watches are
not read at all: their position just moves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .types import Change, ChangeFilter, ChangeSet, group

if TYPE_CHECKING:
    from ..store.base import ChangeLog, Store
    from .changes import ChangeHub

log = logging.getLogger("stigmer.feed")

PAGE = 1000  # change rows read per query while catching up


class ChangeFeed:
    def __init__(self, store: "Store", hub: "ChangeHub"):
        self._store = store
        self._hub = hub
        self._delivered: dict[str, int] = {}
        self._wanted: dict[str, int] = {}  # the newest revision known committed, per tenant being read
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, list[ChangeSet]] = {}  # local commits not yet handed to the hub
        store.set_listener(self)

    def delivered(self, tenant: str) -> int | None:
        return self._delivered.get(tenant)

    def follow(self, tenant: str, committed: int) -> None:
        """A watcher of `tenant` arrives; `committed` was read from the store just now."""
        self._delivered.setdefault(tenant, committed)

    # what the store tells

    def committed(self, changes: list[Change]) -> None:
        for tenant, sets in _by_tenant(changes).items():
            done = self._delivered.get(tenant)
            if done is None or not self._hub.watching(tenant):
                self._delivered[tenant] = max(done or 0, sets[-1].revision)
                continue
            fresh = [cs for cs in sets if cs.revision > done]
            if not fresh:
                continue  # already read from the table
            if tenant not in self._readers and _contiguous(done, fresh):
                self._delivered[tenant] = fresh[-1].revision
                self._hand_over(tenant, fresh)
            else:
                self._want(tenant, fresh[-1].revision)

    def _hand_over(self, tenant: str, sets: list[ChangeSet]) -> None:
        """Publish two loop turns from now: the store resolves the writers' futures right after telling
        us, and their tasks (which write the acknowledgements) run on the next turn. Sets pending for a
        tenant are always published before anything the table reader publishes for it (`_flush`)."""
        pending = self._pending.get(tenant)
        if pending is not None:
            pending.extend(sets)
            return
        self._pending[tenant] = list(sets)
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, self._flush, tenant)

    def _flush(self, tenant: str) -> None:
        sets = self._pending.pop(tenant, None)
        if sets:
            self._hub.publish(tenant, sets)

    def rang(self, tenant: str, rev: int) -> None:
        done = self._delivered.get(tenant)
        if done is None or not self._hub.watching(tenant):
            self._delivered[tenant] = max(done or 0, rev)
        elif rev > done:
            self._want(tenant, rev)

    # catching up from the changes table

    async def poll(self) -> None:
        """Ask the store where every watched tenant is, and catch up where it moved (the tick)."""
        tenants = self._hub.tenants()
        if tenants:
            for tenant, rev in (await self._store.log.revisions(tenants)).items():
                self.rang(tenant, rev)

    async def run(self, interval: float) -> None:
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await self.poll()
                failing = False
            except Exception as exc:  # the store is down: the next tick tries again
                if not failing:
                    log.warning("change feed cannot poll the store: %s", exc)
                failing = True

    async def settle(self) -> None:
        """Wait until every catch-up read in flight has finished and every local commit is handed over
        (for tests and shutdown)."""
        while self._readers or self._pending or self._hub.fanning:
            if self._readers:
                await asyncio.gather(*self._readers.values(), return_exceptions=True)
            else:
                await asyncio.sleep(0)

    def _want(self, tenant: str, rev: int) -> None:
        self._wanted[tenant] = max(self._wanted.get(tenant, 0), rev)
        if tenant not in self._readers:
            self._readers[tenant] = asyncio.get_running_loop().create_task(self._catch_up(tenant))

    async def _catch_up(self, tenant: str) -> None:
        try:
            while (done := self._delivered.get(tenant, 0)) < self._wanted.get(tenant, 0):
                sets, _ = await read_sets(self._store.log, ChangeFilter(tenant), done, PAGE)
                self._flush(tenant)  # what was handed over before this read goes out first
                if not sets or not _contiguous(done, sets):
                    # Compaction removed what the position needs: watchers re-read on their own and
                    # get an explicit `compacted` answer if their history is gone.
                    self._delivered[tenant] = max(self._wanted[tenant], sets[-1].revision if sets else 0)
                    self._hub.resync(tenant, self._delivered[tenant])
                    continue
                self._delivered[tenant] = sets[-1].revision
                self._hub.publish(tenant, sets)
        except Exception as exc:  # storage trouble: the next doorbell or tick tries again
            log.warning("change feed cannot read tenant %r: %s", tenant, exc)
        finally:
            del self._readers[tenant]


async def read_sets(log: "ChangeLog", flt: ChangeFilter, after: int, page: int) -> tuple[list[ChangeSet], bool]:
    """Whole change sets after `after`, about `page` changes' worth, and whether more may follow.
    A revision is never cut: when one holds more changes than the page, it is read whole."""
    limit = page
    while True:
        changes = await log.read(flt, after, limit)
        sets = group(changes)
        if len(changes) < limit:
            return sets, False
        if len(sets) > 1:
            sets.pop()  # the page may have cut the last revision short
            return sets, True
        limit *= 2  # one revision fills the page: read again with room for all of it


def _contiguous(after: int, sets: list[ChangeSet]) -> bool:
    return all(cs.revision == after + i for i, cs in enumerate(sets, 1))


def _by_tenant(changes: list[Change]) -> dict[str, list[ChangeSet]]:
    out: dict[str, list[Change]] = {}
    for c in changes:
        out.setdefault(c.tenant, []).append(c)
    return {t: group(cs) for t, cs in out.items()}
