"""The watchers of one tenant, indexed so that a change finds the watchers it matches without a scan.

Watchers with the same filter share a `Bucket`. Key watchers sit in a dict by (namespace, key); prefix
watchers in a dict by (namespace, prefix), with a count of the prefix lengths in use, so a change looks
up one entry per length in use (a namespace watcher is the prefix ""). Tenant-wide watchers form one
bucket per set of hidden namespaces. A bucket gets the part of a change set it matches, the same
object for all its watchers, so they share its encodings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from .types import ChangeFilter, ChangeSet

if TYPE_CHECKING:
    from .changes import Watcher


class Bucket:
    """Watchers with one filter; `members()` is a snapshot, so delivering never sees the set change.
    `queue` holds the change sets (parts) published to it that some member may not have been handed
    yet; `busy` while the hub is handing them out."""

    __slots__ = ("filter", "watchers", "_snap", "queue", "busy")

    def __init__(self, flt: ChangeFilter):
        self.filter = flt
        self.watchers: set[Watcher] = set()
        self._snap: tuple[Watcher, ...] | None = None
        self.queue: list[ChangeSet] = []
        self.busy = False

    def members(self) -> tuple[Watcher, ...]:
        snap = self._snap
        if snap is None:
            snap = self._snap = tuple(self.watchers)
        return snap


class TenantIndex:
    __slots__ = ("keys", "prefixes", "lengths", "wide", "count", "published")

    def __init__(self, published: int = 0):
        self.keys: dict[tuple[str, str], Bucket] = {}
        self.prefixes: dict[tuple[str, str], Bucket] = {}
        self.lengths: dict[int, int] = {}  # prefix length -> buckets of that length
        self.wide: dict[tuple[str, ...], Bucket] = {}  # tenant-wide, by hidden namespaces
        self.count = 0
        # The newest revision handed to every watcher (or found not to match it): what a caught-up
        # watcher may report as its position.
        self.published = published

    def _table(self, flt: ChangeFilter) -> tuple[dict, object]:
        if flt.namespace is None:
            return self.wide, flt.hidden
        if flt.key is not None:
            return self.keys, (flt.namespace, flt.key)
        return self.prefixes, (flt.namespace, flt.prefix or "")

    def add(self, w: Watcher) -> None:
        flt = w.filter
        table, slot = self._table(flt)
        b = table.get(slot)
        if b is None:
            b = table[slot] = Bucket(flt)
            if table is self.prefixes:
                n = len(flt.prefix or "")
                self.lengths[n] = self.lengths.get(n, 0) + 1
        b.watchers.add(w)
        b._snap = None
        w.bucket = b
        self.count += 1

    def remove(self, w: Watcher) -> bool:
        """Take `w` out; True if it was in."""
        table, slot = self._table(w.filter)
        b = table.get(slot)
        if b is None or w not in b.watchers:
            return False
        b.watchers.discard(w)
        b._snap = None
        self.count -= 1
        if not b.watchers:
            del table[slot]
            if table is self.prefixes:
                n = len(w.filter.prefix or "")
                left = self.lengths[n] - 1
                if left:
                    self.lengths[n] = left
                else:
                    del self.lengths[n]
        return True

    def buckets(self) -> Iterator[Bucket]:
        yield from self.wide.values()
        yield from self.keys.values()
        yield from self.prefixes.values()

    def match(self, cs: ChangeSet) -> list[tuple[Bucket, ChangeSet]]:
        """Each bucket that `cs` concerns, with the part of `cs` it matches (`cs` itself when all)."""
        changes = cs.changes
        if len(changes) == 1:  # the common case: no grouping needed
            c = changes[0]
            return [(b, cs) for b in self._matching(c.namespace, c.key)]
        found: dict[int, tuple[Bucket, list]] = {}
        for c in changes:
            for b in self._matching(c.namespace, c.key):
                entry = found.get(id(b))
                if entry is None:
                    found[id(b)] = (b, [c])
                else:
                    entry[1].append(c)
        n = len(changes)
        return [(b, cs if len(got) == n else ChangeSet(cs.revision, got)) for b, got in found.values()]

    def _matching(self, ns: str, key: str) -> Iterator[Bucket]:
        for hidden, b in self.wide.items():
            if ns not in hidden:
                yield b
        b = self.keys.get((ns, key))
        if b is not None:
            yield b
        if self.prefixes:
            n = len(key)
            for length in self.lengths:
                if length <= n:
                    b = self.prefixes.get((ns, key[:length]))
                    if b is not None:
                        yield b
