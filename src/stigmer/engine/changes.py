"""Change streams: subscribe to a key, a prefix or a namespace from a revision; replay, then live.

Every watcher gets change sets (all changes of one revision that match its filter) in revision order,
with no gap and no repeat. A watcher is fed live by the hub while it keeps up; if its buffer overflows
it is never cut off and never blocks the writer: it drops its buffer and catches up from the changes
table, then rejoins the live feed (etcd's synced / unsynced watchers). History removed by compaction is
reported as `Compacted`, never skipped silently.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..store.base import Store
from .errors import Compacted, FutureRevision
from .feed import ChangeFeed
from .kv import MAX_REVISION, check_revision
from .types import ChangeFilter, ChangeSet, RevisionInfo, group

# Tunables, module attributes so tests can shrink them.
CATCHUP_PAGE = 1000  # changes read from history per query


class Watcher:
    """One subscription: call `next(timeout)`, or `poll()` for what is already at hand."""

    __slots__ = ("hub", "filter", "last", "_buffer", "_limit", "_catch_up", "_ready", "_wakeup", "closed")

    def __init__(self, hub: "ChangeHub", flt: ChangeFilter, after: int, buffer: int):
        self.hub = hub
        self.filter = flt
        self.last = after  # newest revision handed to the consumer
        self._buffer: deque[ChangeSet] = deque()
        self._limit = buffer
        self._catch_up = True  # start by replaying history after `after`
        self._ready: deque[ChangeSet] = deque()  # read from history, not yet handed out
        self._wakeup = asyncio.Event()
        self.closed = False

    def offer(self, cs: ChangeSet) -> None:
        """Called by the hub on the event loop; never blocks, never raises."""
        if len(self._buffer) >= self._limit:
            self._buffer.clear()
            self._catch_up = True
        else:
            self._buffer.append(cs)
        self._wakeup.set()

    def resync(self) -> None:
        """Drop the live buffer and catch up from the changes table (the feed saw a gap it cannot fill)."""
        self._buffer.clear()
        self._catch_up = True
        self._wakeup.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._remove(self)
            self._wakeup.set()

    async def _read_history(self) -> None:
        self._catch_up = False
        changes = await self.hub.store.log.read(self.filter, self.last, CATCHUP_PAGE)
        # Checked after the read: compaction moves the point and removes rows in one transaction, so a
        # read that missed rows is always followed by a point that says so.
        info = await self.hub.store.log.revision(self.filter.tenant)
        if self.last < info.compacted:
            raise Compacted(info.compacted + 1, info.current)
        sets = group(changes)
        if len(changes) >= CATCHUP_PAGE and len(sets) > 1:
            sets.pop()  # the page may have cut the last revision short
            self._catch_up = True
        elif len(changes) >= CATCHUP_PAGE:
            self._catch_up = True
        self._ready.extend(sets)

    def poll(self) -> ChangeSet | None:
        """The next change set already at hand, if any (no waiting, no history read)."""
        while self._ready:
            cs = self._ready.popleft()
            if cs.revision > self.last:
                self.last = cs.revision
                return cs
        if self._catch_up:  # the live buffer is not contiguous with `last` until history is read
            return None
        while self._buffer:
            cs = self._buffer.popleft()
            if cs.revision > self.last:
                self.last = cs.revision
                return cs
        return None

    async def next(self, timeout: float | None = None) -> ChangeSet | None:
        """The next change set, or None when `timeout` passes first or the watcher is closed.
        Raises Compacted when the history it needs is gone."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.closed:
            if not self._ready and self._catch_up:
                await self._read_history()
            cs = self.poll()
            if cs is not None:
                return cs
            if self._catch_up:
                continue
            self._wakeup.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):  # no extra task per wake-up, unlike wait_for
                    await self._wakeup.wait()
            except TimeoutError:
                return None
        return None


class ChangeHub:
    """Fans the feed's change sets out to the watchers of their tenant."""

    def __init__(self, store: Store, buffer: int = 256):
        self.store = store
        self.buffer = buffer
        self._by_tenant: dict[str, set[Watcher]] = {}
        self.feed = ChangeFeed(store, self)

    async def revision(self, tenant: str) -> RevisionInfo:
        """The tenant's newest committed revision and compaction point, from the store."""
        return await self.store.log.revision(tenant)

    async def watch(self, flt: ChangeFilter, after: int | None = None) -> Watcher:
        """Changes with revision > `after` (default: from now on). Raises at once: InvalidArgument when
        `after` is not a non-negative integer, FutureRevision when it is beyond the current revision
        (however large: such a number never reaches the store), Compacted when the history after it is gone."""
        if after is not None and not (isinstance(after, int) and after > MAX_REVISION):
            check_revision(after, "after")
        info = await self.store.log.revision(flt.tenant)
        start = info.current if after is None else after
        if start > info.current:
            raise FutureRevision(start, info.current)
        if start < info.compacted:
            raise Compacted(info.compacted + 1, info.current)
        self.feed.follow(flt.tenant, info.current)
        w = Watcher(self, flt, start, self.buffer)
        self._by_tenant.setdefault(flt.tenant, set()).add(w)
        return w

    def watching(self, tenant: str) -> bool:
        return tenant in self._by_tenant

    def tenants(self) -> list[str]:
        return list(self._by_tenant)

    def resync(self, tenant: str) -> None:
        for w in self._by_tenant.get(tenant, ()):
            w.resync()

    def _remove(self, w: Watcher) -> None:
        group = self._by_tenant.get(w.filter.tenant)
        if group is not None:
            group.discard(w)
            if not group:
                del self._by_tenant[w.filter.tenant]

    def close_all(self) -> None:
        """Close every watcher (server shutdown): pending `next()` calls return None."""
        for watchers in list(self._by_tenant.values()):
            for w in list(watchers):
                w.close()

    @property
    def watcher_count(self) -> int:
        return sum(len(g) for g in self._by_tenant.values())

    def publish(self, tenant: str, sets: list[ChangeSet]) -> None:
        """Hand contiguous change sets of one tenant (from the feed) to its watchers."""
        watchers = self._by_tenant.get(tenant)
        if not watchers:
            return
        for cs in sets:
            for w in list(watchers):
                matched = [c for c in cs.changes if w.filter.matches(c)]
                if matched:
                    w.offer(cs if len(matched) == len(cs.changes) else ChangeSet(cs.revision, matched))
