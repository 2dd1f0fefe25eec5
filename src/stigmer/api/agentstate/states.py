"""AgentState states, their event log, query, watch stream and lease acquire (specs/agentstate.md §5.1,
§5.2.1), over the states engine (engine/states.py) and the lease engine."""

from __future__ import annotations

import unicodedata
from typing import Any, AsyncGenerator, AsyncIterator, Callable

from starlette.responses import Response, StreamingResponse

from ...engine import jsonpath
from ...engine.idempotency import canonical_json, fingerprint, validate_key
from ...engine.states import STATES, StateEvent, StateQuery, lease_resource
from ...engine.types import LeaseRecord
from ...services import Services
from ..http import encode
from ..kit import sse
from ..kit.body import request_body
from ..kit.streams import StreamSlots
from . import wire
from .surface import Call, Route, route

MAX_BODY = 10 << 20  # D21
MAX_KEY_CHARS = 1024  # D20


def lease_out(r: LeaseRecord, key: str | None = None) -> dict[str, Any]:
    return {"id": r.id, "state_key": key if key is not None else r.resource[len(STATES) + 1:], "holder": r.holder,
            "fencing_token": r.token, "expires_at": wire.ms(r.expires_at), "created_at": wire.ms(r.created_at),
            "renewed_at": wire.ms(r.renewed_at)}


def _tag(v: Any) -> str:
    if not isinstance(v, str):
        raise wire.expected("string", v)
    if not v:
        raise wire.bad("tag cannot be empty")
    if len(v) > 255:
        raise wire.bad("tag cannot exceed 255 characters")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in v):
        raise wire.bad("tag cannot contain whitespace or control characters")
    return v


def _tags(f: wire.Fields) -> list[str]:
    return [_tag(t) for t in f.array("tags", 0, 50) or []]


def _key(key: str) -> str:
    if len(key) > MAX_KEY_CHARS:
        raise wire.bad(f"state_key must be at most {MAX_KEY_CHARS} characters")
    return key


def _idempotency_key(call: Call) -> str | None:
    return validate_key(call.request.headers.get("idempotency-key"))


def _covers(call: Call, key: str) -> None:
    if not call.p.covers(STATES, key):
        raise wire.fail(403, "FORBIDDEN", "Capability token does not have required scope"
                        if call.p.kind == "token" else "this key is not allowed on this state", padded=True)


def routes(svc: Services) -> list[Route]:
    states = svc.states
    slots = StreamSlots(svc.settings.max_streams_per_client)
    svc.metrics.streams("agentstate", lambda: slots.total)

    def replayed(body: bytes, replay: bool) -> Response:
        return wire.json(body, 200, {"Idempotency-Replayed": "true"} if replay else None)

    async def put_state(call: Call) -> Response:
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        agent_id = f.string("agent_id", 1, 255, required=True)
        data = f.obj("data", required=True)
        metadata = f.obj("metadata")
        tags = _tags(f)
        lease_id = f.string("lease_id", 1)
        key = _key(call.params[0])
        idem = _idempotency_key(call)
        _covers(call, key)
        # the canonical validated request (§3.9): member order irrelevant, array order significant
        fp = fingerprint("PUT", key, canonical_json([agent_id, data, metadata, tags, lease_id])) if idem else None
        body, replay = await states.put_idempotent(call.p.tenant, key, agent_id, data, metadata, tags, lease_id, idem, fp)
        return replayed(body, replay)

    async def get_state(call: Call) -> Response:
        key = _key(call.params[0])
        _covers(call, key)
        q = call.request.query_params
        s = await states.get(call.p.tenant, key, wire.positive_int(q.get("at_sequence")),
                             wire.positive_int(q.get("at_time")))
        if s is None:
            raise wire.not_found("State not found")
        return wire.json(encode(s))

    async def delete_state(call: Call) -> Response:
        request = call.request
        lease_id = request.headers.get("x-lease-id") or request.query_params.get("lease_id") or None
        key = _key(call.params[0])
        idem = _idempotency_key(call)
        _covers(call, key)
        fp = fingerprint("DELETE", key, lease_id or "") if idem else None
        body, replay = await wire.or_not_found(states.delete_idempotent(call.p.tenant, key, lease_id, idem, fp),
                                               "State not found")
        return replayed(body, replay)

    async def state_events(call: Call) -> Response:
        key = _key(call.params[0])
        _covers(call, key)
        q = call.request.query_params
        rows = await states.events(call.p.tenant, key, wire.positive_int(q.get("after")) or 0,
                                   wire.lenient_limit(q.get("limit"), 50, 500))
        return wire.json({"data": rows, "pagination": {
            "limit": len(rows), "next_cursor": str(rows[-1].sequence) if rows else None}})

    async def query(call: Call) -> Response:
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        agent_id = f.string("agent_id", 1, 255)
        tags = _tags(f)
        updated_after = f.integer("updated_after", 0)
        updated_before = f.integer("updated_before", 0)
        json_path = f.string("json_path", 1)
        predicates: list[tuple[str, bool, Any]] = []
        if json_path is not None:
            predicates.append((json_path, f.present("json_equals"), f.body.get("json_equals")))
        for item in f.array("predicates", 0, 10) or []:
            if not isinstance(item, dict):
                raise wire.expected("object", item)
            predicates.append((wire.Fields(item).string("path", 1, required=True), "equals" in item, item.get("equals")))
        at_sequence = f.integer("at_sequence", positive=True)
        at_time = f.integer("at_time", 0)
        limit = f.integer("limit", 1, 100) or 50
        cursor = f.string("cursor")
        if any(jsonpath.parse(path) is None for path, _, _ in predicates):
            raise wire.bad("Unsupported JSON path")
        _covers(call, "")
        rows, nxt = await states.query(call.p.tenant, StateQuery(
            agent_id=agent_id, tags=tuple(tags), updated_after=updated_after, updated_before=updated_before,
            predicates=tuple(predicates), at_sequence=at_sequence, at_time=at_time, limit=limit,
            cursor=wire.positive_int(cursor)))
        return wire.json({"data": rows, "pagination": {"limit": len(rows),
                                                       "next_cursor": str(nxt) if nxt is not None else None}})

    async def watch(call: Call) -> Response:
        request = call.request
        _covers(call, "")
        q = request.query_params
        after = wire.positive_int(q.get("after"))
        if after is None:
            after = wire.positive_int((request.headers.get("last-event-id") or "").strip()) or 0
        once = q.get("once") == "true"
        who = request.scope["state"]["client"]
        slots.take(who)
        events = states.watch(call.p.tenant, after, once=once, heartbeat=svc.settings.sse_keepalive_seconds)
        return WatchStream(events, lambda: slots.give_back(who))

    async def acquire(call: Call) -> Response:
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        holder = f.string("holder", 1, 255, required=True)
        ttl_ms = f.integer("ttl_ms", 1000, 3_600_000) or 60_000
        key = _key(call.params[0])
        _covers(call, key)
        outcome = await svc.leases.acquire(call.p.tenant, lease_resource(key), holder, ttl_ms / 1000)
        return wire.json(lease_out(outcome.lease, key), 201)

    return [
        route("POST", "states/query", "state:read", query),
        route("GET", "states/watch", "state:watch", watch),
        route("GET", "states/{key}/events", "state:read", state_events),
        route("POST", "states/{key}/lease", "lease:write", acquire),
        route("PUT", "states/{key}", "state:write", put_state),
        route("GET", "states/{key}", "state:read", get_state),
        route("DELETE", "states/{key}", "state:write", delete_state),
    ]


def event_frame(e: StateEvent) -> bytes:
    return sse.frame(encode(e), e.sequence, "state." + e.event_type)


PING = b"event: ping\ndata: {}\n\n"


async def _frames(events: AsyncIterator[list[StateEvent] | None]) -> AsyncIterator[bytes]:
    async for batch in events:
        yield PING if batch is None else b"".join(event_frame(e) for e in batch)


class WatchStream(StreamingResponse):
    """The watch response: headers at once, then frames; however it ends (the client leaving before the first
    frame included), the engine's watch is closed and the client's stream slot given back."""

    def __init__(self, events: AsyncGenerator[list[StateEvent] | None, None], done: Callable[[], None]):
        super().__init__(_frames(events), headers=sse.HEADERS, media_type="text/event-stream")
        self.events, self.done = events, done

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.done()
            await self.events.aclose()
