"""Request and response models of the native API: they validate bodies and generate the OpenAPI schemas."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ...engine.kv import KEEP, Compare, Op
from ...engine.fencing import parse_fence
from ...engine.values import MISSING
from ..errors import APIError

Number = int | float


class PatchRequest(msgspec.Struct, forbid_unknown_fields=False):
    """Body of PATCH /v1/kv/{namespace}/{key} (Content-Type application/json)."""

    op: Literal["incr", "merge", "append", "patch"]
    amount: Number = 1
    field: str | None = None
    path: list[str] | None = None
    value: Any = MISSING
    deep: bool = False
    max: int | None = None
    patch: list[dict[str, Any]] | None = None
    ttl: Number | None | msgspec.UnsetType = msgspec.UNSET

    @classmethod
    def to_op(cls, body: Any, namespace: str, key: str, ttl: Any) -> Op:
        req = convert(body, cls)
        if req.ttl is not msgspec.UNSET:
            ttl = req.ttl
        path = req.path if req.path is not None else ([req.field] if req.field is not None else None)
        return Op(req.op, namespace, key, value=req.value, ttl=ttl, amount=req.amount, path=path,
                  deep=req.deep, null_deletes=req.deep, max_items=req.max, patch=req.patch)


class TxnCompare(msgspec.Struct, forbid_unknown_fields=True):
    namespace: str
    key: str
    version: int | None = None
    exists: bool | None = None
    value: Any = MISSING


class TxnOp(msgspec.Struct, forbid_unknown_fields=True):
    op: Literal["put", "delete", "incr", "merge", "append", "patch"]
    namespace: str
    key: str
    value: Any = MISSING
    ttl: Number | None | msgspec.UnsetType = msgspec.UNSET
    amount: Number = 1
    field: str | None = None
    path: list[str] | None = None
    deep: bool = False
    max: int | None = None
    patch: list[dict[str, Any]] | None = None
    version: int | None = None
    fence: str | None = None  # `<resource>:<token>`: this op applies only under that lease


class TxnRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/txn: every compare must hold, then every op applies, under one revision."""

    compare: list[TxnCompare] = []
    ops: list[TxnOp] = []

    def to_engine(self) -> tuple[list[Compare], list[Op]]:
        compares = [Compare(c.namespace, c.key, c.version, c.exists, c.value) for c in self.compare]
        ops = []
        for o in self.ops:
            ttl = o.ttl if o.ttl is not msgspec.UNSET else (None if o.op == "put" else KEEP)
            path = o.path if o.path is not None else ([o.field] if o.field is not None else None)
            ops.append(Op(o.op, o.namespace, o.key, value=o.value, ttl=ttl, amount=o.amount, path=path,
                          deep=o.deep, null_deletes=o.deep, max_items=o.max, patch=o.patch, expect_version=o.version,
                          fence=parse_fence(o.fence) if o.fence is not None else None))
        return compares, ops


class Out(msgspec.Struct, forbid_unknown_fields=True):
    """Response models are closed: their schemas forbid members they do not name."""


class EntryMetaOut(Out):
    """An entry without its value: PUT's answer, and list entries with values=false."""

    namespace: str
    key: str
    version: int
    create_revision: int
    mod_revision: int
    created_at: str
    updated_at: str
    expires_at: str | None


class EntryOut(Out):
    """An entry (GET's answer). The fields are in wire order: the value follows the key."""

    namespace: str
    key: str
    value: Any  # rendered from the stored JSON as msgspec.Raw, never decoded
    version: int
    create_revision: int
    mod_revision: int
    created_at: str
    updated_at: str
    expires_at: str | None


class ListOut(Out):
    entries: list[EntryOut]  # or EntryMetaOut with values=false (docs.py says so)
    next_cursor: str | None


class NamespaceOut(Out):
    namespace: str
    keys: int  # live keys (that the credential covers, for a key limited to prefixes)


class NamespacesOut(Out):
    namespaces: list[NamespaceOut]


class SemanticSessionOut(Out):
    session_id: str
    kind: str
    created_at: str
    turns: int  # stored turns
    memories: int  # live memories
    phase: str
    drift: float | None  # the last stored turn's drift, (1 - similarity) / 2; null before the first


class SemanticSessionsOut(Out):
    sessions: list[SemanticSessionOut]
    next_cursor: str | None


class DriftPointOut(Out):
    turn: int
    drift: float
    similarity: float
    phase: str


class SemanticSessionDetailOut(Out):
    session: SemanticSessionOut
    drift: list[DriftPointOut]  # one point per stored turn, oldest first (the last 1000)


class LatencyOut(Out):
    buckets: list[float]  # upper bounds in seconds; `counts` has one more, for +Inf
    counts: list[int]  # requests at or below each bound, cumulative, since the process started
    seconds: float  # their durations summed


class ServerMetricsOut(Out):
    at: float  # epoch seconds, the server's clock
    requests: int  # every request of every surface since the process started
    latency: LatencyOut
    watchers: int  # open watch streams and long-polls, every surface
    job_queue_depth: int  # jobs waiting to run, every tenant
    webhook_backlog: int  # webhook events waiting for delivery, every tenant


class BatchRequest(msgspec.Struct):
    keys: list[str]


class BatchOut(Out):
    entries: list[EntryOut | None]


class ChangeOut(Out):
    type: Literal["put", "delete", "expire"]
    namespace: str
    key: str
    value: Any
    version: int
    revision: int
    ts: str
    prev_value: Any = None


class HistoryOut(Out):
    history: list[ChangeOut]
    next_before: int | None


class DeleteOut(Out):
    deleted: bool
    revision: int
    version: int


class TxnOut(Out):
    revision: int
    results: list[dict[str, Any]]  # an EntryOut per write, a DeleteOut per delete (docs.py says so)


class ChangeSetOut(Out):
    revision: int
    changes: list[ChangeOut]


class WatchPollOut(Out):
    revision: int
    events: list[ChangeSetOut]


class RevisionOut(Out):
    revision: int
    compacted_revision: int


class CompactedOut(Out):
    """Data of an SSE `compacted` event: the history the watch needs is gone."""

    oldest_revision: int
    current_revision: int


class HealthOut(Out):
    status: Literal["ok"]


class ReadyCheck(Out):
    name: str
    status: Literal["ok", "error"]
    latency_ms: float | None = None
    detail: str | None = None


class ReadyOut(Out):
    status: Literal["ready", "not_ready"]
    checks: list[ReadyCheck]


class ErrorBody(Out):
    code: str
    message: str
    request_id: str
    details: dict[str, Any] | None = None


class ErrorOut(Out):
    error: ErrorBody


class CreateKeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/admin/keys."""

    scopes: list[str]
    tenant: str | None = None
    prefixes: list[str] = []
    name: str = ""
    expires_in: int | None = None  # seconds from now
    expires_at: str | None = None  # RFC 3339
    format: Literal["stigmer", "agentstate"] = "stigmer"  # the secret's shape: stg_… or as_live_…


class MintTokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/tokens."""

    name: str
    scopes: list[str]
    prefixes: list[str] = []
    expires_in: int | None = None  # seconds from now
    expires_at: str | Number | None = None  # RFC 3339, or seconds since the epoch


class TokenOut(Out):
    """A capability token: never its secret nor its digest."""

    id: str
    tenant: str
    name: str
    key_prefix: str  # the secret's first 12 characters
    scopes: list[str]
    prefixes: list[str]
    parent_id: str | None
    key_id: str | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    active: bool  # not revoked (an expired token is still listed, and refused)


class CreatedTokenOut(Out):
    token: TokenOut
    secret: str  # shown once


class TokenEnvelopeOut(Out):
    token: TokenOut


class TokensOut(Out):
    tokens: list[TokenOut]


class KeyOut(Out):
    """An API key as the admin API shows it: never its secret nor its digest."""

    id: str
    tenant: str
    name: str
    scopes: list[str]
    prefixes: list[str]
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    active: bool


class CreatedKeyOut(Out):
    key: KeyOut
    secret: str  # shown once


class KeyEnvelopeOut(Out):
    key: KeyOut


class KeysOut(Out):
    keys: list[KeyOut]


class TenantsOut(Out):
    tenants: list[str]


class PrincipalOut(Out):
    tenant: str
    scopes: list[str]
    kind: str
    key_id: str | None
    prefixes: list[str] | None
    expires_at: str | None


class AcquireRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/leases/{resource}."""

    holder: str
    ttl: Number | None = None  # seconds; the server's default when absent
    wait: Number = 0  # seconds to queue for the lease when it is held


class RenewRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of PATCH /v1/leases/{resource}: name the lease by its id or its token (or both)."""

    lease_id: str | None = None
    fencing_token: int | None = None
    ttl: Number | None = None


class LeaseOut(Out):
    """A resource's newest lease."""

    resource: str
    lease_id: str
    holder: str
    fencing_token: int
    fence: str  # the X-Stigmer-Fence value for writes under this lease
    active: bool
    created_at: str
    renewed_at: str
    expires_at: str
    released_at: str | None


def convert(body: Any, model: type) -> Any:
    """Validate a decoded body against a model; a mismatch is a 400 naming the field."""
    try:
        return msgspec.convert(body, model)
    except msgspec.ValidationError as exc:
        # msgspec says where: "Expected `int`, got `str` - at `$.ops[0].version`"
        message, _, where = str(exc).partition(" - at `")
        field = where.rstrip("`").removeprefix("$").removeprefix(".")
        for marker in ("unknown field `", "missing required field `"):  # "Object contains unknown field `compares`"
            if marker in message:
                name = message.split(marker, 1)[1].rstrip("`")
                field = f"{field}.{name}" if field else name
        raise APIError(400, "invalid_argument", str(exc), {"field": field} if field else None) from None
