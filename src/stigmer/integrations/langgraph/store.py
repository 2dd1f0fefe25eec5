"""A LangGraph long-term memory `BaseStore` kept in Stigmer keys (`pip install 'stigmer[langgraph]'`).

    from stigmer.client import Client
    from stigmer.integrations.langgraph import StigmerStore

    with Client("http://127.0.0.1:7474") as client:
        store = StigmerStore(client)
        store.put(("users", "42"), "prefs", {"theme": "dark"})

`batch` uses `client` (a `Client`), `abatch` uses `async_client` (an `AsyncClient`), or `client` in a worker
thread when only that is given. An item is one key of one Stigmer namespace (default `langgraph-store`):
`i/` then each namespace label percent-encoded and followed by `/`, then `:` and the percent-encoded item
key (`("users", "42"), "prefs"` → `i/users/42/:prefs`). Encoded labels hold no `/` or `:`, so a namespace
prefix is a key prefix and the `:` ends the namespace. The value is
`{"value", "ttl"}` (`ttl` in minutes, kept for refresh on read); `created_at` and `updated_at` are the key's own
(server) times, the latter kept in the record as `updated_at` once a refresh rewrites the key; the expiry is
the key's own TTL, so expired items are never read and the server sweeps them. docs/integrations.md has
the search, filter and TTL rules.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import Any, Iterable

from langgraph.store.base import (
    BaseStore, GetOp, Item, ListNamespacesOp, MatchCondition, Op, PutOp, Result, SearchItem, SearchOp, TTLConfig,
    validate_op_namespace,
)

from ...client import AsyncClient, Client, Entry
from ...client import Op as KvOp
from ...client import NotFoundError, VersionConflictError
from . import _kv
from ._kv import Flow, part, unpart

NAMESPACE = "langgraph-store"
_WORD = re.compile(r"\w+")


def namespace_prefix(namespace: tuple[str, ...]) -> str:
    return "i/" + "".join(part(label) + "/" for label in namespace)


def item_key(namespace: tuple[str, ...], key: str) -> str:
    return namespace_prefix(namespace) + ":" + part(key)


def parse_key(stored_key: str) -> tuple[tuple[str, ...], str]:
    labels, _, key = stored_key[2:].rpartition("/:")
    return tuple(unpart(label) for label in labels.split("/")) if labels else (), unpart(key)


def _updated_at(entry: Entry) -> datetime.datetime:
    kept = entry.value.get("updated_at")
    return datetime.datetime.fromisoformat(kept) if kept else entry.updated_at


def _item(entry: Entry, cls: type = Item, **extra: Any) -> Any:
    namespace, key = parse_key(entry.key)
    v = entry.value
    return cls(namespace=namespace, key=key, value=v["value"], created_at=entry.created_at,
               updated_at=_updated_at(entry), **extra)


def matches_filter(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """InMemoryStore's filter: each member equal (nested objects member by member, lists element by
    element) or an operator object (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`; the comparisons numeric)."""
    return not filter or all(_compare(value.get(k), f) for k, f in filter.items())


def _compare(have: Any, want: Any) -> bool:
    if isinstance(want, dict):
        if any(k.startswith("$") for k in want):
            return all(_operator(have, op, v) for op, v in want.items())
        return isinstance(have, dict) and all(_compare(have.get(k), v) for k, v in want.items())
    if isinstance(want, (list, tuple)):
        return (isinstance(have, (list, tuple)) and len(have) == len(want)
                and all(_compare(h, w) for h, w in zip(have, want)))
    return have == want


def _operator(have: Any, op: str, want: Any) -> bool:
    if op == "$eq":
        return have == want
    if op == "$ne":
        return have != want
    if op not in ("$gt", "$gte", "$lt", "$lte"):
        raise ValueError(f"unsupported filter operator {op!r}")
    try:
        a, b = float(have), float(want)
    except (TypeError, ValueError):
        return False  # a missing or non-numeric member does not compare
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def words(value: Any) -> set[str]:
    """The lower-cased words of every string (and member name) in a JSON value."""
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.update(w.lower() for w in _WORD.findall(v))
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return out


def query_score(query: str, value: Any) -> float:
    """The share of the query's words found in the item (0 when none, or the query has no words)."""
    wanted = {w.lower() for w in _WORD.findall(query)}
    return len(wanted & words(value)) / len(wanted) if wanted else 0.0


def does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = condition.path
    if len(namespace) < len(path):
        return False
    pairs = (zip(namespace, path) if condition.match_type == "prefix"
             else zip(reversed(namespace), reversed(path)) if condition.match_type == "suffix" else None)
    if pairs is None:
        raise ValueError(f"unsupported match type {condition.match_type!r}")
    return all(p == "*" or n == p for n, p in pairs)


class StigmerStore(BaseStore):
    """A BaseStore over a Stigmer server. `client` / `async_client` are SDK clients the caller owns; `ttl`
    is LangGraph's TTLConfig (`default_ttl` minutes, `refresh_on_read`)."""

    supports_ttl = True

    def __init__(self, client: Client | None = None, *, async_client: AsyncClient | None = None,
                 namespace: str = NAMESPACE, ttl: TTLConfig | None = None) -> None:
        if client is None and async_client is None:
            raise TypeError("StigmerStore needs a Client (client=) or an AsyncClient (async_client=)")
        if isinstance(client, AsyncClient):
            client, async_client = None, client
        self.client = client
        self.async_client = async_client
        self.namespace = namespace
        self.ttl_config = ttl

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        if self.client is None:
            raise TypeError("this StigmerStore has only an AsyncClient: use abatch (aget, aput, asearch, …)")
        return _kv.run_sync(self.client, self._batch(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        if self.async_client is None:
            return await asyncio.to_thread(self.batch, ops)
        return await _kv.run_async(self.async_client, self._batch(ops))

    # the flow

    def _batch(self, ops: list[Op]) -> Flow:
        """Reads in order, then the batch's puts (the last for each item wins), as InMemoryStore does."""
        for op in ops:
            validate_op_namespace(op)
        results: list[Result] = [None] * len(ops)
        refresh: dict[str, Entry] = {}
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        found = yield from _kv.batch_get(self.namespace, [item_key(op.namespace, op.key) for _, op in gets])
        for (i, op), entry in zip(gets, found):
            if entry is not None:
                results[i] = _item(entry)
                if op.refresh_ttl:
                    refresh[entry.key] = entry
        puts: dict[str, PutOp] = {}
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = yield from self._search(op, refresh)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._list_namespaces(op)
            elif isinstance(op, PutOp):
                puts[item_key(op.namespace, op.key)] = op
            elif not isinstance(op, GetOp):
                raise ValueError(f"unknown operation {type(op).__name__}")
        yield from self._refresh([e for k, e in refresh.items() if k not in puts])
        if puts:
            yield from self._put(puts)
        return results

    def _search(self, op: SearchOp, refresh: dict[str, Entry]) -> Flow:
        found = yield from _kv.entries(self.namespace, namespace_prefix(op.namespace_prefix))
        rows = [e for e in found if matches_filter(e.value["value"], op.filter)]
        # PostgresStore's order: newest updated_at first (ties, within a millisecond, by the later write)
        rows.sort(key=lambda e: (_updated_at(e), e.mod_revision), reverse=True)
        scored: list[tuple[Entry, float | None]]
        if op.query:
            scored = [(e, query_score(op.query, e.value["value"])) for e in rows]
            scored = sorted((s for s in scored if s[1] > 0), key=lambda s: s[1], reverse=True)
        else:
            scored = [(e, None) for e in rows]
        page = scored[op.offset:op.offset + op.limit]
        if op.refresh_ttl:
            refresh.update((e.key, e) for e, _ in page)
        return [_item(e, SearchItem, score=score) for e, score in page]

    def _list_namespaces(self, op: ListNamespacesOp) -> Flow:
        prefix: tuple[str, ...] = ()
        for condition in op.match_conditions or ():
            if condition.match_type == "prefix" and "*" not in condition.path and len(condition.path) > len(prefix):
                prefix = tuple(condition.path)
        found = yield from _kv.entries(self.namespace, namespace_prefix(prefix), values=False)
        namespaces = {parse_key(e.key)[0] for e in found}
        namespaces = {ns for ns in namespaces if all(does_match(c, ns) for c in op.match_conditions or ())}
        if op.max_depth is not None:
            namespaces = {ns[:op.max_depth] for ns in namespaces}
        return sorted(namespaces)[op.offset:op.offset + op.limit]

    def _refresh(self, entries: list[Entry]) -> Flow:
        """Restart the TTL of items read with refresh: the same record re-put with its TTL, only over the
        version read (an item written meanwhile already has a fresh TTL)."""
        for e in entries:
            ttl = e.value.get("ttl")
            if ttl is None:
                continue
            # The item's updated_at is the key's until a refresh rewrites the key: then it is kept in the record.
            record = {**e.value, "updated_at": e.value.get("updated_at") or e.updated_at.isoformat()}
            try:
                yield _kv.Call("put", (self.namespace, e.key, record), {"ttl": ttl * 60, "if_version": e.version})
            except VersionConflictError:
                pass

    def _put(self, puts: dict[str, PutOp]) -> Flow:
        """Every put and delete of the batch in one transaction (or as few as the limits allow). A put is a plain
        write (the last writer wins; the key's own creation time is the item's created_at, so nothing needs
        reading first); a delete is sent only for an item that exists, and re-read if another writer removed it
        first (a transaction's delete of an absent key fails it whole)."""
        writes = []
        deletes = []
        for key, op in puts.items():
            if op.value is None:
                deletes.append(key)
                continue
            ttl = op.ttl  # BaseStore.put has applied ttl_config's default_ttl already
            expiry = {"ttl": ttl * 60} if ttl is not None else {}
            writes.append(KvOp("put", self.namespace, key, value={"value": dict(op.value), "ttl": ttl},
                               **expiry))
        while True:
            found = yield from _kv.batch_get(self.namespace, deletes)
            deletes = [key for key, e in zip(deletes, found) if e is not None]
            try:
                yield from _kv.write(writes + [KvOp("delete", self.namespace, key) for key in deletes])
                return
            except NotFoundError:
                continue
