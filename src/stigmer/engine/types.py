"""The domain types every layer shares: entries, changes, filters, revisions, key records.

The engine owns them; the store reads and writes them, and the front doors render them.
Values travel as compact JSON bytes so that reads never decode what they only pass through.
"""

from __future__ import annotations

from typing import Callable

import msgspec


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


class TokenRecord(msgspec.Struct, frozen=True):
    """A stored capability token (engine/tokens.py): only the SHA-256 digest of the secret is kept.
    `lineage` is the path of ids from the root token to this one, each followed by "/"; a token's
    descendants are the rows whose lineage starts with its own."""

    id: str
    digest: bytes
    tenant: str
    name: str
    scopes: tuple[str, ...]
    prefixes: tuple[str, ...]  # "namespace" or "namespace/key-prefix"; empty = every namespace
    parent_id: str | None
    lineage: str
    key_id: str | None  # the API key at the root of the chain; None when minted in open mode
    key_prefix: str  # the first 12 characters of the secret, to recognise it
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None

    def ancestors(self) -> list[str]:
        return self.lineage.split("/")[:-2]


class ChangeSet:
    """All changes of one revision (that a watcher's filter matches).

    `encoded` keeps each wire format's bytes, so a change set going to many watchers is rendered once
    per format and every watcher is handed the same bytes object.
    """

    __slots__ = ("revision", "changes", "_enc")

    def __init__(self, revision: int, changes: list[Change]):
        self.revision = revision
        self.changes = changes
        self._enc: dict[object, bytes] | None = None

    def encoded(self, fmt: object, render: "Callable[[ChangeSet], bytes]") -> bytes:
        """`render(self)`, computed once per `fmt` (any hashable naming the format)."""
        enc = self._enc
        if enc is None:
            enc = self._enc = {}
        else:
            out = enc.get(fmt)
            if out is not None:
                return out
        out = enc[fmt] = render(self)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChangeSet):
            return NotImplemented
        return self.revision == other.revision and self.changes == other.changes

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChangeSet(revision={self.revision!r}, changes={self.changes!r})"


def group(changes: list[Change]) -> list[ChangeSet]:
    """Changes in revision order, grouped into one set per revision."""
    sets: list[ChangeSet] = []
    for c in changes:
        if sets and sets[-1].revision == c.rev:
            sets[-1].changes.append(c)
        else:
            sets.append(ChangeSet(c.rev, [c]))
    return sets


class LeaseRecord(msgspec.Struct, frozen=True):
    """The newest lease of one resource. Its `token` is the highest fencing token ever issued for the
    resource (each acquire issues the next one), so one row per resource is the whole fencing state."""

    tenant: str
    resource: str
    id: str
    holder: str
    token: int
    created_at: float
    renewed_at: float
    expires_at: float
    released_at: float | None = None

    def active(self, now: float) -> bool:
        return self.released_at is None and self.expires_at > now


class StateEventRecord(msgspec.Struct, frozen=True):
    """One row of a tenant's append-only state event log (engine/states.py). JSON members travel as
    compact bytes (member order as received); times are integer milliseconds."""

    sequence: int  # the tenant revision the event's write took
    id: str
    state_key: str
    agent_id: str
    event_type: str  # "upsert" | "delete"
    data: bytes | None  # None for a delete
    metadata: bytes | None  # None when the state has no metadata
    tags: bytes  # a JSON array of strings
    idempotency_key: str | None
    created_at: int  # when the event was written
    state_created_at: int  # when the key was first created (kept across deletes)
class IdempotencyRecord(msgspec.Struct, frozen=True):
    """A request seen under an Idempotency-Key (docs/idempotency.md): a reservation while the first
    request runs (`pending`, held by `owner`), then its answer (`done`) until `expires_at`."""

    tenant: str
    scope: str  # the surface or route family the key belongs to ("native", "agentstate")
    key: str
    fingerprint: bytes  # SHA-256 of the canonical request
    state: str  # "pending" | "done"
    status: int  # the answer's status (0 while pending)
    body: bytes
    headers: tuple[tuple[str, str], ...]  # the answer's headers worth replaying
    created_at: float
    expires_at: float
    owner: str = ""  # the reservation's id while pending; "" once done


class WebhookEvent(msgspec.Struct, frozen=True):
    """One row of the webhook outbox (engine/webhooks.py): an event to POST, and how its delivery went."""

    tenant: str  # the Stigmer tenant whose mutation wrote it
    id: str  # uuid4, the `X-Webhook-Id` receivers deduplicate by
    event: str  # "episode.created" ...
    tenant_id: str | None  # the body's `tenant_id` (a surface's own tenancy inside the Stigmer tenant)
    data: bytes  # compact JSON object, the body's `data`
    subject_id: str | None  # what a subject delete finds it by: data.subject_id, or the one id of data.subject_ids
    status: str  # "pending" | "delivered" | "dead_letter"
    attempts: int
    max_attempts: int
    created_at: float
    next_attempt_at: float | None  # None once delivered or dead
    last_attempt_at: float | None = None
    last_error: str | None = None
    http_status: int | None = None
    delivered_at: float | None = None
    claim: str | None = None  # the claim of the worker sending it now (its lease ends at next_attempt_at)


class WebhookOutcome(msgspec.Struct, frozen=True):
    """What one delivery attempt left: written only while the event still carries `claim`."""

    id: str
    claim: str
    status: str
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    http_status: int | None
    delivered_at: float | None
