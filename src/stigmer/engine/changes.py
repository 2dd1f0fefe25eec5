"""Change streams: subscribe to a key, a prefix or a namespace from a revision; replay, then live.

Every watcher gets change sets (all changes of one revision that match its filter) in revision order,
with no gap and no repeat. A watcher is fed live by the hub while it keeps up; if its buffer overflows
it is never cut off and never blocks the writer: it drops its buffer and catches up from the changes
table, then rejoins the live feed (etcd's synced / unsynced watchers). History removed by compaction is
reported as `Compacted`, never skipped silently.

A caught-up watcher with a `sink` (an SSE stream) is handed each change set straight from `publish`,
with no buffer and no task wake-up; the sink refuses when it cannot take it at once, and the set is
buffered instead. Watchers that need history are caught up together: one read per distinct filter of
a tenant, from the lowest position among them, shared by all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from ..store.base import Store
from .errors import Compacted, FutureRevision
from .feed import ChangeFeed, read_sets
from .kv import MAX_REVISION, check_revision
from .types import ChangeFilter, ChangeSet, RevisionInfo
from .watch_index import Bucket, TenantIndex

log = logging.getLogger("stigmer.watch")

# Tunables, module attributes so tests can shrink them.
CATCHUP_PAGE = 1000  # changes read from history per query
SLICE = 500  # watchers handed a change set per turn of the event loop


class Sink(Protocol):
    """Where a watcher's consumer takes change sets (an SSE stream)."""

    def push(self, cs: ChangeSet) -> bool:
        """Take `cs` now if possible (written out in order); False to have it buffered."""

    def push_run(self, sets: list[ChangeSet], i: int, shared: dict) -> bool:
        """Take `sets[i:]` at once, like `push`; `shared` caches what is built from them for other sinks."""

    def wake(self) -> None:
        """Something is waiting in the watcher (buffered sets, history, an error, the close)."""


class Watcher:
    """One subscription: call `next(timeout)`, or `poll()` for what is already at hand."""

    __slots__ = ("hub", "filter", "last", "sink", "closed", "error", "bucket", "_buffer", "_limit", "_ready",
                 "_behind", "_queued", "_stale", "_read_to", "_event")

    def __init__(self, hub: "ChangeHub", flt: ChangeFilter, after: int, buffer: int, behind: bool):
        self.hub = hub
        self.filter = flt
        self.last = after  # newest revision handed to the consumer
        self.sink: Sink | None = None
        self.closed = False
        self.error: BaseException | None = None  # raised to the consumer (Compacted)
        self.bucket = None  # its place in the tenant's index (set by TenantIndex.add)
        # Allocated only once something waits: an idle watcher holds no containers.
        self._buffer: deque[ChangeSet] | None = None  # live sets not yet handed out
        self._limit = buffer
        self._ready: deque[ChangeSet] | None = None  # read from history, not yet handed out
        self._behind = behind  # the live buffer is not contiguous with `last` until history is read
        self._queued = False  # waiting for the hub's next history read
        self._stale = False  # the buffer lost sets while a history read was running: read again
        self._read_to = after  # history read up to here
        self._event: asyncio.Event | None = None  # only for `next()` (long-poll, tests)

    @property
    def caught_up(self) -> bool:
        """Nothing waits: every published change set it matches has been handed out."""
        return not (self._behind or self._buffer or self._ready or self.error is not None)

    def offer(self, cs: ChangeSet) -> None:
        """Called by the hub on the event loop; never blocks, never raises."""
        if cs.revision <= self.last or self.closed:
            return
        sink = self.sink
        if sink is not None and not (self._behind or self._buffer or self._ready) and sink.push(cs):
            self.last = cs.revision
            return
        self._keep(cs)

    def offer_run(self, sets: list[ChangeSet], shared: dict) -> None:
        """`offer` for several change sets in revision order, handed to the sink in one write."""
        last = self.last
        if sets[-1].revision <= last or self.closed:
            return
        i = 0
        while sets[i].revision <= last:
            i += 1
        sink = self.sink
        if sink is not None and not (self._behind or self._buffer or self._ready) and (
                sink.push(sets[i]) if i == len(sets) - 1 else sink.push_run(sets, i, shared)):
            self.last = sets[-1].revision
            return
        for cs in sets[i:]:
            if not self.closed:
                self._keep(cs)

    def _keep(self, cs: ChangeSet) -> None:
        if self._behind:  # kept for when history reaches it; the history read wakes the consumer
            buf = self._buffer
            if buf is None:
                buf = self._buffer = deque()
            if len(buf) >= self._limit:
                buf.clear()
                self._stale = True
            buf.append(cs)
            return
        buf = self._buffer
        if buf is None:
            buf = self._buffer = deque()
        if len(buf) >= self._limit:
            buf.clear()
            self._fall_behind()
        else:
            buf.append(cs)
        self._wake()

    def _fall_behind(self) -> None:
        self._behind = True
        self._read_to = max(self._read_to, self.last)

    def resync(self) -> None:
        """Drop the live buffer and catch up from the changes table (the feed saw a gap it cannot fill)."""
        if self._buffer:
            self._buffer.clear()
        self._fall_behind()
        self._stale = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self._wake()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._remove(self)
            self._buffer = self._ready = None
            self._wake()

    def _wake(self) -> None:
        if self.sink is not None:
            self.sink.wake()
        elif self._event is not None:
            self._event.set()

    def poll(self) -> ChangeSet | None:
        """The next change set already at hand, if any (no waiting). Asks the hub for history when
        the watcher is behind; raises the watcher's error (Compacted) once everything before it is out."""
        ready = self._ready
        while ready:
            cs = ready.popleft()
            if cs.revision > self.last:
                self.last = cs.revision
                return cs
        if self._behind:
            if not self._queued and self.error is None and not self.closed:
                self.hub._catch_up(self)
            if self.error is not None:
                raise self.error
            return None
        buf = self._buffer
        while buf:
            cs = buf.popleft()
            if cs.revision > self.last:
                self.last = cs.revision
                return cs
        if self.error is not None:
            raise self.error
        return None

    async def next(self, timeout: float | None = None) -> ChangeSet | None:
        """The next change set, or None when `timeout` passes first or the watcher is closed.
        Raises Compacted when the history it needs is gone."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._event is None:
            self._event = asyncio.Event()
        while not self.closed:
            self._event.clear()
            cs = self.poll()
            if cs is not None:
                return cs
            if self._queued:  # a history read is running: what it finds counts as already at hand
                await self._event.wait()
                continue
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):  # no extra task per wake-up, unlike wait_for
                    await self._event.wait()
            except TimeoutError:
                return None
        return None

    def position(self) -> int:
        """The revision this watcher stands at: `last`, or the hub's published revision when it is caught
        up (every revision up to there was handed out or does not match). Used as a progress id."""
        if not self.caught_up or self.closed or (self.bucket is not None and self.bucket.queue):
            return self.last
        idx = self.hub._by_tenant.get(self.filter.tenant)
        return max(self.last, idx.published) if idx is not None else self.last


class ChangeHub:
    """Fans the feed's change sets out to the watchers they match (watch_index), and catches up the
    watchers that need history."""

    def __init__(self, store: Store, buffer: int = 256):
        self.store = store
        self.buffer = buffer
        self._by_tenant: dict[str, TenantIndex] = {}
        self._behind: dict[str, set[Watcher]] = {}  # waiting for a history read, per tenant
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._fanning = 0  # buckets being handed their queue
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
        # Everything after the feed's position will be published to us; history is needed only for
        # what lies between our start and that position.
        delivered = self.feed.delivered(flt.tenant)
        w = Watcher(self, flt, start, self.buffer, behind=delivered is None or delivered > start)
        idx = self._by_tenant.get(flt.tenant)
        if idx is None:
            idx = self._by_tenant[flt.tenant] = TenantIndex(min(start, delivered or 0))
        idx.add(w)
        return w

    def watching(self, tenant: str) -> bool:
        return tenant in self._by_tenant

    def tenants(self) -> list[str]:
        return list(self._by_tenant)

    def resync(self, tenant: str, position: int) -> None:
        idx = self._by_tenant.get(tenant)
        if idx is None:
            return
        idx.published = max(idx.published, position)
        for b in list(idx.buckets()):
            for w in b.members():
                w.resync()

    def _remove(self, w: Watcher) -> None:
        idx = self._by_tenant.get(w.filter.tenant)
        if idx is not None and idx.remove(w) and not idx.count:
            del self._by_tenant[w.filter.tenant]
        behind = self._behind.get(w.filter.tenant)
        if behind is not None:
            behind.discard(w)

    def close_all(self) -> None:
        """Close every watcher (server shutdown): pending `next()` calls return None."""
        for idx in list(self._by_tenant.values()):
            for b in list(idx.buckets()):
                for w in b.members():
                    w.close()

    @property
    def watcher_count(self) -> int:
        return sum(idx.count for idx in self._by_tenant.values())

    def publish(self, tenant: str, sets: list[ChangeSet]) -> None:
        """Hand contiguous change sets of one tenant (from the feed) to the watchers they match."""
        idx = self._by_tenant.get(tenant)
        if idx is None:
            return
        loop = None
        for cs in sets:
            for bucket, part in idx.match(cs):
                bucket.queue.append(part)
                if not bucket.busy:
                    bucket.busy = True
                    self._fanning += 1
                    loop = loop or asyncio.get_running_loop()
                    loop.call_soon(self._fan_out, bucket, None, 0, 0)
            # Only a watcher whose bucket's queue is empty reports this as its position.
            idx.published = cs.revision

    def _fan_out(self, bucket: Bucket, members: tuple[Watcher, ...] | None, pos: int, first: int) -> None:
        """Hand a bucket's queue to its members, SLICE of them per loop turn, so one commit to many
        watchers never holds the loop (acknowledgements and other commits go between slices). Change
        sets published meanwhile join the queue: members not reached yet get them in the same write,
        the others in the next pass."""
        queue = bucket.queue
        if members is None:  # a pass begins: what is queued now reaches every member of this pass
            members, first = bucket.members(), len(queue)
        end = min(pos + SLICE, len(members))
        if len(queue) == 1:
            cs = queue[0]
            for i in range(pos, end):
                members[i].offer(cs)
        else:
            shared: dict = {}
            for i in range(pos, end):
                members[i].offer_run(queue, shared)
        loop = asyncio.get_running_loop()
        if end < len(members):
            loop.call_soon(self._fan_out, bucket, members, end, first)
            return
        del queue[:first]
        if queue:
            loop.call_soon(self._fan_out, bucket, None, 0, 0)
        else:
            bucket.busy = False
            self._fanning -= 1

    @property
    def fanning(self) -> bool:
        """Some change sets are still being handed out (for tests and `feed.settle`)."""
        return self._fanning > 0

    # catching up from history, shared

    def _catch_up(self, w: Watcher) -> None:
        w._queued = True
        tenant = w.filter.tenant
        self._behind.setdefault(tenant, set()).add(w)
        if tenant not in self._readers:
            self._readers[tenant] = asyncio.get_running_loop().create_task(self._read_for(tenant))

    async def _read_for(self, tenant: str) -> None:
        try:
            while behind := self._behind.pop(tenant, None):
                groups: dict[ChangeFilter, list[Watcher]] = {}
                for w in behind:
                    groups.setdefault(w.filter, []).append(w)
                for flt, ws in groups.items():
                    await self._read_group(flt, ws)
        finally:
            del self._readers[tenant]

    async def _read_group(self, flt: ChangeFilter, ws: list[Watcher]) -> None:
        start = min(w._read_to for w in ws)
        for w in ws:
            w._stale = False
        try:
            sets, more = await read_sets(self.store.log, flt, start, CATCHUP_PAGE)
            # Checked after the read: compaction moves the point and removes rows in one transaction,
            # so a read that missed rows is always followed by a point that says so.
            info = await self.store.log.revision(flt.tenant)
        except Exception as exc:  # storage trouble: end these streams; clients resume where they were
            log.warning("cannot read change history for %d watcher(s): %s", len(ws), exc)
            for w in ws:
                w._queued = False
                w.fail(exc)
            return
        end = sets[-1].revision if (more and sets) else None
        for w in ws:
            w._queued = False
            if w.closed:
                continue
            if w._read_to < info.compacted:
                w.fail(Compacted(info.compacted + 1, info.current))
                continue
            fresh = [cs for cs in sets if cs.revision > w._read_to]
            if fresh:
                if w._ready is None:
                    w._ready = deque()
                w._ready.extend(fresh)
                w._read_to = fresh[-1].revision
            if end is None and not w._stale:
                w._behind = False  # history reached the live buffer
            elif w._read_to < end:
                w._read_to = end
            w._wake()
