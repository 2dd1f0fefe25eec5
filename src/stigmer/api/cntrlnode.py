"""The CntrlNode state-store surface (/v1/state/...): wire-compatible with cntrlnode-sdk 0.1.0a1.

Spec: specs/cntrlnode.md. Tenant = the API key's tenant ("default" in open mode), namespace
`cntrlnode`, key = `{workflowId}/{key}` (ids cannot contain '/', so a workflow is the prefix
`{workflowId}/`). Routing is done here on the raw path, because `%2F` inside a segment must not split it.
Check order: 401 -> 429 -> unknown path 404 / 405 -> ids 400 -> body size 413 -> body 400 -> value size
413 -> state (404, 409). Errors are `{"error": CODE, "message"}`; the engine's map in `_engine_error`.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl, unquote_to_bytes

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..engine import errors as engine_errors
from ..engine.changes import Watcher
from ..engine.kv import Limits, Op
from ..services import Services
from ..store.base import Change, ChangeFilter, Entry
from ..support.auth import DEFAULT_TENANT, KeyRing, bearer
from ..support.ratelimit import MemoryRateLimiter, RateLimiter
from . import errors as api_errors
from .http import BodyTooLarge, encode, read_body, rfc3339
from .statevec import AnyMethod

NAMESPACE = "cntrlnode"
PREFIX = "/v1/state"
SEMVEC_PATHS = ("/v1/state/context", "/v1/state/metrics")
TTL_MAX = 2_147_483_647
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
CORS_HEADERS = "Authorization, X-CntrlNode-Key, Last-Event-ID, Content-Type"
_decoder = msgspec.json.Decoder()


class Fail(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


def _not_found_route() -> Fail:
    return Fail(404, "NOT_FOUND", "route not found")


def _bad(message: str) -> Fail:
    return Fail(400, "INVALID_REQUEST", message)


def _engine_error(exc: engine_errors.EngineError, limits: Limits) -> Fail:
    if isinstance(exc, engine_errors.NotFound):
        return Fail(404, "NOT_FOUND", "key not found")
    if isinstance(exc, engine_errors.VersionConflict):
        return Fail(409, "VERSION_CONFLICT", exc.message, extra={"currentVersion": exc.current_version})
    if isinstance(exc, engine_errors.ValueTooLarge):
        return Fail(413, "PAYLOAD_TOO_LARGE", f"value exceeds {limits.max_value_bytes} bytes")
    if isinstance(exc, engine_errors.InvalidArgument):
        if exc.details.get("field") == "key":
            return _bad("invalid key")
        return _bad(exc.message)
    return Fail(500, "INTERNAL", "internal error")


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


def _decimal(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(b"c1:" + key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b"c1:") or len(raw) <= 3:
            raise ValueError
        return raw[3:].decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad("invalid cursor") from None


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
    return b"id: %d\ndata: " % c.rev + data + b"\n\n"


class Surface:
    def __init__(self, svc: Services, limiter: RateLimiter | None = None):
        s = svc.settings
        self.svc = svc
        self.kv = svc.kv
        self.hub = svc.hub
        self.keys = KeyRing(s.cntrlnode_api_keys)
        self.rate_limit = s.cntrlnode_rate_limit
        self.max_streams = s.cntrlnode_max_streams
        self.limits = Limits(max_value_bytes=s.cntrlnode_max_value_bytes,
                             max_key_bytes=max(svc.kv.limits.max_key_bytes, 513))
        self.max_body = s.cntrlnode_max_value_bytes + 65_536
        self.origins = {o.strip() for o in s.cors_origins.split(",") if o.strip()}
        self.keepalive = s.sse_keepalive_seconds
        self.limiter = limiter or MemoryRateLimiter()
        self.streams: dict[str, int] = {}

    # --- envelope

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin and (origin in self.origins or "*" in self.origins):
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def _error(self, request: Request, fail: Fail) -> Response:
        body: dict[str, Any] = {"error": fail.code, "message": fail.message, **(fail.extra or {})}
        headers = {**self._cors(request), **(fail.headers or {})}
        return Response(encode(body), fail.status, headers, media_type="application/json")

    def _json(self, request: Request, body: bytes | dict, status: int = 200) -> Response:
        return Response(body if isinstance(body, bytes) else encode(body), status, self._cors(request),
                        media_type="application/json")

    def render_exception(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return self._error(request, _not_found_route())
        if status == 405:
            return self._error(request, Fail(405, "METHOD_NOT_ALLOWED", "method not allowed"))
        return self._error(request, Fail(500, "INTERNAL", "internal error"))

    # --- auth, limits

    def _authenticate(self, request: Request, stream: bool) -> tuple[str, str]:
        """(tenant, client id for limits). Raises 401 when keys are configured and none is valid."""
        if not self.keys:
            peer = request.client.host if request.client else "unknown"
            return DEFAULT_TENANT, "ip:" + peer
        presented = [bearer(request.headers.get("authorization")), request.headers.get("x-cntrlnode-key")]
        if stream:
            presented.append(request.query_params.get("apiKey"))
        for key in presented:
            tenant = self.keys.lookup(key)
            if tenant is not None:
                return tenant, "key:" + api_key_id(key or "")
        raise Fail(401, "UNAUTHORIZED", "missing or invalid API key", {"WWW-Authenticate": "Bearer"})

    def _rate_limit(self, client: str) -> None:
        if self.rate_limit <= 0:
            return
        d = self.limiter.hit("cntrlnode:" + client, self.rate_limit)
        if not d.allowed:
            raise Fail(429, "RATE_LIMITED", "rate limit exceeded", {"Retry-After": str(d.retry_after)})

    # --- routing

    async def dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        if request.method == "GET" and path in SEMVEC_PATHS and any(
                name == "session_id" for name, _ in parse_qsl(request.url.query, keep_blank_values=True)):
            # semvec's /v1/state/context and /metrics: not built yet, answered in the native envelope.
            return api_errors.error_response(request, 404, "not_found", "route not found")
        try:
            if request.method == "OPTIONS" and self.origins and request.headers.get("origin"):
                return self._preflight(request)
            segments = path[len(PREFIX) + 1:].split("/") if path.startswith(PREFIX + "/") else None
            stream = segments is not None and len(segments) == 3 and segments[2] == "stream"
            tenant, client = self._authenticate(request, stream)
            self._rate_limit(client)
            if not segments or any(s == "" for s in segments) or len(segments) > 3 or (
                    len(segments) == 3 and segments[2] not in ("stream", "version")):
                raise _not_found_route()
            allow = {1: "GET", 2: "GET, POST, DELETE"}.get(len(segments)) or (
                "GET" if segments[2] == "stream" else "POST")
            if request.method not in allow.split(", "):
                raise Fail(405, "METHOD_NOT_ALLOWED", "method not allowed", {"Allow": allow})
            wf = _segment(segments[0], "workflowId")
            if len(segments) == 1:
                return await self.list(request, tenant, wf)
            key = _segment(segments[1], "key")
            if len(segments) == 3:
                if stream:
                    return self.stream(request, tenant, client, wf, key)
                return await self.set(request, tenant, wf, key, versioned=True)
            if request.method == "GET":
                return self.get(request, tenant, wf, key)
            if request.method == "POST":
                return await self.set(request, tenant, wf, key, versioned=False)
            await self.kv.apply(tenant, Op("delete", NAMESPACE, f"{wf}/{key}"), self.limits)
            return Response(status_code=204, headers=self._cors(request))
        except Fail as fail:
            return self._error(request, fail)
        except engine_errors.EngineError as exc:
            return self._error(request, _engine_error(exc, self.limits))

    def _preflight(self, request: Request) -> Response:
        return Response(status_code=204, headers={
            **self._cors(request),
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "86400",
        })

    # --- endpoints

    def get(self, request: Request, tenant: str, wf: str, key: str) -> Response:
        e = self.kv.get(tenant, NAMESPACE, f"{wf}/{key}")
        if e is None:
            raise Fail(404, "NOT_FOUND", "key not found")
        return self._json(request, b'{"value":' + e.value + b',"version":%d,"revision":%d}' % (e.version, e.mod_rev))

    async def set(self, request: Request, tenant: str, wf: str, key: str, versioned: bool) -> Response:
        try:
            raw = await read_body(request, self.max_body)
        except BodyTooLarge:
            raise Fail(413, "PAYLOAD_TOO_LARGE", f"request body exceeds {self.max_body} bytes") from None
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
            if not _is_int(expect) or expect < 0:
                raise _bad("expectedVersion must be a non-negative integer")
            expect = int(expect)
        ttl = body.get("ttl")
        if ttl is not None and (not _is_int(ttl) or not 0 <= ttl <= TTL_MAX):
            raise _bad("ttl must be an integer between 0 and 2147483647")
        op = Op("put", NAMESPACE, f"{wf}/{key}", value=body["value"], ttl=int(ttl) if ttl else None,
                expect_version=expect)
        e = await self.kv.apply(tenant, op, self.limits)
        return self._json(request, b'{"version":%d,"revision":%d}' % (e.version, e.mod_rev))

    async def list(self, request: Request, tenant: str, wf: str) -> Response:
        q = request.query_params
        prefix = q.get("prefix", "")
        cursor, raw_limit = q.get("cursor"), q.get("limit")
        paged = cursor is not None or raw_limit is not None
        limit = 100
        if raw_limit is not None:
            limit = _decimal(raw_limit) or 0
            if not 1 <= limit <= 1000:
                raise _bad("limit must be an integer between 1 and 1000")
        base = f"{wf}/"
        after = None
        if cursor is not None:
            after = base + decode_cursor(cursor)
        if paged:
            rows, last = await self.kv.list(tenant, NAMESPACE, base + prefix, after, limit)
            items = [entry_meta(e, e.key[len(base):]) for e in rows]
            nxt = encode_cursor(last[len(base):]) if last is not None else None
            return self._json(request, {"keys": items, "nextCursor": nxt})
        items = []
        while True:
            rows, last = await self.kv.list(tenant, NAMESPACE, base + prefix, after, 1000)
            items += [entry_meta(e, e.key[len(base):]) for e in rows]
            if last is None:
                break
            after = last
        return self._json(request, {"keys": items})

    def stream(self, request: Request, tenant: str, client: str, wf: str, key: str) -> Response:
        header = request.headers.get("last-event-id")
        if header:
            after = _decimal(header.strip())
            if after is None:
                raise _bad("invalid Last-Event-ID")
        else:
            raw = request.query_params.get("fromRevision")
            after = None if raw is None else _decimal(raw)
            if raw is not None and after is None:
                raise _bad("fromRevision must be a non-negative integer")
        if self.streams.get(client, 0) >= self.max_streams:
            raise Fail(429, "RATE_LIMITED", "too many open streams", {"Retry-After": "1"})
        flt = ChangeFilter(tenant, NAMESPACE, key=f"{wf}/{key}")
        headers = {**SSE_HEADERS, **self._cors(request)}
        current = self.svc.store.revision(tenant).current
        try:
            if after is not None and after > current:
                raise engine_errors.Compacted(self.svc.store.revision(tenant).compacted + 1, current)
            watcher = self.hub.watch(flt, after)
        except engine_errors.Compacted as exc:
            return StreamingResponse(self._compacted(exc, wf, key), media_type="text/event-stream",
                                     headers=headers)
        self.streams[client] = self.streams.get(client, 0) + 1
        return StreamingResponse(self._events(watcher, client, wf, key), media_type="text/event-stream",
                                 headers=headers)

    async def _compacted(self, exc: engine_errors.Compacted, wf: str, key: str) -> AsyncIterator[bytes]:
        data = encode({"workflowId": wf, "key": key, "oldestRevision": exc.oldest_revision,
                       "currentRevision": exc.current_revision})
        yield (b"retry: 3000\nid: %d\n\n" % exc.current_revision
               + b"event: compacted\nid: %d\ndata: " % exc.current_revision + data + b"\n\n")

    async def _events(self, watcher: Watcher, client: str, wf: str, key: str) -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\nid: %d\n\n" % watcher.last
            while True:
                try:
                    cs = await watcher.next(self.keepalive)
                except engine_errors.Compacted:
                    return  # fell behind past compaction: close; a resuming client gets `compacted`
                if cs is None:
                    if watcher.closed:
                        return
                    yield b": keep-alive\n\n"
                    continue
                frames = [cs]
                while (more := watcher.poll()) is not None and len(frames) < 64:
                    frames.append(more)
                yield b"".join(event_frame(c, wf, key) for f in frames for c in f.changes)
        finally:
            watcher.close()
            left = self.streams.get(client, 1) - 1
            if left > 0:
                self.streams[client] = left
            else:
                self.streams.pop(client, None)


def api_key_id(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _on_surface(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def routes(svc: Services) -> list[Route]:
    surface = Surface(svc)
    api_errors.register_surface("cntrlnode", _on_surface, surface.render_exception)

    endpoint = AnyMethod(surface.dispatch)
    return [Route(PREFIX, endpoint), Route(PREFIX + "/{rest:path}", endpoint)]


__all__ = ["routes", "Surface"]
