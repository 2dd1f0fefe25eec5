"""The CntrlNode state-store surface (/v1/state/...): wire-compatible with cntrlnode-sdk 0.1.0a1.

Spec: specs/cntrlnode.md. Tenant = the API key's tenant ("default" in open mode), namespace
`cntrlnode`, key = `{workflowId}/{key}` (ids cannot contain '/', so a workflow is the prefix
`{workflowId}/`). Routing is done here on the raw path, because `%2F` inside a segment must not split it.
Check order: 401 -> 429 -> unknown path 404 / 405 -> ids 400 -> body size 413 -> body 400 -> value size
413 -> state (404, 409). Errors are `{"error": CODE, "message"}`; the engine's map in `_engine_error`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from ..engine import errors as engine_errors
from ..engine.access import GuardedKV, watch_filter
from ..engine.types import ChangeSet
from ..engine.kv import Limits, Op
from ..services import Services
from .reference.openapi import BEARER, Operation, document
from ..engine.types import Change, Entry
from .http import encode, rfc3339
from .kit import sse
from .kit.body import BodyTooLarge, request_body
from .kit.cors import Cors
from .kit.cursors import decode_cursor, encode_cursor
from .kit.errors import Problem, problem_of
from .kit.params import parse_int, parse_position
from .kit.routing import AnyMethod
from .kit.streams import StreamSlots, TooManyStreams
from .kit.surface import Surface, bearer, client, header, principal

NAMESPACE = "cntrlnode"
PREFIX = "/v1/state"
_I = {"type": "integer"}
_WRITTEN = {"type": "object", "properties": {"version": _I, "revision": _I}}
_TTL = {"type": "integer", "minimum": 0, "description": "Seconds; 0 or absent: no expiry"}
# What dispatch() answers, for the reference page (/docs); specs/cntrlnode.md is the contract.
OPERATIONS = [
    Operation("get", PREFIX + "/{workflowId}", "A workflow's keys (paged with limit or cursor)",
              query=("prefix", "cursor", "limit"), response={"type": "object", "properties": {
                  "keys": {"type": "array"}, "nextCursor": {"type": ["string", "null"]}}}),
    Operation("get", PREFIX + "/{workflowId}/{key}", "Read a key",
              response={"type": "object", "properties": {"value": {}, "version": _I, "revision": _I}}),
    Operation("post", PREFIX + "/{workflowId}/{key}", "Write a key", body={
        "type": "object", "required": ["value"], "properties": {"value": {}, "ttl": _TTL}}, response=_WRITTEN),
    Operation("delete", PREFIX + "/{workflowId}/{key}", "Delete a key", status=204),
    Operation("post", PREFIX + "/{workflowId}/{key}/version", "Write a key if its version is expectedVersion",
              body={"type": "object", "required": ["value", "expectedVersion"], "properties": {
                  "value": {}, "expectedVersion": {"type": "integer", "minimum": 0}, "ttl": _TTL}},
              response=_WRITTEN),
    Operation("get", PREFIX + "/{workflowId}/{key}/stream", "A key's changes over SSE (Last-Event-ID resumes)",
              query=("fromRevision", "apiKey"), response={"type": "string"}),
]
ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}


def openapi() -> dict:
    return document("CntrlNode state store", "0.1.0a1", OPERATIONS,
                    {**BEARER, "description": "A Stigmer API key (or the x-cntrlnode-key header)"}, ERROR)
TTL_MAX = 2_147_483_647
CORS_HEADERS = "Authorization, X-CntrlNode-Key, Last-Event-ID, Content-Type"
CODES = {400: "INVALID_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
         408: "REQUEST_TIMEOUT", 409: "VERSION_CONFLICT", 410: "COMPACTED", 413: "PAYLOAD_TOO_LARGE",
         429: "RATE_LIMITED", 503: "UNAVAILABLE", 507: "INSUFFICIENT_STORAGE"}
_decoder = msgspec.json.Decoder()


def Fail(status: int, code: str, message: str, headers: dict[str, str] | None = None,
         extra: dict[str, Any] | None = None) -> Problem:
    """An error in this surface's own terms; `extra` members go into the body."""
    return Problem(status, code, message, extra, headers)


def _not_found_route() -> Problem:
    return Fail(404, "NOT_FOUND", "route not found")


def _bad(message: str) -> Problem:
    return Fail(400, "INVALID_REQUEST", message)


def problem(exc: Exception, limits: Limits, max_body: int) -> Problem:
    if isinstance(exc, engine_errors.NotFound):
        return Fail(404, "NOT_FOUND", "key not found")
    if isinstance(exc, engine_errors.VersionConflict):
        return Fail(409, "VERSION_CONFLICT", exc.message, extra={"currentVersion": exc.current_version})
    if isinstance(exc, engine_errors.ValueTooLarge):
        return Fail(413, "PAYLOAD_TOO_LARGE", f"value exceeds {limits.max_value_bytes} bytes")
    if isinstance(exc, engine_errors.InvalidArgument):
        return _bad("invalid key" if exc.details.get("field") == "key" else exc.message)
    if isinstance(exc, BodyTooLarge):
        return Fail(413, "PAYLOAD_TOO_LARGE", f"request body exceeds {max_body} bytes")
    if isinstance(exc, TooManyStreams):
        return Fail(429, "RATE_LIMITED", "too many open streams", {"Retry-After": "1"})
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return _not_found_route()
    return problem_of(exc)


def render(request: Request, p: Problem) -> Response:
    own = p.code.isupper()  # raised by this surface, in the spec's terms
    body: dict[str, Any] = {"error": p.code if own else CODES.get(p.status, "INTERNAL"), "message": p.message}
    if own:
        body.update(p.details)
    return Response(encode(body), p.status, p.headers, media_type="application/json")


def _segment(raw: str, what: str) -> str:
    """Percent-decode one raw path segment as UTF-8 and check the id rules."""
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"invalid {what}") from None
    size = len(text.encode())
    if not 1 <= size <= 256 or "/" in text or text in (".", "..") or any(
            ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise _bad(f"invalid {what}")
    return text


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())


def _decimal(raw: str | None, what: str, message: str) -> int | None:
    if raw is None:
        return None
    try:
        return parse_position(raw, what)
    except engine_errors.InvalidArgument:
        raise _bad(message) from None


def entry_meta(e: Entry, name: str) -> dict[str, Any]:
    return {"key": name, "version": e.version, "createdAt": rfc3339(e.created_at),
            "updatedAt": rfc3339(e.updated_at), "expiresAt": rfc3339(e.expires_at)}


def event_frame(c: Change, wf: str, key: str) -> bytes:
    kind = {"put": "set"}.get(c.type, c.type)
    new = c.value if c.value is not None else b"null"
    old = c.prev_value if c.prev_value is not None else b"null"
    data = (b'{"workflowId":' + encode(wf) + b',"key":' + encode(key) + b',"type":"' + kind.encode()
            + b'","value":' + new + b',"newValue":' + new + b',"oldValue":' + old
            + b',"version":%d,"revision":%d}' % (c.version, c.rev))
    return sse.frame(data, c.rev)


def _render_set(cs: ChangeSet) -> bytes:
    # The stream watches one key `wf/key`, and ids never hold "/", so each change names its own ids.
    return b"".join(event_frame(c, *c.key.split("/", 1)) for c in cs.changes)


# The route templates (the metrics' and the log's `route`); the third gets `stream` or `version`.
ROUTES = (PREFIX + "/{workflowId}", PREFIX + "/{workflowId}/{key}", PREFIX + "/{workflowId}/{key}/")
FORMAT = sse.Format(_render_set)  # shared by every stream, so a change set is rendered once


class CntrlNodeSurface:
    def __init__(self, svc: Services):
        s = svc.settings
        self.svc = svc
        self.hub = svc.hub
        self.limits = Limits(max_value_bytes=s.cntrlnode_max_value_bytes,
                             max_key_bytes=max(svc.kv.limits.max_key_bytes, 513))
        self.max_body = s.cntrlnode_max_value_bytes + 65_536
        self.cors = Cors(s.cors_origins, methods="GET, POST, DELETE, OPTIONS", headers=CORS_HEADERS)
        self.keepalive = s.sse_keepalive_seconds
        self.streams = StreamSlots(s.cntrlnode_max_streams)
        svc.metrics.streams("cntrlnode", lambda: self.streams.total)

    def surface(self) -> Surface:
        s = self.svc.settings
        return Surface("cntrlnode", (PREFIX,), render, credentials, self.cors,
                       problem=lambda exc: problem(exc, self.limits, self.max_body),
                       rate_limit=s.cntrlnode_rate_limit, rate_limit_anon=s.cntrlnode_rate_limit,
                       checks_path=False, openapi=openapi)

    def _json(self, body: bytes | dict, status: int = 200) -> Response:
        return Response(body if isinstance(body, bytes) else encode(body), status, media_type="application/json")

    # --- routing

    async def dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        if request.method == "OPTIONS" and self.cors.enabled and request.headers.get("origin"):
            return Response(status_code=204, headers=self.cors.preflight(None))
        segments = path[len(PREFIX) + 1:].split("/") if path.startswith(PREFIX + "/") else None
        if not segments or any(s == "" for s in segments) or len(segments) > 3 or (
                len(segments) == 3 and segments[2] not in ("stream", "version")):
            raise _not_found_route()
        allow = {1: "GET", 2: "GET, POST, DELETE"}.get(len(segments)) or (
            "GET" if segments[2] == "stream" else "POST")
        if request.method not in allow.split(", "):
            raise Fail(405, "METHOD_NOT_ALLOWED", "method not allowed", {"Allow": allow})
        request.scope["state"]["route"] = ROUTES[len(segments) - 1] + (segments[2] if len(segments) == 3 else "")
        kv = GuardedKV(self.svc.kv, principal(request))
        wf = _segment(segments[0], "workflowId")
        if len(segments) == 1:
            return await self.list(request, kv, wf)
        key = _segment(segments[1], "key")
        if len(segments) == 3:
            if segments[2] == "stream":
                return await self.stream(request, wf, key)
            return await self.set(request, kv, wf, key, versioned=True)
        if request.method == "GET":
            return await self.get(kv, wf, key)
        if request.method == "POST":
            return await self.set(request, kv, wf, key, versioned=False)
        await kv.apply(Op("delete", NAMESPACE, f"{wf}/{key}"), self.limits)
        return Response(status_code=204)

    # --- endpoints

    async def get(self, kv: GuardedKV, wf: str, key: str) -> Response:
        e = await kv.get(NAMESPACE, f"{wf}/{key}")
        if e is None:
            raise Fail(404, "NOT_FOUND", "key not found")
        return self._json(b'{"value":' + e.value + b',"version":%d,"revision":%d}' % (e.version, e.mod_rev))

    async def set(self, request: Request, kv: GuardedKV, wf: str, key: str, versioned: bool) -> Response:
        raw = await request_body(request, self.max_body)
        try:
            body = _decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise _bad("request body must be a JSON object")
        if "value" not in body:
            raise _bad("value is required")
        expect = None
        if versioned:
            expect = body.get("expectedVersion")
            if not _is_int(expect) or not 0 <= expect <= 2**63 - 1:
                raise _bad("expectedVersion must be a non-negative integer")
            expect = int(expect)
        ttl = body.get("ttl")
        if ttl is not None and (not _is_int(ttl) or not 0 <= ttl <= TTL_MAX):
            raise _bad("ttl must be an integer between 0 and 2147483647")
        op = Op("put", NAMESPACE, f"{wf}/{key}", value=body["value"], ttl=int(ttl) if ttl else None,
                expect_version=expect)
        e = await kv.apply(op, self.limits)
        return self._json(b'{"version":%d,"revision":%d}' % (e.version, e.mod_rev))

    async def list(self, request: Request, kv: GuardedKV, wf: str) -> Response:
        q = request.query_params
        prefix = q.get("prefix", "")
        cursor, raw_limit = q.get("cursor"), q.get("limit")
        paged = cursor is not None or raw_limit is not None
        limit = 100
        if raw_limit is not None:
            try:
                limit = parse_int(raw_limit, "limit", 1, 1000)
            except engine_errors.InvalidArgument:
                raise _bad("limit must be an integer between 1 and 1000") from None
        base = f"{wf}/"
        after = None
        if cursor is not None:
            after = base + decode_cursor(cursor)
        if paged:
            rows, last = await kv.list(NAMESPACE, base + prefix, after, limit)
            items = [entry_meta(e, e.key[len(base):]) for e in rows]
            nxt = encode_cursor(last[len(base):]) if last is not None else None
            return self._json({"keys": items, "nextCursor": nxt})
        items = []
        while True:
            rows, last = await kv.list(NAMESPACE, base + prefix, after, 1000)
            items += [entry_meta(e, e.key[len(base):]) for e in rows]
            if last is None:
                break
            after = last
        return self._json({"keys": items})

    async def stream(self, request: Request, wf: str, key: str) -> Response:
        header_id = request.headers.get("last-event-id")
        if header_id:
            after = _decimal(header_id.strip(), "Last-Event-ID", "invalid Last-Event-ID")
        else:
            after = _decimal(request.query_params.get("fromRevision"), "fromRevision",
                             "fromRevision must be a non-negative integer")
        flt = watch_filter(principal(request), NAMESPACE, None, f"{wf}/{key}")
        try:
            try:
                watcher = await self.hub.watch(flt, after)
            except engine_errors.FutureRevision as exc:  # the spec answers a future position with `compacted`
                raise engine_errors.Compacted((await self.hub.revision(flt.tenant)).compacted + 1,
                                              exc.current_revision) from None
        except engine_errors.Compacted as exc:
            return sse.once(sse.opening(exc.current_revision) + _compacted_frame(exc, wf, key))
        who = client(request)
        try:
            self.streams.take(who)
        except TooManyStreams:
            watcher.close()
            raise
        # Fell behind past compaction: close; a resuming client gets `compacted`. Keep-alives stay bare
        # comments, as the spec's §5.5 says.
        return sse.EventStream(watcher, FORMAT, self.keepalive, on_close=partial(self.streams.give_back, who))


def _compacted_frame(exc: engine_errors.Compacted, wf: str, key: str) -> bytes:
    data = encode({"workflowId": wf, "key": key, "oldestRevision": exc.oldest_revision,
                   "currentRevision": exc.current_revision})
    return sse.frame(data, exc.current_revision, "compacted", event_first=True)


def credentials(scope: Scope) -> list[str | None]:
    found = [bearer(header(scope, b"authorization")), header(scope, b"x-cntrlnode-key")]
    if scope["path"].endswith("/stream") and b"apiKey=" in scope["query_string"]:
        found += [v for k, v in parse_qsl(scope["query_string"].decode("latin-1")) if k == "apiKey"]
    return found


def mount(svc: Services) -> tuple[Surface, list[Route]]:
    """The surface's place at the edge, and its routes."""
    cn = CntrlNodeSurface(svc)
    endpoint = AnyMethod(cn.dispatch)
    return cn.surface(), [Route(PREFIX, endpoint), Route(PREFIX + "/{rest:path}", endpoint)]


__all__ = ["mount", "CntrlNodeSurface"]
