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
import msgspec

from ..store.base import Change, ChangeFilter, Store
from .errors import Compacted, FutureRevision
from .kv import MAX_REVISION, check_revision

# Tunables, module attributes so tests can shrink them.
CATCHUP_PAGE = 1000  # changes read from history per query


class ChangeSet(msgspec.Struct, frozen=True):
    revision: int
    changes: list[Change]


def _group(changes: list[Change]) -> list[ChangeSet]:
    sets: list[ChangeSet] = []
    for c in changes:
        if sets and sets[-1].revision == c.rev:
            sets[-1].changes.append(c)
        else:
            sets.append(ChangeSet(c.rev, [c]))
    return sets


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

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._remove(self)
            self._wakeup.set()

    def _check_compacted(self) -> None:
        info = self.hub.store.revision(self.filter.tenant)
        if self.last < info.compacted:
            raise Compacted(info.compacted + 1, info.current)

    async def _read_history(self) -> None:
        self._catch_up = False
        self._check_compacted()
        changes = await self.hub.store.changes(self.filter, self.last, CATCHUP_PAGE)
        self._check_compacted()  # compaction may have run during the read
        sets = _group(changes)
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
    """Fans each commit's changes out to the watchers of its tenant."""

    def __init__(self, store: Store, buffer: int = 256):
        self.store = store
        self.buffer = buffer
        self._by_tenant: dict[str, set[Watcher]] = {}
        store.set_listener(self.publish)

    def watch(self, flt: ChangeFilter, after: int | None = None) -> Watcher:
        """Changes with revision > `after` (default: from now on). Raises at once: InvalidArgument when
        `after` is not a non-negative integer, FutureRevision when it is beyond the current revision
        (however large: such a number never reaches the store), Compacted when the history after it is gone."""
        info = self.store.revision(flt.tenant)
        if after is not None and not (isinstance(after, int) and after > MAX_REVISION):
            check_revision(after, "after")
        start = info.current if after is None else after
        if start > info.current:
            # A history read may have handed out a commit that is not published yet: ask the database.
            committed = self.store.committed_revision(flt.tenant)
            if start > committed:
                raise FutureRevision(start, committed)
        if start < info.compacted:
            raise Compacted(info.compacted + 1, info.current)
        w = Watcher(self, flt, start, self.buffer)
        self._by_tenant.setdefault(flt.tenant, set()).add(w)
        return w

    def _remove(self, w: Watcher) -> None:
        group = self._by_tenant.get(w.filter.tenant)
        if group is not None:
            group.discard(w)
            if not group:
                del self._by_tenant[w.filter.tenant]

    def close_all(self) -> None:
        """Close every watcher (server shutdown): pending `next()` calls return None."""
        for group in list(self._by_tenant.values()):
            for w in list(group):
                w.close()

    @property
    def watcher_count(self) -> int:
        return sum(len(g) for g in self._by_tenant.values())

    def publish(self, changes: list[Change]) -> None:
        for cs in _group(changes):
            watchers = self._by_tenant.get(cs.changes[0].tenant)
            if not watchers:
                continue
            for w in list(watchers):
                matched = [c for c in cs.changes if w.filter.matches(c)]
                if matched:
                    w.offer(cs if len(matched) == len(cs.changes) else ChangeSet(cs.revision, matched))
