"""Versioned JSON keys: the rules of every key operation, for every front door.

Mutations are functions run inside the store's writer (`WriteTxn`), so each is atomic. Rules:
- version: 1 on create, +1 per write; delete or expiry makes the key absent (version 0);
- every committed change set takes the tenant's next revision (one per transaction, however many keys);
- an expired key is absent for every operation; a write that finds an expired row first records its
  `expire` change (own revision), so streams always show the expiry before the new write.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

import msgspec

from ..store.base import Store, WriteTxn
from .types import Change, Entry
from . import fencing, values
from .errors import CompareFailed, InvalidArgument, NotFound, VersionConflict
from .values import MISSING

# `ttl` for a write: a number of seconds (> 0), None for no expiry, or KEEP to keep the current expiry.
KEEP: Any = "keep"
# Longest TTL: 2**31-1 s (68 years), the most any surface's contract accepts (CntrlNode §5.1). Keeps every
# expiry a representable date, far before year 9999.
MAX_TTL_SECONDS = 2_147_483_647
# Revisions are SQLite integers: anything outside this range is no revision at all.
MAX_REVISION = 2**63 - 1


class Limits(msgspec.Struct, frozen=True):
    max_value_bytes: int = 1_048_576
    max_key_bytes: int = 1024
    max_namespace_bytes: int = 256
    max_batch: int = 100
    max_depth: int = 64
    max_page: int = 1000


class Compare(msgspec.Struct, frozen=True):
    """A transaction guard on one key: each given field must hold."""

    namespace: str
    key: str
    version: int | None = None  # 0 = absent
    exists: bool | None = None
    value: Any = MISSING  # JSON-equal to the current value


class Op(msgspec.Struct, frozen=True):
    """One write of a transaction, or a single-key mutation."""

    op: str  # put | delete | incr | merge | append | patch
    namespace: str
    key: str
    value: Any = MISSING  # put, merge, append
    ttl: Any = KEEP  # seconds, None or KEEP
    amount: int | float = 1  # incr
    path: list[str] | None = None  # incr
    deep: bool = False  # merge
    null_deletes: bool = False  # merge
    max_items: int | None = None  # append
    patch: Any = None  # patch
    expect_version: int | None = None  # 0 = must be absent
    expect_revision: int | None = None  # the entry's mod revision must equal this
    fence: fencing.Fence | None = None  # write only while this is the token of the resource's active lease


class Deleted(msgspec.Struct, frozen=True):
    """What a delete returns: its revision and the entry it removed."""

    revision: int
    previous: Entry


class TxnResult(msgspec.Struct, frozen=True):
    revision: int  # 0 when nothing changed
    results: list[Entry | Deleted]  # per op


_NAMESPACE_CHARS = re.compile(r"[A-Za-z0-9._-]+")
OPS = ("put", "delete", "incr", "merge", "append", "patch")


def validate_namespace(namespace: str, limits: Limits) -> None:
    if not isinstance(namespace, str) or not namespace:
        raise InvalidArgument("namespace must be a non-empty string", field="namespace")
    if len(namespace.encode()) > limits.max_namespace_bytes:
        raise InvalidArgument(f"namespace exceeds {limits.max_namespace_bytes} bytes", field="namespace")
    if not _NAMESPACE_CHARS.fullmatch(namespace):
        raise InvalidArgument("namespace may contain only ASCII letters, digits, '.', '_' and '-'", field="namespace")


def validate_key(key: str, limits: Limits) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidArgument("key must be a non-empty string", field="key")
    try:
        size = len(key.encode())
    except UnicodeEncodeError:
        raise InvalidArgument("key must be valid Unicode text", field="key") from None
    if size > limits.max_key_bytes:
        raise InvalidArgument(f"key exceeds {limits.max_key_bytes} bytes", field="key", limit=limits.max_key_bytes)
    if "\x00" in key or "\U0010ffff" in key:
        raise InvalidArgument("key must not contain U+0000 or U+10FFFF", field="key")


def is_live(e: Entry | None, now: float) -> bool:
    return e is not None and (e.expires_at is None or e.expires_at > now)


def _expire(tx: WriteTxn, e: Entry) -> None:
    rev = tx.new_revision()
    tx.kv.delete(e.namespace, e.key)
    tx.record(Change(e.tenant, rev, e.namespace, e.key, "expire", None, e.value, 0, tx.now))


def live(tx: WriteTxn, namespace: str, key: str) -> Entry | None:
    """The key's live entry; an expired row found here is expired on the spot."""
    e = tx.kv.get(namespace, key)
    if e is not None and not is_live(e, tx.now):
        _expire(tx, e)
        return None
    return e


def write_in(tx: WriteTxn, op: Op, current: Entry | None) -> Entry | Deleted:
    """Apply one prepared op inside another capability's mutation (a lease mirrored as a key);
    `current` is the key's live entry (`live`)."""
    return _apply(tx, tx.tenant, op, current, tx.new_revision, Limits())


def sweep_expired(tx: WriteTxn, limit: int) -> int:
    """Expire up to `limit` of the tenant's due entries, each as its own change; return how many."""
    due = tx.kv.expired(limit)
    for e in due:
        _expire(tx, e)
    return len(due)


def _expires_at(ttl: Any, now: float, current: Entry | None) -> float | None:
    if ttl is KEEP:
        return current.expires_at if current is not None else None
    return None if ttl is None else now + ttl


def _check_version(op: Op, current: Entry | None) -> None:
    have = current.version if current is not None else 0
    if op.expect_version is not None and have != op.expect_version:
        raise VersionConflict(op.expect_version, have)
    if op.expect_revision is not None and (current is None or current.mod_rev != op.expect_revision):
        raise VersionConflict(op.expect_version if op.expect_version is not None else have, have)


def _write(tx: WriteTxn, tenant: str, op: Op, current: Entry | None, data: bytes, rev: int) -> Entry:
    now = tx.now
    entry = Entry(
        tenant, op.namespace, op.key, data,
        version=current.version + 1 if current else 1,
        create_rev=current.create_rev if current else rev,
        mod_rev=rev,
        created_at=current.created_at if current else now,
        updated_at=now,
        expires_at=_expires_at(op.ttl, now, current),
    )
    tx.kv.put(entry)
    tx.record(Change(tenant, rev, op.namespace, op.key, "put", data, current.value if current else None, entry.version, now))
    return entry


def _new_value(op: Op, current: Entry | None, limits: Limits) -> Any:
    if op.op == "put":
        return op.value
    if op.op == "patch":
        if current is None:
            raise NotFound("key not found", namespace=op.namespace, key=op.key)
        return values.patch_json(current.value, op.patch, limits.max_value_bytes, limits.max_depth)
    cur = values.decode(current.value) if current is not None else MISSING
    if op.op == "incr":
        return values.incr(cur, op.amount, op.path)
    if op.op == "merge":
        return values.merge(cur, op.value, deep=op.deep, null_deletes=op.null_deletes)
    if op.op == "append":
        return values.append(cur, op.value, op.max_items)
    raise InvalidArgument(f"unknown op {op.op!r}; expected one of {', '.join(OPS)}", field="op")


def _apply(tx: WriteTxn, tenant: str, op: Op, current: Entry | None, rev_of: Callable[[], int],
           limits: Limits) -> Entry | Deleted:
    """Apply one op to a key whose live entry is `current`; the revision is taken only if it writes."""
    _check_version(op, current)
    if op.op == "delete":
        if current is None:
            raise NotFound("key not found", namespace=op.namespace, key=op.key)
        rev = rev_of()
        tx.kv.delete(op.namespace, op.key)
        tx.record(Change(tenant, rev, op.namespace, op.key, "delete", None, current.value, 0, tx.now))
        return Deleted(rev, current)
    if op.op == "put":  # encoded and checked by _prepare, off the writer thread
        data = op.value
    else:
        data = values.check_value(_new_value(op, current, limits), limits.max_value_bytes, limits.max_depth)
    return _write(tx, tenant, op, current, data, rev_of())


def _compare_holds(c: Compare, e: Entry | None) -> str | None:
    if c.exists is not None and (e is not None) != c.exists:
        return f"{c.namespace}/{c.key} {'does not exist' if c.exists else 'exists'}"
    if c.version is not None and (e.version if e else 0) != c.version:
        return f"{c.namespace}/{c.key} has version {e.version if e else 0}, not {c.version}"
    if c.value is not MISSING and (e is None or not _holds_value(e.value, c.value)):
        return f"{c.namespace}/{c.key} does not hold the expected value"
    return None


def _holds_value(stored: bytes, expected: Any) -> bool:
    try:  # equal compact encodings are equal JSON; otherwise compare by the JSON data model
        if stored == values.encode(expected):
            return True
    except (TypeError, RecursionError, msgspec.EncodeError):
        raise InvalidArgument("compare value is not JSON", field="value") from None
    return values.json_equal(values.decode(stored), expected)


def check_revision(rev: Any, field: str) -> None:
    """A revision given by a client: an integer 0..2**63-1 (what SQLite can hold)."""
    if not isinstance(rev, int) or isinstance(rev, bool) or not 0 <= rev <= MAX_REVISION:
        raise InvalidArgument(f"{field} must be an integer from 0 to {MAX_REVISION}", field=field)


class KV:
    """Key/value operations over a store. Reads are inline or pooled; writes go through the writer."""

    def __init__(self, store: Store, limits: Limits | None = None):
        self.store = store
        self.limits = limits or Limits()
        self.clock = store.clock.now

    def _check(self, namespace: str, key: str | None = None) -> None:
        validate_namespace(namespace, self.limits)
        if key is not None:
            validate_key(key, self.limits)

    # reads

    async def get(self, tenant: str, namespace: str, key: str) -> Entry | None:
        """The live entry or None."""
        self._check(namespace, key)
        e = await self.store.kv.get(tenant, namespace, key)
        return e if is_live(e, self.clock()) else None

    async def get_many(self, tenant: str, namespace: str, keys: list[str]) -> list[Entry | None]:
        self._check(namespace)
        if not isinstance(keys, list) or not 1 <= len(keys) <= self.limits.max_batch:
            raise InvalidArgument(f"keys must be a list of 1-{self.limits.max_batch} keys", field="keys")
        for k in keys:
            validate_key(k, self.limits)
        now = self.clock()
        return [e if is_live(e, now) else None for e in await self.store.kv.get_many(tenant, namespace, keys)]

    async def list(self, tenant: str, namespace: str, prefix: str = "", after: str | None = None,
                   limit: int = 100) -> tuple[list[Entry], str | None]:
        """Live entries by key byte order; the second item is the last key when more follow."""
        self._check(namespace)
        if not 1 <= limit <= self.limits.max_page:
            raise InvalidArgument(f"limit must be 1-{self.limits.max_page}", field="limit")
        rows = await self.store.kv.scan(tenant, namespace, prefix, after, limit + 1, self.clock())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].key if more else None)

    async def namespaces(self, tenant: str, ranges: list[tuple[str, str]] | None = None) -> list[tuple[str, int]]:
        """(namespace, live keys) of the tenant by name; with `ranges`, only the keys in those ranges."""
        return await self.store.kv.namespaces(tenant, self.clock(), ranges)

    async def history(self, tenant: str, namespace: str, key: str, before: int | None = None,
                      limit: int = 100) -> list[Change]:
        """Past changes of one key within the change retention, newest first."""
        self._check(namespace, key)
        if not 1 <= limit <= self.limits.max_page:
            raise InvalidArgument(f"limit must be 1-{self.limits.max_page}", field="limit")
        if before is not None:
            check_revision(before, "before")
        return await self.store.kv.history(tenant, namespace, key, before, limit)

    # writes

    async def apply(self, tenant: str, op: Op, limits: Limits | None = None) -> Entry | Deleted:
        """One single-key mutation; returns the entry written, or `Deleted`."""
        self._check(op.namespace, op.key)
        limits = limits or self.limits
        op = _prepare(op, limits)

        def run(tx: WriteTxn) -> Entry | Deleted:
            if op.fence is not None:  # first: a refused write writes nothing, not even an expiry
                fencing.check(tx, op.fence)
            current = live(tx, op.namespace, op.key)
            return _apply(tx, tenant, op, current, tx.new_revision, limits)

        return await self.store.submit(tenant, run)

    async def put(self, tenant: str, namespace: str, key: str, value: Any, *, ttl: Any = None,
                  expect_version: int | None = None) -> Entry:
        return await self.apply(tenant, Op("put", namespace, key, value=value, ttl=ttl, expect_version=expect_version))

    async def delete(self, tenant: str, namespace: str, key: str, *, expect_version: int | None = None) -> Deleted:
        return await self.apply(tenant, Op("delete", namespace, key, expect_version=expect_version))

    async def incr(self, tenant: str, namespace: str, key: str, amount: int | float = 1, *,
                   path: list[str] | None = None, ttl: Any = KEEP) -> Entry:
        return await self.apply(tenant, Op("incr", namespace, key, amount=amount, path=path, ttl=ttl))

    async def merge(self, tenant: str, namespace: str, key: str, patch: dict, *, deep: bool = False,
                    null_deletes: bool = False, ttl: Any = KEEP) -> Entry:
        return await self.apply(tenant, Op("merge", namespace, key, value=patch, deep=deep,
                                           null_deletes=null_deletes, ttl=ttl))

    async def append(self, tenant: str, namespace: str, key: str, item: Any, *, max_items: int | None = None,
                     ttl: Any = KEEP) -> Entry:
        return await self.apply(tenant, Op("append", namespace, key, value=item, max_items=max_items, ttl=ttl))

    async def txn(self, tenant: str, compares: Iterable[Compare], ops: Iterable[Op]) -> TxnResult:
        """Check every comparison, then apply every op, all or nothing, under one revision."""
        compares, ops = list(compares), list(ops)
        if len(compares) + len(ops) > self.limits.max_batch:
            raise InvalidArgument(f"a transaction holds at most {self.limits.max_batch} compares and ops")
        for c in compares:
            self._check(c.namespace, c.key)
        for op in ops:
            self._check(op.namespace, op.key)
        limits = self.limits
        ops = [_prepare(op, limits) for op in ops]

        def run(tx: WriteTxn) -> TxnResult:
            for fence in {op.fence for op in ops if op.fence is not None}:
                fencing.check(tx, fence)
            # Expire every touched key first, so expiries take revisions before the transaction's.
            for ref in {(x.namespace, x.key) for x in [*compares, *ops]}:
                live(tx, *ref)
            for i, c in enumerate(compares):
                failure = _compare_holds(c, tx.kv.get(c.namespace, c.key))
                if failure:
                    raise CompareFailed(i, failure)
            rev = 0

            def rev_of() -> int:
                nonlocal rev
                rev = rev or tx.new_revision()
                return rev

            results = [_apply(tx, tenant, op, tx.kv.get(op.namespace, op.key), rev_of, limits) for op in ops]
            return TxnResult(rev, results)

        return await self.store.submit(tenant, run)


def _prepare(op: Op, limits: Limits) -> Op:
    """Validate an op before it reaches the writer; a put's value is encoded here."""
    _check_op(op)
    if op.fence is not None:
        validate_key(op.fence.resource, limits)  # a lease's resource is a key of the lease namespace
    if op.op == "put":
        return msgspec.structs.replace(op, value=values.check_value(op.value, limits.max_value_bytes, limits.max_depth))
    if op.op == "patch":  # shape errors answer here, off the writer thread
        return msgspec.structs.replace(op, patch=values.parse_patch(op.patch))
    return op


def _check_op(op: Op) -> None:
    if op.op not in OPS:
        raise InvalidArgument(f"unknown op {op.op!r}; expected one of {', '.join(OPS)}", field="op")
    if op.ttl is not KEEP and op.ttl is not None and not (values.is_number(op.ttl) and 0 < op.ttl <= MAX_TTL_SECONDS):
        # NaN fails both comparisons; no float() conversion, so a huge int cannot overflow here
        raise InvalidArgument(f"ttl must be a positive number of seconds, at most {MAX_TTL_SECONDS}",
                              field="ttl", limit=MAX_TTL_SECONDS)
    if op.op in ("put", "merge", "append") and op.value is MISSING:
        raise InvalidArgument(f"{op.op} needs a value", field="value")
    if op.op == "incr" and not values.is_number(op.amount):
        raise InvalidArgument("amount must be a number", field="amount")
    if op.op == "incr" and op.path is not None and (
            not isinstance(op.path, list) or not all(isinstance(p, str) and p for p in op.path)):
        raise InvalidArgument("path must be a list of non-empty member names", field="path")
    if op.op == "merge" and not isinstance(op.value, dict):
        raise InvalidArgument("merge value must be an object", field="value")
    if op.op == "append" and op.max_items is not None and (
            not isinstance(op.max_items, int) or isinstance(op.max_items, bool) or op.max_items < 1):
        raise InvalidArgument("max must be a positive integer", field="max")
    if op.expect_version is not None and (not isinstance(op.expect_version, int) or op.expect_version < 0):
        raise InvalidArgument("expected version must be a non-negative integer", field="version")
