"""States: JSON documents per key, each version an event of an append-only log (AgentState §5.1).

Rules (docs: the AgentState spec §5.1, §6.1, §6.2, §6.5, §6.7):
- a put fully replaces a key's state and appends an `upsert` event; a delete appends a `delete` event
  (data null; agent, metadata and tags of the state deleted). Events are never removed;
- an event's `sequence` is the tenant revision its write took: strictly increasing in commit order, with
  gaps (other writes of the tenant take revisions too), and equal to the change feed's revision, so
  "the events after N" is always a prefix of what will ever be committed;
- each live state is also the key `_states/<state_key>` (a reserved namespace, written only here) whose
  value is the State document without `latest_sequence` (the entry's mod revision is it); a delete
  removes the key. So watchers, history and the change feed see every state change, and the state watch
  uses that feed as its doorbell (it reaches every replica);
- `created_at` is the key's first creation, kept across deletes (every event row carries it);
- the lease of key K is the lease engine's resource `_states/K`, checked before anything is written:
  no lease id while one is active is LeaseRequired; a lease id that is not the resource's newest lease
  (unknown, or superseded: forever) is LeaseMismatch; no lease id and no active lease is allowed;
- times are integer milliseconds of the store clock; data member order is kept as received.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, AsyncIterator

import msgspec

from ..store.base import Store, WriteTxn
from . import jsonpath, kv, values
from .changes import ChangeHub
from .idempotency import Idempotency
from .errors import Compacted, InvalidArgument, LeaseMismatch, LeaseRequired, NotFound
from .ids import new_id
from .types import ChangeFilter, StateEventRecord

STATES = "_states"  # the reserved namespace that mirrors every live state (engine/access.py)
MAX_KEY_CHARS = 1024
MAX_AGENT_CHARS = 255
MAX_TAGS = 50
MAX_TAG_CHARS = 255
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_PREDICATES = 11  # 10 predicates and json_path/json_equals
MAX_EVENTS_PAGE = 500
MAX_QUERY_LIMIT = 100
# Tunables, module attributes so tests can shrink them.
WATCH_PAGE = 500  # events per backlog read of a watch
ONCE_MAX = 1000  # events a once-watch replays at most
IDEMPOTENCY_SCOPE = "agentstate"  # Idempotency-Keys of state writes, per project (not per state key)
QUERY_CHUNK = 200  # candidate rows read by a query's first round; later rounds double it, up to
QUERY_CHUNK_MAX = 3200  # (a selective filter reads far, a page of matches stops early)

_TAG_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_SEQUENCE = re.compile(r"[0-9]{1,19}")


class State(msgspec.Struct):
    state_key: str
    agent_id: str
    data: Any
    metadata: Any
    tags: list[str]
    latest_sequence: int
    created_at: int
    updated_at: int
    deleted_at: int | None = None


class StateEvent(msgspec.Struct):
    sequence: int
    id: str
    state_key: str
    agent_id: str
    event_type: str  # "upsert" | "delete"
    data: Any
    metadata: Any
    tags: list[str]
    idempotency_key: str | None
    created_at: int


class StateQuery(msgspec.Struct):
    """A states query. `predicates`: (json path, has_expected, expected); one with an expected value holds
    iff the path resolves in data to a value equal to it, one without iff the path does not resolve.
    With `at_sequence` and/or `at_time` the query is historical."""

    agent_id: str | None = None
    tags: tuple[str, ...] = ()
    updated_after: int | None = None
    updated_before: int | None = None
    predicates: tuple[tuple[str, bool, Any], ...] = ()
    at_sequence: int | None = None
    at_time: int | None = None
    limit: int = 50
    cursor: int | None = None


def lease_resource(key: str) -> str:
    """The lease engine's resource that guards state key `key`."""
    return STATES + "/" + key


def ms(now: float) -> int:
    return int(now * 1000)


# validation: cheap, repeated inside the mutation so put_in / delete_in stand on their own


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_key(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidArgument("state_key must be a non-empty string", field="state_key")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidArgument(f"state_key must be at most {MAX_KEY_CHARS} characters", field="state_key",
                              limit=MAX_KEY_CHARS)
    _text(key, "state_key")


def _text(s: str, field: str) -> None:
    try:
        s.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} must be valid Unicode text", field=field) from None
    if "\x00" in s:  # no database text type holds it
        raise InvalidArgument(f"{field} must not contain U+0000", field=field)


def normal_tags(tags: Any) -> list[str]:
    """Tags validated, de-duplicated and sorted by code point."""
    if not isinstance(tags, (list, tuple)) or len(tags) > MAX_TAGS:
        raise InvalidArgument(f"tags must be an array of at most {MAX_TAGS} tags", field="tags", limit=MAX_TAGS)
    for t in tags:
        if not isinstance(t, str) or not t:
            raise InvalidArgument("tag cannot be empty", field="tags")
        if len(t) > MAX_TAG_CHARS:
            raise InvalidArgument(f"tag cannot exceed {MAX_TAG_CHARS} characters", field="tags")
        if _TAG_FORBIDDEN.search(t):
            raise InvalidArgument("tag cannot contain whitespace or control characters", field="tags")
        _text(t, "tags")
    return sorted(set(tags))


def _check_optional_id(value: Any, field: str, max_chars: int | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field} must be a non-empty string", field=field)
    if max_chars is not None and len(value) > max_chars:
        raise InvalidArgument(f"{field} must be at most {max_chars} characters", field=field, limit=max_chars)
    _text(value, field)


def check_put(key: Any, agent_id: Any, data: Any, metadata: Any, tags: Any, lease_id: Any,
              idempotency_key: Any) -> list[str]:
    """Raise InvalidArgument for a put the engine cannot store; return the normalised tags."""
    check_key(key)
    if not isinstance(agent_id, str) or not 1 <= len(agent_id) <= MAX_AGENT_CHARS:
        raise InvalidArgument(f"agent_id must be a string of 1-{MAX_AGENT_CHARS} characters", field="agent_id")
    _text(agent_id, "agent_id")
    if not isinstance(data, dict):
        raise InvalidArgument("data must be an object", field="data")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument("metadata must be an object", field="metadata")
    _check_optional_id(lease_id, "lease_id")
    _check_optional_id(idempotency_key, "idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS)
    return normal_tags(tags)


def _encode(value: Any, field: str) -> bytes:
    try:
        return values.encode(value)
    except (TypeError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
        raise InvalidArgument(f"{field} is not a JSON value: {exc}", field=field) from None


# mutations: run inside the writer (store/base.py); they may be re-run and raise before they write


def check_lease(tx: WriteTxn, key: str, lease_id: str | None) -> None:
    r = tx.leases.get(lease_resource(key))
    if lease_id is None:
        if r is not None and r.active(tx.now):
            raise LeaseRequired("Active lease requires lease_id", state_key=key)
    elif r is None or r.id != lease_id:
        # The row holds the newest lease: any other id was superseded (or never issued), for good.
        raise LeaseMismatch("lease_id does not match active lease", state_key=key)


def encode_put(data: dict, metadata: dict | None) -> tuple[bytes, bytes | None]:
    """A put's documents as stored (compact JSON, member order kept); InvalidArgument if not JSON."""
    return _encode(data, "data"), None if metadata is None else _encode(metadata, "metadata")


def put_in(tx: WriteTxn, key: str, agent_id: str, data: dict, metadata: dict | None, tags: Any,
           lease_id: str | None, idempotency_key: str | None, event_id: str,
           encoded: tuple[bytes, bytes | None] | None = None) -> State:
    """Write a state's new version and its `upsert` event; return that version (never re-read: D34).
    `encoded`: `encode_put(data, metadata)`, done before the mutation to spare the writer the work."""
    tags = check_put(key, agent_id, data, metadata, tags, lease_id, idempotency_key)
    check_lease(tx, key, lease_id)
    data_json, metadata_json = encoded or encode_put(data, metadata)
    now = ms(tx.now)
    previous = tx.states.last(key)
    created = previous.state_created_at if previous is not None else now
    document = values.encode({
        "state_key": key, "agent_id": agent_id, "data": msgspec.Raw(data_json),
        "metadata": None if metadata_json is None else msgspec.Raw(metadata_json), "tags": tags,
        "created_at": created, "updated_at": now, "deleted_at": None})
    op = kv.Op("put", STATES, key, value=document, ttl=None)
    sequence = kv.write_in(tx, op, kv.live(tx, STATES, key)).mod_rev  # type: ignore[union-attr]
    tx.states.append(StateEventRecord(sequence, event_id, key, agent_id, "upsert", data_json, metadata_json,
                                      values.encode(tags), idempotency_key, now, created))
    return State(key, agent_id, data, metadata, tags, sequence, created, now)


def delete_in(tx: WriteTxn, key: str, lease_id: str | None, idempotency_key: str | None, event_id: str) -> StateEvent:
    """Soft-delete a live state: remove its key and append a `delete` event; NotFound if not live."""
    check_key(key)
    _check_optional_id(lease_id, "lease_id")
    _check_optional_id(idempotency_key, "idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS)
    previous = tx.states.last(key)
    if previous is None or previous.event_type != "upsert":
        raise NotFound("State not found", state_key=key)
    check_lease(tx, key, lease_id)
    op = kv.Op("delete", STATES, key)
    sequence = kv.write_in(tx, op, kv.live(tx, STATES, key)).revision  # type: ignore[union-attr]
    record = StateEventRecord(sequence, event_id, key, previous.agent_id, "delete", None, previous.metadata,
                              previous.tags, idempotency_key, ms(tx.now), previous.state_created_at)
    tx.states.append(record)
    return event_of(record)


# rows as the engine's shapes


def _decoded(data: bytes | None) -> Any:
    return None if data is None else values.decode(data)


def event_of(r: StateEventRecord) -> StateEvent:
    return StateEvent(r.sequence, r.id, r.state_key, r.agent_id, r.event_type, _decoded(r.data),
                      _decoded(r.metadata), values.decode(r.tags), r.idempotency_key, r.created_at)


def _state_of(r: StateEventRecord, historical: bool, data: Any = None, tags: list[str] | None = None) -> State:
    """The State an upsert event shows: live (the key's newest event) or historical (§5.1.2)."""
    return State(r.state_key, r.agent_id, values.decode(r.data) if data is None else data,  # type: ignore[arg-type]
                 _decoded(r.metadata), values.decode(r.tags) if tags is None else tags, r.sequence,
                 r.created_at if historical else r.state_created_at, r.created_at)


class _Filter:
    """A StateQuery checked and compiled: rows are tested on what is cheapest first."""

    def __init__(self, q: StateQuery):
        if not isinstance(q, StateQuery):
            raise InvalidArgument("query must be a StateQuery")
        if q.agent_id is not None and (not isinstance(q.agent_id, str) or not q.agent_id):
            raise InvalidArgument("agent_id must be a non-empty string", field="agent_id")
        for field in ("updated_after", "updated_before", "at_time"):
            v = getattr(q, field)
            if v is not None and (not _is_int(v) or v < 0):
                raise InvalidArgument(f"{field} must be a non-negative integer", field=field)
        for field in ("at_sequence", "cursor"):
            v = getattr(q, field)
            if v is not None and (not _is_int(v) or v < 1):
                raise InvalidArgument(f"{field} must be a positive integer", field=field)
        if not _is_int(q.limit) or not 1 <= q.limit <= MAX_QUERY_LIMIT:
            raise InvalidArgument(f"limit must be 1-{MAX_QUERY_LIMIT}", field="limit", limit=MAX_QUERY_LIMIT)
        if not isinstance(q.predicates, (list, tuple)) or len(q.predicates) > MAX_PREDICATES:
            raise InvalidArgument(f"at most {MAX_PREDICATES} predicates", field="predicates")
        self.tags = set(normal_tags(q.tags))
        self.predicates: list[tuple[jsonpath.Path, bool, Any]] = []
        for p in q.predicates:
            if not isinstance(p, (list, tuple)) or len(p) != 3:
                raise InvalidArgument("a predicate is (path, has_expected, expected)", field="predicates")
            path = jsonpath.parse(p[0])
            if path is None:
                raise InvalidArgument("Unsupported JSON path", field="path")
            self.predicates.append((path, bool(p[1]), p[2]))
        self.q = q
        self.historical = q.at_sequence is not None or q.at_time is not None

    def state(self, r: StateEventRecord) -> State | None:
        """The row's State if it passes every filter."""
        q = self.q
        if q.agent_id is not None and r.agent_id != q.agent_id:
            return None
        if (q.updated_after is not None and r.created_at < q.updated_after) or (
                q.updated_before is not None and r.created_at > q.updated_before):
            return None
        tags = values.decode(r.tags)
        if self.tags and not self.tags.issubset(tags):
            return None
        data = values.decode(r.data)  # type: ignore[arg-type]
        for path, has_expected, expected in self.predicates:
            found = jsonpath.resolve(data, path)
            if has_expected:
                if found is jsonpath.MISSING or not jsonpath.equal(found, expected):
                    return None
            elif found is not jsonpath.MISSING:
                return None
        return _state_of(r, self.historical, data, tags)


class States:
    """State operations over a store; `hub` rings the state watch when a state changes."""

    def __init__(self, store: Store, hub: ChangeHub, idempotency: Idempotency | None = None):
        self.store = store
        self.hub = hub
        self.idempotency = idempotency or Idempotency(store)

    # writes

    async def put(self, tenant: str, key: str, agent_id: str, data: dict, metadata: dict | None = None,
                  tags: Any = (), lease_id: str | None = None, idempotency_key: str | None = None) -> State:
        """Create or fully replace a state; the version this call wrote (LeaseRequired, LeaseMismatch)."""
        tags = check_put(key, agent_id, data, metadata, tags, lease_id, idempotency_key)
        encoded = encode_put(data, metadata)
        event_id = new_id()  # outside the mutation: a rerun writes the same id
        return await self.store.submit(tenant, lambda tx: put_in(tx, key, agent_id, data, metadata, tags, lease_id,
                                                                 idempotency_key, event_id, encoded))

    async def delete(self, tenant: str, key: str, lease_id: str | None = None,
                     idempotency_key: str | None = None) -> StateEvent:
        """Soft-delete a live state; its `delete` event. NotFound when absent or already deleted."""
        check_key(key)
        _check_optional_id(lease_id, "lease_id")
        _check_optional_id(idempotency_key, "idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS)
        event_id = new_id()
        return await self.store.submit(tenant, lambda tx: delete_in(tx, key, lease_id, idempotency_key, event_id))

    async def put_idempotent(self, tenant: str, key: str, agent_id: str, data: dict, metadata: dict | None,
                             tags: Any, lease_id: str | None, idempotency_key: str | None,
                             fingerprint: bytes | None) -> tuple[bytes, bool]:
        """`put` under an Idempotency-Key (AgentState §3.9): the state written, as JSON, and whether it is the
        first request's answer replayed. The record, the state and its event commit together, so concurrent
        duplicates execute once; a refused write (a lease 409) records nothing."""
        tags = check_put(key, agent_id, data, metadata, tags, lease_id, idempotency_key)
        encoded = encode_put(data, metadata)
        event_id = new_id()
        return await self.store.submit(tenant, lambda tx: self._once(
            tx, idempotency_key, fingerprint,
            lambda: put_in(tx, key, agent_id, data, metadata, tags, lease_id, idempotency_key, event_id, encoded)))

    async def delete_idempotent(self, tenant: str, key: str, lease_id: str | None, idempotency_key: str | None,
                                fingerprint: bytes | None) -> tuple[bytes, bool]:
        """`delete` under an Idempotency-Key: `{"deleted": true, "event": …}` as JSON, and whether replayed."""
        check_key(key)
        _check_optional_id(lease_id, "lease_id")
        _check_optional_id(idempotency_key, "idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS)
        event_id = new_id()
        return await self.store.submit(tenant, lambda tx: self._once(
            tx, idempotency_key, fingerprint,
            lambda: {"deleted": True, "event": delete_in(tx, key, lease_id, idempotency_key, event_id)}))

    def _once(self, tx: WriteTxn, idempotency_key: str | None, fingerprint: bytes | None, write) -> tuple[bytes, bool]:
        if idempotency_key is not None:
            replay = self.idempotency.check_in(tx, IDEMPOTENCY_SCOPE, idempotency_key, fingerprint)
            if replay is not None:
                return replay.body, True
        body = msgspec.json.encode(write())
        if idempotency_key is not None:
            self.idempotency.record_in(tx, IDEMPOTENCY_SCOPE, idempotency_key, fingerprint, 200, body)
        return body, False

    # reads

    async def get(self, tenant: str, key: str, at_sequence: int | None = None,
                  at_time: int | None = None) -> State | None:
        """The live state, or with `at_sequence` and/or `at_time` (ms) the version that was current then
        (the key's last event within both bounds); None when there is none or it is a delete."""
        check_key(key)
        for field, v in (("at_sequence", at_sequence), ("at_time", at_time)):
            if v is not None and (not _is_int(v) or v < 0):
                raise InvalidArgument(f"{field} must be a non-negative integer", field=field)
        r = await self.store.states.last(tenant, key, at_sequence, at_time)
        if r is None or r.event_type != "upsert":
            return None
        return _state_of(r, at_sequence is not None or at_time is not None)

    async def events(self, tenant: str, key: str, after: int = 0, limit: int = 50) -> list[StateEvent]:
        """The key's events with sequence > after, ascending, deleted incarnations included."""
        check_key(key)
        _check_after(after)
        if not _is_int(limit) or not 1 <= limit <= MAX_EVENTS_PAGE:
            raise InvalidArgument(f"limit must be 1-{MAX_EVENTS_PAGE}", field="limit", limit=MAX_EVENTS_PAGE)
        return [event_of(r) for r in await self.store.states.of_key(tenant, key, after, limit)]

    async def event(self, tenant: str, source: str) -> StateEvent | None:
        """One event: by sequence when `source` is a positive integer string, else by event id."""
        if not isinstance(source, str) or not source:
            return None
        if _SEQUENCE.fullmatch(source):
            sequence = int(source)
            if not 0 < sequence <= kv.MAX_REVISION:
                return None
            r = await self.store.states.by_sequence(tenant, sequence)
        else:
            r = await self.store.states.by_id(tenant, source)
        return None if r is None else event_of(r)

    async def query(self, tenant: str, q: StateQuery) -> tuple[list[State], int | None]:
        """One exact page of states and the cursor of the next (None on the last page). Live: non-deleted
        states by latest_sequence desc. Historical: per key its version at the bounds, by that sequence desc."""
        flt = _Filter(q)
        want = q.limit + 1
        found: list[State] = []
        before = q.cursor
        chunk = max(want, QUERY_CHUNK)
        while len(found) < want:
            rows = await self.store.states.heads(tenant, before, q.at_sequence, q.at_time, chunk)
            for r in rows:
                s = flt.state(r)
                if s is not None:
                    found.append(s)
                    if len(found) == want:
                        break
            if len(rows) < chunk:
                break
            before = rows[-1].sequence
            chunk = min(chunk * 2, max(QUERY_CHUNK_MAX, want))
        page = found[:q.limit]
        return page, (page[-1].latest_sequence if len(found) > q.limit else None)

    # the watch

    async def watch(self, tenant: str, after: int, *, once: bool = False,
                    heartbeat: float = 15.0) -> AsyncIterator[list[StateEvent] | None]:
        """The tenant's events with sequence > after, ascending, in lists: the backlog in pages, then live
        events as they commit, with no gap and no repeat. None when `heartbeat` seconds pass with nothing
        new. `once`: at most ONCE_MAX backlog events, then the end. Ends when the hub closes (shutdown)."""
        _check_after(after)
        if once:
            left = ONCE_MAX
            while left > 0:
                page = min(WATCH_PAGE, left)
                rows = await self.store.states.after(tenant, after, page)
                if rows:
                    yield [event_of(r) for r in rows]
                    after, left = rows[-1].sequence, left - len(rows)
                if len(rows) < page:
                    return
            return
        flt = ChangeFilter(tenant, STATES)
        # Opened before the first read: whatever commits after that read rings it.
        watcher = await self.hub.watch(flt)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + heartbeat
            while True:
                rows = await self.store.states.after(tenant, after, WATCH_PAGE)
                if rows:
                    after = rows[-1].sequence
                    yield [event_of(r) for r in rows]
                    deadline = loop.time() + heartbeat
                    if len(rows) == WATCH_PAGE:
                        continue  # more backlog: read on before waiting
                # Caught up: wait for a state change newer than what was sent (a doorbell; the table is the truth).
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        yield None
                        deadline = loop.time() + heartbeat
                        continue
                    try:
                        newest = _drained(await watcher.next(remaining), watcher)
                    except Compacted:  # the watcher fell behind past compaction: a new one, then read
                        watcher.close()
                        watcher = await self.hub.watch(flt)
                        break
                    if watcher.closed:  # the hub closed it: the server is shutting down
                        return
                    if newest > after:
                        break
        finally:
            watcher.close()


def _drained(cs: Any, watcher: Any) -> int:
    """The newest revision among `cs` and every change set already at hand (0 for none)."""
    newest = 0
    while cs is not None:
        newest = max(newest, cs.revision)
        cs = watcher.poll()
    return newest


def _check_after(after: Any) -> None:
    if not _is_int(after) or not 0 <= after <= kv.MAX_REVISION:
        raise InvalidArgument(f"after must be an integer from 0 to {kv.MAX_REVISION}", field="after")
