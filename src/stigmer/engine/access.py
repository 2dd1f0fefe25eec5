"""Who may do what: principals, scopes, prefix grants and the reserved namespaces.

A principal is what a credential resolves to: a tenant, scopes and, optionally, the namespace/key
prefixes it is limited to. Every front door hands its principal to `GuardedKV`, which checks the rule
before calling the key engine, so one rule holds on every route of every surface. A narrower principal
(a capability token, the statevec secret) has the same shape and is never wider than what made it.

Reserved namespaces (docs/security.md):
- `statevec`: written only by the holder of an address's secret (the statevec surface turns the secret
  into a principal for exactly that address); one address is read by anyone who names it (its hash is
  its read capability); listing it, watching it as a whole or reading it with a prefix needs `admin`.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import msgspec

from .types import Change, ChangeFilter, Entry
from .errors import Forbidden, InvalidArgument
from .kv import KV, Compare, Deleted, Limits, Op, TxnResult
from .leases import LEASES, LeaseOutcome, LeaseRecord, Leases
from .states import STATES
from .claims import CLAIMS, Claim, Claims, Cursor, EvidenceInput, Outcome as ClaimOutcome, Run
from .conversations import CONVERSATIONS

READ, WRITE, WATCH, ADMIN = "read", "write", "watch", "admin"
SCOPES = (READ, WRITE, WATCH, ADMIN)  # the native scopes
ALL = "*"
DEFAULT_TENANT = "default"
STATEVEC = "statevec"

# The fine scopes (the AgentState wire spec's set, its §3.2), by resource; docs/tokens.md.
RESOURCES: dict[str, tuple[str, ...]] = {
    "conversations": ("read", "write"), "state": ("read", "write", "watch"), "lease": ("write",),
    "claim": ("read", "write"), "analytics": ("read",), "webhooks": ("write",), "domains": ("write",),
    "keys": ("read", "write"),
}
FINE_SCOPES = tuple(f"{r}:{a}" for r, actions in RESOURCES.items() for a in actions)
CAPABILITY_SCOPES = ("state:read", "state:write", "state:watch", "lease:write", "claim:read", "claim:write")
WILDCARDS = (ALL, *(f"{r}:*" for r in RESOURCES))
GRANTABLE = (*SCOPES, *FINE_SCOPES, *WILDCARDS)  # what a key may be created with
# What a native scope implies on the fine side; write never implies read.
_NATIVE_IMPLIES = {
    READ: ("state:read", "claim:read", "conversations:read", "analytics:read"),
    WRITE: ("state:write", "lease:write", "claim:write", "conversations:write"),
    WATCH: ("state:watch",),
}
_EVERYTHING = frozenset({*SCOPES, *FINE_SCOPES, *WILDCARDS})
_COMPOUND = frozenset({*SCOPES, *WILDCARDS})  # scopes that stand for more than themselves


def _expand(scope: str) -> frozenset[str]:
    """The concrete rights one scope confers: a native scope itself and what it implies; a wildcard its
    members only (it is shorthand for them)."""
    if scope in (ALL, ADMIN):
        return _EVERYTHING
    resource, sep, action = scope.partition(":")
    if sep and action == "*" and resource in RESOURCES:
        return frozenset(f"{resource}:{a}" for a in RESOURCES[resource])
    return frozenset({scope, *_NATIVE_IMPLIES.get(scope, ())})


@functools.lru_cache(maxsize=4096)
def rights(scopes: frozenset[str]) -> frozenset[str]:
    """Every concrete right a set of scopes confers (cached: a principal's scopes are one frozenset)."""
    out: set[str] = set()
    for s in scopes:
        out |= _expand(s)
    return frozenset(out)


def allows(p: "Principal", scope: str) -> bool:
    """Whether `p` holds `scope`: exactly, through `*`, `<resource>:*` or `admin`, or through the native
    scope that implies it (read, write, watch). A compound scope (native or wildcard) asked for is allowed
    only when every right it confers is."""
    held = rights(p.scopes)
    return _expand(scope) <= held if scope in _COMPOUND else scope in held


class Grant(msgspec.Struct, frozen=True):
    """A namespace, and a key prefix in it ("" = the whole namespace)."""

    namespace: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> "Grant":
        namespace, _, prefix = text.partition("/")
        if not namespace:
            raise InvalidArgument(f"prefix {text!r} must start with a namespace: NS or NS/KEY-PREFIX", field="prefix")
        return cls(namespace, prefix)

    def __str__(self) -> str:
        return self.namespace + ("/" + self.prefix if self.prefix else "")

    def covers(self, namespace: str, prefix: str) -> bool:
        return namespace == self.namespace and prefix.startswith(self.prefix)


class Principal(msgspec.Struct, frozen=True):
    tenant: str
    scopes: frozenset[str]
    grants: tuple[Grant, ...] | None = None  # None = every namespace of the tenant
    kind: str = "key"  # key | open | statevec | token
    key_id: str | None = None  # the credential (a token's id for a token), for limits and logs; None in open mode
    expires_at: float | None = None

    def has(self, scope: str) -> bool:
        """`allows` (`*` is full access, like `admin`)."""
        s = self.scopes
        return ADMIN in s or ALL in s or scope in s or allows(self, scope)

    def covers(self, namespace: str, prefix: str = "") -> bool:
        return self.grants is None or any(g.covers(namespace, prefix) for g in self.grants)

    def within(self, other: "Principal") -> bool:
        """Whether every right of this principal is also a right of `other` (attenuation)."""
        if self.tenant != other.tenant or not all(allows(other, s) for s in self.scopes):
            return False
        if other.expires_at is not None and (self.expires_at is None or self.expires_at > other.expires_at):
            return False
        if other.grants is None:
            return True
        return self.grants is not None and all(other.covers(g.namespace, g.prefix) for g in self.grants)


def open_principal() -> Principal:
    """Open mode (no API key exists): the local developer, with every scope but `admin`."""
    return Principal(DEFAULT_TENANT, frozenset({READ, WRITE, WATCH}), kind="open")


def statevec_writer(address: str) -> Principal:
    """What holding an address's secret grants: read and write of that one address."""
    return Principal(DEFAULT_TENANT, frozenset({READ, WRITE}), (Grant(STATEVEC, address),), kind="statevec")


def statevec_reader() -> Principal:
    """What anyone has on the statevec surface: reading an address they name."""
    return Principal(DEFAULT_TENANT, frozenset({READ}), (Grant(STATEVEC),), kind="statevec")


def _deny(message: str, **details: Any) -> Forbidden:
    return Forbidden(message, **details)


def require(p: Principal, scope: str) -> Principal:
    """Raise Forbidden unless `p` holds `scope` (for tenant-wide facts such as the revision)."""
    if not p.has(scope):
        raise _deny(f"this credential lacks the {scope} scope", scope=scope)
    return p


def check(p: Principal, scope: str, namespace: str, key: str | None = None, prefix: str = "") -> None:
    """Raise Forbidden unless `p` may use `scope` on one key (`key`) or a key range (`prefix`)."""
    require(p, scope)
    if not p.covers(namespace, key if key is not None else prefix):
        raise _deny(f"this credential is not allowed on {namespace}/{key if key is not None else prefix}",
                    namespace=namespace)
    if namespace == LEASES and scope == WRITE:
        raise _deny("lease data is written only through /v1/leases", namespace=namespace)
    if namespace == STATES and scope == WRITE:
        raise _deny("states are written only through /api/v1/states", namespace=namespace)
    if namespace == CLAIMS and scope == WRITE:
        raise _deny("claim data is written only through /v1/claims", namespace=namespace)
    if namespace == CONVERSATIONS and scope == WRITE:
        raise _deny("conversation data is written only through the conversation routes", namespace=namespace)
    if namespace == STATEVEC:
        if scope == WRITE and p.kind != "statevec":
            raise _deny("statevec data is written only through /v with its secret", namespace=namespace)
        if key is None and not p.has(ADMIN):
            raise _deny("listing or watching statevec data needs an admin key; read one address by its hash",
                        namespace=namespace)


def watch_filter(p: Principal, namespace: str | None, prefix: str | None, key: str | None) -> ChangeFilter:
    """The change filter a principal may hold; a tenant-wide watch hides the reserved namespaces."""
    if namespace is None:
        require(p, WATCH)
        if p.grants is not None:
            raise _deny("this credential is limited to some namespaces: watch one of them")
        hidden = () if p.has(ADMIN) else (STATEVEC,)
        return ChangeFilter(p.tenant, hidden=hidden)
    check(p, WATCH, namespace, key, prefix or "")
    return ChangeFilter(p.tenant, namespace, prefix or None, key)


class GuardedKV:
    """The key engine seen through one principal: each call is checked, then runs in its tenant."""

    __slots__ = ("kv", "p")

    def __init__(self, kv: KV, principal: Principal):
        self.kv = kv
        self.p = principal

    @property
    def tenant(self) -> str:
        return self.p.tenant

    async def get(self, namespace: str, key: str) -> Entry | None:
        check(self.p, READ, namespace, key)
        return await self.kv.get(self.p.tenant, namespace, key)

    async def get_many(self, namespace: str, keys: list[str]) -> list[Entry | None]:
        for k in keys if isinstance(keys, list) else ():
            check(self.p, READ, namespace, k if isinstance(k, str) else "")
        return await self.kv.get_many(self.p.tenant, namespace, keys)

    async def list(self, namespace: str, prefix: str = "", after: str | None = None,
                   limit: int = 100) -> tuple[list[Entry], str | None]:
        check(self.p, READ, namespace, prefix=prefix)
        return await self.kv.list(self.p.tenant, namespace, prefix, after, limit)

    async def namespaces(self) -> list[tuple[str, int]]:
        """The namespaces this principal may list, with the live keys it may read in each: a key limited to
        prefixes sees its granted namespaces (zero keys included) and counts only the keys it covers."""
        require(self.p, READ)
        if self.p.grants is None:
            found = await self.kv.namespaces(self.p.tenant)
            return [(ns, n) for ns, n in found if ns != STATEVEC or self.p.has(ADMIN)]
        grants = {(g.namespace, g.prefix) for g in self.p.grants if g.namespace != STATEVEC or self.p.has(ADMIN)}
        # a range inside another range of the same namespace would be counted twice
        ranges = [(ns, p) for ns, p in grants if not any(o != (ns, p) and o[0] == ns and p.startswith(o[1]) for o in grants)]
        return await self.kv.namespaces(self.p.tenant, sorted(ranges))

    async def history(self, namespace: str, key: str, before: int | None = None, limit: int = 100) -> list[Change]:
        check(self.p, READ, namespace, key)
        return await self.kv.history(self.p.tenant, namespace, key, before, limit)

    async def apply(self, op: Op, limits: Limits | None = None) -> Entry | Deleted:
        check(self.p, WRITE, op.namespace, op.key)
        if op.fence is not None:
            check_lease(self.p, WRITE, op.fence.resource)
        return await self.kv.apply(self.p.tenant, op, limits)

    async def txn(self, compares: Iterable[Compare], ops: Iterable[Op]) -> TxnResult:
        compares, ops = list(compares), list(ops)
        for c in compares:
            check(self.p, READ, c.namespace, c.key)
        for op in ops:
            check(self.p, WRITE, op.namespace, op.key)
            if op.fence is not None:
                check_lease(self.p, WRITE, op.fence.resource)
        return await self.kv.txn(self.p.tenant, compares, ops)


def check_lease(p: Principal, scope: str, resource: str) -> None:
    """A lease operation on `resource` is checked as the key `_leases/<resource>` (without the reserved
    namespace's write rule: this is the route that writes it)."""
    require(p, scope)
    if not p.covers(LEASES, resource if isinstance(resource, str) else ""):
        raise _deny(f"this credential is not allowed on the lease {resource}", namespace=LEASES)


class GuardedLeases:
    """The lease engine seen through one principal: write to acquire, renew and release; read to look."""

    __slots__ = ("leases", "p")

    def __init__(self, leases: Leases, principal: Principal):
        self.leases = leases
        self.p = principal

    async def get(self, resource: str) -> LeaseRecord | None:
        check_lease(self.p, READ, resource)
        return await self.leases.get(self.p.tenant, resource)

    async def acquire(self, resource: str, holder: str, ttl: float | None = None, wait: float = 0.0) -> LeaseOutcome:
        check_lease(self.p, WRITE, resource)
        return await self.leases.acquire(self.p.tenant, resource, holder, ttl, wait)

    async def renew(self, resource: str, *, lease_id: str | None = None, token: int | None = None,
                    ttl: float | None = None) -> LeaseOutcome:
        check_lease(self.p, WRITE, resource)
        return await self.leases.renew(self.p.tenant, resource, lease_id=lease_id, token=token, ttl=ttl)

    async def release(self, resource: str, *, lease_id: str | None = None, token: int | None = None) -> LeaseOutcome:
        check_lease(self.p, WRITE, resource)
        return await self.leases.release(self.p.tenant, resource, lease_id=lease_id, token=token)


def check_claim(p: Principal, scope: str, claim_id: str = "") -> None:
    """A claim is checked as the key `_claims/<id>` (a claim not made yet, or every claim, as the whole
    namespace), without the reserved namespace's write rule: this is the route that writes it."""
    require(p, scope)
    if not p.covers(CLAIMS, claim_id if isinstance(claim_id, str) else ""):
        raise _deny("this credential is not allowed on claims", namespace=CLAIMS)


CONVERSATIONS_READ, CONVERSATIONS_WRITE = "conversations:read", "conversations:write"  # native read/write imply them


def check_conversation(p: Principal, scope: str, conversation_id: str = "") -> None:
    """A conversation is checked as the key `_conversations/<id>` (one not made yet, or every one, as the
    whole namespace), without the reserved namespace's write rule: this is the route that writes it.
    `scope` is conversations:read or conversations:write, which no capability token can hold."""
    require(p, scope)
    if not p.covers(CONVERSATIONS, conversation_id if isinstance(conversation_id, str) else ""):
        raise _deny("this credential is not allowed on conversations", namespace=CONVERSATIONS)


def check_evidence_reads(p: Principal, items: Iterable[Any]) -> None:
    """What verifying evidence reads, the credential must read: the key of a key_value item, and (state
    events being tenant-wide) the whole tenant for a state_event item."""
    for e in items:
        if e.kind == "key_value":
            namespace, key = (e.namespace, e.key) if isinstance(e, EvidenceInput) else e.key_ref()
            if isinstance(namespace, str) and isinstance(key, str):
                check(p, READ, namespace, key)
        elif e.kind == "state_event" and p.grants is not None:
            raise _deny("state_event evidence needs a credential not limited to prefixes", namespace=CLAIMS)


class GuardedClaims:
    """The claim engine seen through one principal: write to create and verify, read to look. Verifying
    also needs the read rights on what the evidence reads (its result tells whether a value matched)."""

    __slots__ = ("claims", "p")

    def __init__(self, claims: Claims, principal: Principal):
        self.claims = claims
        self.p = principal

    async def create(self, subject_type: str, subject_id: str, statement: str,
                     evidence: list[EvidenceInput]) -> ClaimOutcome:
        check_claim(self.p, WRITE)
        check_evidence_reads(self.p, evidence if isinstance(evidence, list) else ())
        return await self.claims.create_outcome(self.p.tenant, subject_type, subject_id, statement, evidence)

    async def get(self, claim_id: str) -> Claim | None:
        check_claim(self.p, READ, claim_id)
        return await self.claims.get(self.p.tenant, claim_id)

    async def list(self, *, limit: int, cursor: Cursor | None, order: str, subject_type: str | None = None,
                   subject_id: str | None = None) -> tuple[list[Claim], Cursor | None]:
        check_claim(self.p, READ)
        return await self.claims.list(self.p.tenant, limit=limit, cursor=cursor, order=order,
                                      subject_type=subject_type, subject_id=subject_id)

    async def verify(self, claim_id: str) -> ClaimOutcome:
        check_claim(self.p, WRITE, claim_id)
        claim = await self.claims.get(self.p.tenant, claim_id)
        if claim is not None:  # evidence never changes: what is checked here is what verify reads
            check_evidence_reads(self.p, claim.evidence)
        return await self.claims.verify_outcome(self.p.tenant, claim_id, claim)

    async def runs(self, claim_id: str, *, limit: int, cursor: Cursor | None, order: str) -> tuple[list[Run], Cursor | None]:
        check_claim(self.p, READ, claim_id)
        return await self.claims.runs(self.p.tenant, claim_id, limit=limit, cursor=cursor, order=order)
