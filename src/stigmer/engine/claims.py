"""Claims backed by verifiable evidence (docs/claims.md; AgentState §5.4, D12, D14, D26, D27).

Rules:
- a claim is a statement about a subject (`subject_type`, `subject_id`) with 1-50 evidence items, created
  atomically with all of them, status `pending`, `updated_at = created_at`. Evidence never changes;
- a verification evaluates every evidence item in input order and stores a new run (every run is kept);
  the run is `verified` iff there is at least one item and every item passed, else `failed`. The claim's
  status and `updated_at` become the run's, in the same atomic unit as the run. The keys and state events
  evidence names are read before the mutation (so the writer never waits on them); the mutation re-checks
  that the claim exists;
- times are integer milliseconds of the store clock, so `<created_at>.<id>` cursors are exact. A run's
  time is one millisecond after the claim's previous one if the clock has not moved past it, so the runs
  of a claim are strictly ordered and the newest run always carries the claim's status;
- every claim is also the key `_claims/<id>` (a reserved namespace, written only here) holding its
  current status document: put on create and on each verification, so watchers, history and the change
  feed see every claim change in revision order with every other write.

Kinds and their results' messages:
- text_hash {source, data (string), hash}: SHA-256 of the UTF-8 data -> `hash matched` / `hash mismatch`;
- json_value {source, data (any JSON), json_path, expected_value}: `json path did not resolve`,
  `json value matched`, `json value mismatch`;
- state_event {source (a sequence or an event id), hash?, json_path?, expected_value?}: `state event not
  found`; with a hash, SHA-256 of the event's compact data ("" for a delete) -> `state event hash matched` /
  `state event hash mismatch`; else `json evidence is missing data, path, or expected value` (no data),
  `json path did not resolve`, `state event json value matched`, `json value mismatch`;
- key_value {namespace, key, json_path ("$" when absent), expected_value} (native): the tenant's live key
  at verification time, its source `<namespace>/<key>`: `key not found`, `json path did not resolve`,
  `key value matched`, `json value mismatch`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Protocol

import msgspec

from ..store.base import Store, WriteTxn
from . import jsonpath, kv, values
from .errors import InvalidArgument, NotFound
from .ids import new_id

CLAIMS = "_claims"  # the reserved namespace that mirrors every claim (engine/access.py)
KINDS = ("text_hash", "json_value", "state_event", "key_value")
ORDERS = ("asc", "desc")
MAX_EVIDENCE = 50
MAX_SOURCE = 255
MAX_PAGE = 1000
MAX_VALUE_BYTES = 10 * 1024 * 1024  # an evidence JSON value; the AgentState body limit, so it never binds there
MAX_DEPTH = 64
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_POSITIVE = re.compile(r"[1-9][0-9]*")

Status = Literal["pending", "verified", "failed"]
Cursor = tuple[int, str]  # (created_at ms, id): the last row of a page
MISSING: Any = values.MISSING  # an absent `data` / `expected_value` (JSON null is a value)


# records


class Evidence(msgspec.Struct, frozen=True):
    id: str
    claim_id: str
    kind: str
    source: str
    data: Any = MISSING  # text_hash: the string; json_value: the JSON value; absent otherwise
    hash: str | None = None  # lowercase hex
    json_path: str | None = None
    expected_value: Any = MISSING
    created_at: int = 0  # ms

    def key_ref(self) -> tuple[str, str]:
        """A key_value item's (namespace, key): its source is `<namespace>/<key>` (namespaces have no '/')."""
        namespace, _, key = self.source.partition("/")
        return namespace, key


class Claim(msgspec.Struct, frozen=True):
    id: str
    tenant: str
    subject_type: str
    subject_id: str
    statement: str
    status: str  # Status
    created_at: int  # ms
    updated_at: int  # ms: the newest run's time, or created_at before the first
    evidence: list[Evidence] = []  # in input order; empty on list rows


class Result(msgspec.Struct, frozen=True):
    evidence_id: str
    kind: str
    source: str
    passed: bool
    message: str


class Run(msgspec.Struct, frozen=True):
    id: str
    claim_id: str
    status: str  # "verified" | "failed"
    results: list[Result]  # in evidence order
    created_at: int  # ms


class EvidenceInput(msgspec.Struct, frozen=True):
    """One evidence item as a caller gives it; MISSING marks an absent JSON member."""

    kind: str
    source: str | None = None
    data: Any = MISSING
    hash: str | None = None
    json_path: str | None = None
    expected_value: Any = MISSING
    namespace: str | None = None  # key_value
    key: str | None = None  # key_value


# what state_event evidence reads (the AgentState state-event log provides it)


class StateEventView(Protocol):
    event_type: str  # "upsert" | "delete"
    data: Any  # the decoded JSON data; None for a delete


class EventLookup(Protocol):
    async def event(self, tenant: str, source: str) -> StateEventView | None:
        """The tenant's event by sequence when `source` is a positive integer string, else by event id."""


# evaluation


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def compact(data: Any) -> str:
    """The state-event serialization that a state_event hash covers (AgentState §6.5)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def is_sequence(source: str) -> bool:
    """Whether a state_event source names an event by sequence (else by id)."""
    return _POSITIVE.fullmatch(source) is not None


def _assert_json(document: Any, json_path: str, expected: Any, matched: str) -> tuple[bool, str]:
    found = jsonpath.resolve(document, jsonpath.parse(json_path) or ())
    if found is jsonpath.MISSING:
        return False, "json path did not resolve"
    if jsonpath.equal(found, expected):
        return True, matched
    return False, "json value mismatch"


def check_text_hash(e: Evidence) -> tuple[bool, str]:
    if sha256_hex(e.data) == e.hash:
        return True, "hash matched"
    return False, "hash mismatch"


def check_json_value(e: Evidence) -> tuple[bool, str]:
    return _assert_json(e.data, e.json_path or "$", e.expected_value, "json value matched")


def check_state_event(e: Evidence, event: StateEventView | None) -> tuple[bool, str]:
    if event is None:
        return False, "state event not found"
    if e.hash is not None:
        text = "" if event.event_type == "delete" else compact(event.data)
        if sha256_hex(text) == e.hash:
            return True, "state event hash matched"
        return False, "state event hash mismatch"
    if event.data is None or e.json_path is None or e.expected_value is MISSING:
        return False, "json evidence is missing data, path, or expected value"
    return _assert_json(event.data, e.json_path, e.expected_value, "state event json value matched")


def check_key_value(e: Evidence, entry_value: bytes | None) -> tuple[bool, str]:
    if entry_value is None:
        return False, "key not found"
    return _assert_json(values.decode(entry_value), e.json_path or "$", e.expected_value, "key value matched")


# validation


def _text(value: Any, field: str, lo: int, hi: int, nul: bool = False) -> str:
    """A string of lo-hi characters that every store can hold: valid Unicode, and no U+0000 unless `nul`
    (a text column of PostgreSQL cannot hold it; JSON-encoded data escapes it)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if len(value) < lo:
        raise InvalidArgument(f"String must contain at least {lo} character(s)", field=field)
    if len(value) > hi:
        raise InvalidArgument(f"String must contain at most {hi} character(s)", field=field)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} must be valid Unicode text", field=field) from None
    if not nul and "\x00" in value:
        raise InvalidArgument(f"{field} must not contain U+0000", field=field)
    return value


def _json(value: Any, field: str) -> Any:
    try:
        values.check_value(value, MAX_VALUE_BYTES, MAX_DEPTH)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{field}: {exc.message}", field=field) from None
    return value


def _hash(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidArgument("hash must be a SHA-256 hex digest", field=field)
    return value.lower()


def _path(value: Any, field: str) -> str:
    if jsonpath.parse(value) is None:
        raise InvalidArgument("json_path must be a simple JSON path", field=field)
    return value


def _evidence(item: Any, i: int, claim_id: str, evidence_id: str) -> Evidence:
    """A validated item; its created_at is the claim's, set in the mutation."""
    at = f"evidence[{i}]"
    if not isinstance(item, EvidenceInput):
        raise InvalidArgument(f"{at} must be an evidence item", field=at)
    if item.kind not in KINDS:
        raise InvalidArgument(f"{at}.kind must be one of {', '.join(KINDS)}", field=f"{at}.kind")
    made = {"id": evidence_id, "claim_id": claim_id, "kind": item.kind}
    if item.kind == "key_value":
        limits = kv.Limits()
        for name, check in (("namespace", kv.validate_namespace), ("key", kv.validate_key)):
            try:
                check(getattr(item, name), limits)
            except InvalidArgument as exc:
                raise InvalidArgument(exc.message, field=f"{at}.{name}") from None
        json_path = _path(item.json_path, f"{at}.json_path") if item.json_path is not None else "$"
        if item.expected_value is MISSING:
            raise InvalidArgument("expected_value is required", field=f"{at}.expected_value")
        return Evidence(source=f"{item.namespace}/{item.key}", json_path=json_path,
                        expected_value=_json(item.expected_value, f"{at}.expected_value"), **made)
    source = _text(item.source, f"{at}.source", 1, MAX_SOURCE)
    if item.kind == "text_hash":
        data = _text(item.data, f"{at}.data", 1, MAX_VALUE_BYTES, nul=True)
        return Evidence(source=source, data=data, hash=_hash(item.hash, f"{at}.hash"), **made)
    if item.kind == "json_value":
        json_path = _path(item.json_path, f"{at}.json_path")
        if item.data is MISSING:
            raise InvalidArgument("data is required", field=f"{at}.data")
        if item.expected_value is MISSING:
            raise InvalidArgument("expected_value is required", field=f"{at}.expected_value")
        return Evidence(source=source, data=_json(item.data, f"{at}.data"), json_path=json_path,
                        expected_value=_json(item.expected_value, f"{at}.expected_value"), **made)
    # state_event
    digest = _hash(item.hash, f"{at}.hash") if item.hash is not None else None
    json_path = _path(item.json_path, f"{at}.json_path") if item.json_path is not None else None
    if digest is None and (json_path is None or item.expected_value is MISSING):
        raise InvalidArgument("state_event evidence requires hash or json_path with expected_value", field=at)
    expected = _json(item.expected_value, f"{at}.expected_value") if item.expected_value is not MISSING else MISSING
    return Evidence(source=source, hash=digest, json_path=json_path, expected_value=expected, **made)


def _limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be an integer from 1 to {MAX_PAGE}", field="limit")
    return limit


def _order(order: Any) -> str:
    if order not in ORDERS:
        raise InvalidArgument("order must be asc or desc", field="order")
    return order


def _cursor(cursor: Any) -> Cursor | None:
    if cursor is None:
        return None
    if (not isinstance(cursor, tuple) or len(cursor) != 2 or not isinstance(cursor[0], int)
            or isinstance(cursor[0], bool) or not 0 <= cursor[0] <= 2**63 - 1 or not isinstance(cursor[1], str)):
        raise InvalidArgument("cursor must be (created_at ms, id)", field="cursor")
    return cursor


def ms(seconds: float) -> int:
    return round(seconds * 1000)


# the mutations


def _status_document(c: Claim, run_id: str | None) -> bytes:
    return values.encode({"id": c.id, "subject_type": c.subject_type, "subject_id": c.subject_id,
                          "statement": c.statement, "status": c.status, "created_at": c.created_at,
                          "updated_at": c.updated_at, "latest_run_id": run_id})


def _mirror(tx: WriteTxn, c: Claim, run_id: str | None) -> int:
    """Make `_claims/<id>` hold the claim's status document; return the revision taken."""
    current = kv.live(tx, CLAIMS, c.id)
    op = kv.Op("put", CLAIMS, c.id, value=_status_document(c, run_id), ttl=None)
    return kv.write_in(tx, op, current).mod_rev  # type: ignore[union-attr]


class Outcome(msgspec.Struct, frozen=True):
    """What a claim write left, and the revision of its `_claims/<id>` change."""

    claim: Claim
    run: Run | None
    revision: int


def create_in(tx: WriteTxn, claim: Claim) -> Outcome:
    now = ms(tx.now)
    claim = msgspec.structs.replace(claim, created_at=now, updated_at=now, evidence=[
        msgspec.structs.replace(e, created_at=now) for e in claim.evidence])
    tx.claims.insert(claim)
    return Outcome(claim, None, _mirror(tx, claim, None))


def verify_in(tx: WriteTxn, claim_id: str, run_id: str, status: str, results: list[Result]) -> Outcome:
    current = tx.claims.get(claim_id)
    if current is None:
        raise NotFound("claim not found", claim_id=claim_id)
    # Strictly after the claim's previous change: the newest run is always the one that set the status.
    at = max(ms(tx.now), current.updated_at + 1)
    run = Run(run_id, claim_id, status, results, at)
    tx.claims.add_run(run)  # and the claim's status and updated_at become the run's
    claim = msgspec.structs.replace(current, status=status, updated_at=at)
    return Outcome(claim, run, _mirror(tx, claim, run_id))


class Claims:
    """Claim operations over a store. `events` answers state_event evidence (None: every such item is
    `state event not found`); it may be set after construction, once the state-event log exists."""

    def __init__(self, store: Store, kv_engine: kv.KV, events: EventLookup | None = None):
        self.store = store
        self.kv = kv_engine
        self.events = events

    # writes

    async def create_outcome(self, tenant: str, subject_type: str, subject_id: str, statement: str,
                             evidence: list[EvidenceInput]) -> Outcome:
        _text(subject_type, "subject_type", 1, 100)
        _text(subject_id, "subject_id", 1, 255)
        _text(statement, "statement", 1, 5000)
        if not isinstance(evidence, list) or not 1 <= len(evidence) <= MAX_EVIDENCE:
            raise InvalidArgument(f"evidence must hold 1 to {MAX_EVIDENCE} items", field="evidence",
                                  limit=MAX_EVIDENCE)
        claim_id = new_id()  # every id outside the mutation: a rerun reuses them
        items = [_evidence(item, i, claim_id, new_id()) for i, item in enumerate(evidence)]
        claim = Claim(claim_id, tenant, subject_type, subject_id, statement, "pending", 0, 0, items)
        return await self.store.submit(tenant, lambda tx: create_in(tx, claim))

    async def create(self, tenant: str, subject_type: str, subject_id: str, statement: str,
                     evidence: list[EvidenceInput]) -> Claim:
        return (await self.create_outcome(tenant, subject_type, subject_id, statement, evidence)).claim

    async def verify_outcome(self, tenant: str, claim_id: str, found: Claim | None = None) -> Outcome:
        """`found`: the claim as the caller just read it (its evidence never changes), to spare a read."""
        claim = found if found is not None and found.id == claim_id else await self.get(tenant, claim_id)
        if claim is None:
            raise NotFound("claim not found", claim_id=claim_id)
        results = [Result(e.id, e.kind, e.source, *(await self._check(tenant, e))) for e in claim.evidence]
        status = "verified" if results and all(r.passed for r in results) else "failed"
        run_id = new_id()
        return await self.store.submit(tenant, lambda tx: verify_in(tx, claim_id, run_id, status, results))

    async def verify(self, tenant: str, claim_id: str) -> Run:
        return (await self.verify_outcome(tenant, claim_id)).run  # type: ignore[return-value]

    async def _check(self, tenant: str, e: Evidence) -> tuple[bool, str]:
        if e.kind == "text_hash":
            return check_text_hash(e)
        if e.kind == "json_value":
            return check_json_value(e)
        if e.kind == "state_event":
            event = await self.events.event(tenant, e.source) if self.events is not None else None
            return check_state_event(e, event)
        entry = await self.kv.get(tenant, *e.key_ref())
        return check_key_value(e, entry.value if entry is not None else None)

    # reads

    async def get(self, tenant: str, claim_id: str) -> Claim | None:
        """The claim with its evidence in input order, or None."""
        if not isinstance(claim_id, str) or not claim_id:
            return None
        return await self.store.claims.get(tenant, claim_id)

    async def list(self, tenant: str, *, limit: int = 50, cursor: Cursor | None = None, order: str = "desc",
                   subject_type: str | None = None, subject_id: str | None = None) -> tuple[list[Claim], Cursor | None]:
        """Claims without their evidence by (created_at, id) in `order`, strictly after `cursor`; the
        second item is the cursor of the next page, None when no row follows (pages are exact)."""
        limit, order, cursor = _limit(limit), _order(order), _cursor(cursor)
        for name, v in (("subject_type", subject_type), ("subject_id", subject_id)):
            if v is not None and not isinstance(v, str):
                raise InvalidArgument(f"{name} must be a string", field=name)
        rows = await self.store.claims.list(tenant, limit + 1, cursor, order, subject_type, subject_id)
        return rows[:limit], ((rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None)

    async def runs(self, tenant: str, claim_id: str, *, limit: int = 50, cursor: Cursor | None = None,
                   order: str = "desc") -> tuple[list[Run], Cursor | None]:
        """Every run of the claim by (created_at, id) in `order`; NotFound if there is no such claim."""
        limit, order, cursor = _limit(limit), _order(order), _cursor(cursor)
        if not isinstance(claim_id, str) or not claim_id or not await self.store.claims.exists(tenant, claim_id):
            raise NotFound("claim not found", claim_id=claim_id)
        rows = await self.store.claims.runs(tenant, claim_id, limit + 1, cursor, order)
        return rows[:limit], ((rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None)
