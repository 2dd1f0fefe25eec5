"""The point-read cache of the SQLite store: a key's entry kept in memory, never older than the database.

Only the SQLite store has one: one process owns its file (data-dir lock), so every write passes this
process's writer, which holds back the keys a group wrote before its COMMIT and releases them after.
A held key is neither served from the cache nor put into it, so no reader can keep a value that a
commit has replaced. The lock is taken once per miss and twice per group, never per hit.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable

from ..base import Entry

MAX_ENTRIES = 8192  # when full, the cache starts again empty (cheaper than LRU bookkeeping per hit)
MAX_VALUE_BYTES = 8192  # larger values are read from the database each time

CacheKey = tuple[str, str, str]  # tenant, namespace, key
_MISSING = object()


class EntryCache:
    __slots__ = ("_entries", "_held", "_lock")

    def __init__(self) -> None:
        self._entries: dict[CacheKey, Entry | None] = {}
        self._held: dict[CacheKey, int] = {}  # key -> groups holding it (a failed group's retries nest)
        self._lock = threading.Lock()

    def get(self, k: CacheKey, read: Callable[[], Entry | None]) -> Entry | None:
        """The cached entry (None = known absent), or `read()`'s, kept when no commit holds the key."""
        entries = self._entries
        e = entries.get(k, _MISSING)
        if e is not _MISSING:
            return e  # type: ignore[return-value]
        with self._lock:
            e = read()
            if k not in self._held and (e is None or len(e.value) <= MAX_VALUE_BYTES):
                if len(entries) >= MAX_ENTRIES:
                    entries.clear()
                entries[k] = e
        return e

    def hold(self, keys: Iterable[CacheKey]) -> None:
        """Before COMMIT (writer thread): drop the keys and keep them out until `release`."""
        with self._lock:
            for k in keys:
                self._entries.pop(k, None)
                self._held[k] = self._held.get(k, 0) + 1

    def release(self, keys: Iterable[CacheKey]) -> None:
        """After COMMIT or ROLLBACK (writer thread)."""
        with self._lock:
            for k in keys:
                n = self._held.pop(k, 1) - 1
                if n:
                    self._held[k] = n
