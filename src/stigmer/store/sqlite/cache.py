"""The point-read cache of the SQLite store: a key's entry kept in memory, never older than the database.

Only the SQLite store has one: one process owns its file (data-dir lock), so every write passes this
process's writer, which holds back the keys a group wrote before its COMMIT and releases them after.
A held key is neither served from the cache nor put into it, so no reader can keep a value that a
commit has replaced; after COMMIT the cache keeps what the group wrote. The lock is taken once per
miss and twice per group, never per hit.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable

from ..base import Entry

# When either bound is reached the cache starts again empty: cheaper than LRU bookkeeping on every hit.
MAX_ENTRIES = 65536
MAX_BYTES = 32 * 1024 * 1024  # of values
MAX_VALUE_BYTES = 8192  # larger values are read from the database each time

CacheKey = tuple[str, str, str]  # tenant, namespace, key
_MISSING = object()


class EntryCache:
    __slots__ = ("_entries", "_bytes", "_held", "_lock")

    def __init__(self) -> None:
        self._entries: dict[CacheKey, Entry | None] = {}
        self._bytes = 0
        self._held: set[CacheKey] = set()
        self._lock = threading.Lock()

    def get(self, k: CacheKey, read: Callable[[], Entry | None]) -> Entry | None:
        """The cached entry (None = known absent), or `read()`'s, kept when no commit holds the key."""
        entries = self._entries
        e = entries.get(k, _MISSING)
        if e is not _MISSING:
            return e  # type: ignore[return-value]
        with self._lock:
            e = read()
            if k not in self._held:
                self._keep(k, e)
        return e

    def hold(self, keys: Iterable[CacheKey]) -> None:
        """Before COMMIT (writer thread): drop the keys and keep them out until `release`."""
        with self._lock:
            for k in keys:
                self._drop(k)
                self._held.add(k)

    def release(self, keys: Iterable[CacheKey], committed: dict[CacheKey, Entry | None] | None = None) -> None:
        """After COMMIT (with what it committed: the cache keeps it, so the next read of a key just
        written is a hit) or after ROLLBACK (writer thread)."""
        with self._lock:
            for k in keys:
                self._held.discard(k)
                if committed is not None:
                    self._keep(k, committed[k])

    def _keep(self, k: CacheKey, e: Entry | None) -> None:
        self._drop(k)
        size = 0 if e is None else len(e.value)
        if size > MAX_VALUE_BYTES:
            return
        if len(self._entries) >= MAX_ENTRIES or self._bytes + size > MAX_BYTES:
            self._entries.clear()
            self._bytes = 0
        self._entries[k] = e
        self._bytes += size

    def _drop(self, k: CacheKey) -> None:
        old = self._entries.pop(k, None)
        if old is not None:
            self._bytes -= len(old.value)
