"""The store interface: what the engine may ask of a storage backend.

A store owns durability, revisions and the changes table. It knows nothing of HTTP and applies no
business rule: the engine's mutation functions run inside `submit` against a `WriteTxn` and decide what
to write; the store makes each one atomic, numbers its changes and makes it durable before answering.
Values travel as compact JSON bytes so that reads never decode what they only pass through.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, TypeVar

import msgspec

T = TypeVar("T")


class Entry(msgspec.Struct, frozen=True):
    tenant: str
    namespace: str
    key: str
    value: bytes  # compact JSON
    version: int
    create_rev: int
    mod_rev: int
    created_at: float  # epoch seconds
    updated_at: float
    expires_at: float | None


class Change(msgspec.Struct, frozen=True):
    tenant: str
    rev: int
    namespace: str
    key: str
    type: str  # "put" | "delete" | "expire"
    value: bytes | None  # value after (put), else None
    prev_value: bytes | None  # value before, None if absent
    version: int  # version after (0 for delete/expire)
    ts: float


class ChangeFilter(msgspec.Struct, frozen=True):
    """Which changes a watcher wants: a whole tenant, a namespace, a key prefix in it, or one key."""

    tenant: str
    namespace: str | None = None
    prefix: str | None = None
    key: str | None = None
    hidden: tuple[str, ...] = ()  # namespaces never delivered (reserved ones the watcher may not see)

    def matches(self, c: Change) -> bool:
        if c.tenant != self.tenant or c.namespace in self.hidden:
            return False
        if self.namespace is not None and c.namespace != self.namespace:
            return False
        if self.key is not None:
            return c.key == self.key
        return self.prefix is None or c.key.startswith(self.prefix)


class RevisionInfo(msgspec.Struct, frozen=True):
    current: int  # newest revision committed for the tenant (0 if none)
    compacted: int  # newest revision whose changes were removed by compaction (0 if none)


class StorageFault(msgspec.Struct, frozen=True):
    """The storage fault that failed the latest write: set when a commit fails for the disk's sake,
    cleared by the next commit that writes."""

    code: str  # "storage_full" | "storage_unavailable"
    reason: str  # the database's own words, e.g. "database or disk is full"
    since: float  # epoch seconds of the first failure
    last: float  # epoch seconds of the latest failure


class WriteTxn(Protocol):
    """What a mutation function sees inside the writer: one atomic unit, committed durably or not at all."""

    now: float

    def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        """The stored row, expired or not (the engine decides what expiry means)."""

    def put(self, entry: Entry) -> None: ...

    def delete(self, tenant: str, namespace: str, key: str) -> None: ...

    def new_revision(self, tenant: str) -> int:
        """Allocate the tenant's next revision for a change set of this mutation."""

    def record(self, change: Change) -> None:
        """Append a change row; it reaches watchers after commit."""

    def expired(self, now: float, limit: int) -> list[Entry]:
        """Entries whose expiry is due, oldest expiry first."""


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, fn: Callable[[WriteTxn], T]) -> T:
        """Run `fn` atomically in the writer; return its result once durable, or raise what it raised."""

    def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        """Point read of the stored row (may be expired), inline: it takes microseconds."""

    async def get_many(self, tenant: str, namespace: str, keys: Iterable[str]) -> list[Entry | None]:
        """Point reads from one consistent snapshot."""

    async def scan(self, tenant: str, namespace: str, prefix: str, after: str | None, limit: int, now: float) -> list[Entry]:
        """Live entries whose key starts with `prefix`, strictly after `after`, in key byte order."""

    async def changes(self, flt: ChangeFilter, after_rev: int, limit: int) -> list[Change]:
        """Changes matching `flt` with revision > after_rev, in revision order."""

    async def key_history(self, tenant: str, namespace: str, key: str, before_rev: int | None, limit: int) -> list[Change]:
        """Changes of one key, newest first."""

    def revision(self, tenant: str) -> RevisionInfo:
        """The newest published revision and the compaction point."""

    def committed_revision(self, tenant: str) -> int:
        """The newest committed revision, read from the database (may be ahead of `revision().current`)."""

    async def compact(self, older_than: float) -> int:
        """Remove change rows older than `older_than`; return how many."""

    def ping(self) -> None:
        """A trivial query; raises if the database cannot answer."""

    def health(self) -> StorageFault | None:
        """The active storage fault, if any (no I/O)."""

    async def probe(self) -> None:
        """Commit one tiny durable write, to learn whether a fault has cleared; raises StorageFull or
        StorageUnavailable while it has not."""

    def set_listener(self, listener: Callable[[list[Change]], Any]) -> None:
        """Called on the event loop after each commit with its changes in revision order."""





class KeyRecord(msgspec.Struct, frozen=True):
    """A stored API key: only the SHA-256 digest of the secret is kept."""

    id: str
    digest: bytes
    tenant: str
    name: str
    scopes: tuple[str, ...]
    prefixes: tuple[str, ...]  # "namespace" or "namespace/key-prefix"; empty = every namespace
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None


class KeyRepository(Protocol):
    """Tenants and API keys."""

    async def any(self) -> bool:
        """Whether any key was ever created (revoked ones count: open mode never comes back)."""

    async def by_digest(self, digest: bytes) -> KeyRecord | None: ...

    async def list(self, tenant: str | None) -> list[KeyRecord]:
        """Keys of one tenant (every tenant for None), oldest first."""

    async def create(self, record: KeyRecord) -> KeyRecord:
        """Store a key, creating its tenant if new."""

    async def revoke(self, key_id: str, tenant: str | None, now: float) -> KeyRecord | None:
        """Mark a key revoked (idempotent); None if no such key (in `tenant`, when given)."""

    async def touch(self, key_ids: list[str], now: float) -> None:
        """Record that these keys were just used."""

    async def tenants(self) -> list[str]: ...
