"""The statevec surface (/v, /v/batch, /v/{hash}): wire-compatible with the StateVector Protocol v0.2.

Spec: specs/statevec.md. One global namespace: tenant "default", namespace `statevec`, key = the
64-hex address (SHA-256 of the secret). Every request is charged one rate-limit token before anything
else, then the path and method, the body and its members are checked in the spec's order (§3.5), and
the write goes to the same engine functions as the native API. Errors are `{"ok": false, "error"}`
with the fixed messages of the §3.5 table; the engine's errors are mapped in `_engine_error`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Any, Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..engine import errors as engine_errors
from ..engine import values
from ..engine.kv import Deleted, Limits, Op
from ..services import Services
from ..store.base import Entry
from ..support.auth import DEFAULT_TENANT
from ..support.ratelimit import MemoryRateLimiter, RateLimiter, client_ip, parse_networks
from . import errors as api_errors
from .http import BodyTooLarge, encode, read_body

NAMESPACE = "statevec"
MAX_DEPTH = 64
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_decoder = msgspec.json.Decoder()

ALLOW = {"/v": "PUT, PATCH, DELETE, OPTIONS", "/v/batch": "POST, OPTIONS", "hash": "GET, HEAD, OPTIONS"}
EXPOSE = "ETag, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
PREFLIGHT_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_HEADERS = "Content-Type, If-None-Match, x-statevec-key"
OPS = ("incr", "merge", "append")
_ABSENT: Any = msgspec.UNSET


class Fail(Exception):
    """A statevec error response: status and fixed message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def address(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def etag(e: Entry) -> str:
    """Strong, quoted, derived from the write revision: it never repeats for an address."""
    return f'"r{e.mod_rev}"'


def ts(e: Entry) -> float:
    return round(e.updated_at, 3)


def entry_json(e: Entry) -> bytes:
    return b'{"val":' + e.value + b',"ts":' + encode(ts(e)) + b"}"


def _tag_matches(header: str, tag: str) -> bool:
    inner = tag.strip('"')
    for t in header.split(","):
        t = t.strip()
        if t == "*":
            return True
        t = t.removeprefix("W/").strip()
        if t == tag or t == inner:
            return True
    return False


def _engine_error(exc: engine_errors.EngineError, limits: Limits) -> Fail:
    if isinstance(exc, engine_errors.NotFound):
        return Fail(404, "not found")
    if isinstance(exc, engine_errors.TypeMismatch):
        what = {"value_is_not_a_number": "value is not a number", "value_is_not_an_object": "value is not an object",
                "field_is_not_a_number": "field is not a number", "value_is_not_a_list": "value is not a list"}
        return Fail(409, f"cannot {exc.op}: {what.get(exc.reason, exc.reason.replace('_', ' '))}")
    if isinstance(exc, engine_errors.ValueTooLarge):
        return Fail(413, f"val exceeds {limits.max_value_bytes} bytes")
    if isinstance(exc, engine_errors.InvalidArgument):
        if "nested" in exc.message:
            return Fail(400, "val nested too deeply")
        if "finite" in exc.message:  # incr overflowing to infinity
            return Fail(400, "amount must be a number")
        return Fail(400, "invalid JSON")
    return Fail(500, "internal error")


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (not isinstance(v, float) or math.isfinite(v))


class Surface:
    """Settings, limiter and handlers of the statevec surface for one app."""

    def __init__(self, svc: Services, limiter: RateLimiter | None = None):
        s = svc.settings
        self.svc = svc
        self.kv = svc.kv
        self.limits = Limits(max_value_bytes=s.statevec_max_value_bytes, max_depth=MAX_DEPTH,
                             max_batch=max(s.statevec_max_batch, 1), max_key_bytes=svc.kv.limits.max_key_bytes)
        self.default_ttl = s.statevec_default_ttl
        self.max_ttl = s.statevec_max_ttl
        self.max_body = s.statevec_max_body_bytes
        self.max_batch = s.statevec_max_batch
        self.anon_limit = s.statevec_rate_limit_anon
        self.key_limit = s.statevec_rate_limit_key
        self.keys = [k.strip() for k in s.statevec_api_keys.split(",") if k.strip()]
        self.trusted = parse_networks(s.statevec_trusted_proxies)
        self.upgrade_url = s.statevec_upgrade_url
        origins = [o.strip() for o in s.statevec_cors_origins.split(",") if o.strip()]
        self.origins = None if not origins or "*" in origins else set(origins)
        self.limiter = limiter or MemoryRateLimiter()

    # --- common headers, rate limit, errors

    def _cors(self, request: Request) -> dict[str, str]:
        if self.origins is None:
            return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSE}
        origin = request.headers.get("origin")
        if origin in self.origins:
            return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE, "Vary": "Origin"}
        return {"Access-Control-Expose-Headers": EXPOSE, "Vary": "Origin"}

    def _valid_key(self, presented: str | None) -> str | None:
        if not presented:
            return None
        found = None
        for k in self.keys:
            if hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), k.encode()) and found is None:
                found = k
        return found

    def _charge(self, request: Request) -> tuple[dict[str, str], Fail | None]:
        """Take one token; return the rate-limit headers and, when the bucket is empty, the 429."""
        key = self._valid_key(request.headers.get("x-statevec-key"))
        if key is not None:
            limit, bucket = self.key_limit, "statevec:key:" + hashlib.sha256(key.encode()).hexdigest()
        else:
            peer = request.client.host if request.client else None
            ip = client_ip(peer, request.headers.get("x-forwarded-for"), self.trusted)
            limit, bucket = self.anon_limit, "statevec:ip:" + ip
        if limit <= 0:
            return {}, None
        d = self.limiter.hit(bucket, limit)
        headers = {"X-RateLimit-Limit": str(d.limit), "X-RateLimit-Remaining": str(d.remaining),
                   "X-RateLimit-Reset": str(d.reset)}
        if d.allowed:
            return headers, None
        headers["X-RateLimit-Remaining"] = "0"
        headers["Retry-After"] = str(d.retry_after)
        body: dict[str, Any] = {"ok": False, "error": "rate limit exceeded", "limit": d.limit, "remaining": 0,
                                "reset": d.reset, "retry_after": d.retry_after}
        if self.upgrade_url:
            body["upgrade"] = self.upgrade_url
        if key is None and self.keys and self.key_limit > 0:
            body["hint"] = f"Add x-statevec-key header for {self.key_limit}/min"
        else:
            body["hint"] = f"Slow down: limit is {d.limit}/min"
        fail = Fail(429, "rate limit exceeded")
        fail.body = body  # type: ignore[attr-defined]
        return headers, fail

    def _respond(self, request: Request, status: int, body: bytes | None, headers: dict[str, str]) -> Response:
        headers = {**self._cors(request), **headers}
        if body is None:
            return Response(status_code=status, headers=headers)
        return Response(body, status, headers, media_type="application/json")

    def _error(self, request: Request, fail: Fail, headers: dict[str, str]) -> Response:
        body = getattr(fail, "body", None) or {"ok": False, "error": fail.message}
        return self._respond(request, fail.status, encode(body), {**headers, **(fail.headers or {})})

    def render_exception(self, request: Request, exc: Exception) -> Response:
        """Errors that escaped a handler (unknown route, unexpected failure), in this surface's shape."""
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return self._error(request, Fail(404, "not found"), {})
        if status == 405:
            return self._error(request, Fail(405, "method not allowed"), {"Allow": ALLOW["/v"]})
        return self._error(request, Fail(500, "internal error"), {})

    async def dispatch(self, request: Request, path: str) -> Response:
        """One entry point for every method on every statevec path (`path` is "/v", "/v/batch",
        "hash" or "other")."""
        method = request.method
        if method == "OPTIONS":
            if path == "other":
                return self._error(request, Fail(404, "not found"), {})
            return self._respond(request, 204, None, {
                "Access-Control-Allow-Methods": PREFLIGHT_METHODS,
                "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers")
                or PREFLIGHT_HEADERS,
                "Access-Control-Max-Age": "86400",
            })
        headers, limited = self._charge(request)
        try:
            if limited is not None:
                raise limited
            if path == "other":
                raise Fail(404, "not found")
            allowed = {"/v": ("PUT", "PATCH", "DELETE"), "/v/batch": ("POST",), "hash": ("GET", "HEAD")}[path]
            if method not in allowed:
                raise Fail(405, "method not allowed", {"Allow": ALLOW[path]})
            if path == "hash":
                return await self.get(request, headers)
            body = await self._body(request)
            if path == "/v/batch":
                return await self.batch(request, body, headers)
            if method == "PUT":
                return await self.put(request, body, headers)
            if method == "PATCH":
                return await self.patch(request, body, headers)
            return await self.delete(request, body, headers)
        except Fail as fail:
            return self._error(request, fail, headers)
        except engine_errors.EngineError as exc:
            return self._error(request, _engine_error(exc, self.limits), headers)
        except Exception:  # noqa: BLE001 - the spec's 500 carries no details
            return self._error(request, Fail(500, "internal error"), headers)

    # --- parsing

    async def _body(self, request: Request) -> dict:
        try:
            raw = await read_body(request, self.max_body)
        except BodyTooLarge:
            raise Fail(413, "request body too large") from None
        try:
            body = _decoder.decode(raw)
        except RecursionError:
            raise Fail(400, "val nested too deeply") from None
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
            raise Fail(400, "invalid JSON") from None
        if not isinstance(body, dict):
            raise Fail(400, "body must be a JSON object")
        return body

    def _secret(self, body: dict) -> str:
        key = body.get("key")
        if not isinstance(key, str) or not 1 <= len(key) <= 1024:
            raise Fail(400, "key must be a string of 1-1024 characters")
        return address(key)

    def _ttl(self, body: dict) -> Any:
        ttl = body.get("ttl")
        if ttl is None:
            return self.default_ttl if self.default_ttl > 0 else None
        if not _is_int(ttl) or ttl <= 0:
            raise Fail(400, "ttl must be a positive integer")
        if ttl > self.max_ttl:
            raise Fail(400, f"ttl exceeds maximum of {self.max_ttl} seconds")
        return int(ttl)

    def _val(self, val: Any) -> None:
        """Depth, then encoded size, of a request's `val` (§3.5 steps 9 and 10)."""
        if values.depth(val) > MAX_DEPTH:
            raise Fail(400, "val nested too deeply")
        if len(values.encode(val)) > self.limits.max_value_bytes:
            raise Fail(413, f"val exceeds {self.limits.max_value_bytes} bytes")

    def _respond_write(self, request: Request, e: Entry, headers: dict[str, str], with_val: bool) -> Response:
        body = b'{"ok":true,"hash":"' + e.key.encode() + b'"'
        if with_val:
            body += b',"val":' + e.value
        return self._respond(request, 200, body + b"}", {**headers, "ETag": etag(e)})

    # --- endpoints

    async def put(self, request: Request, body: dict, headers: dict[str, str]) -> Response:
        h = self._secret(body)
        if "val" not in body:
            raise Fail(400, "val is required")
        val = body["val"]
        ttl = self._ttl(body)
        self._val(val)
        e = await self.kv.apply(DEFAULT_TENANT, Op("put", NAMESPACE, h, value=val, ttl=ttl), self.limits)
        return self._respond_write(request, e, headers, with_val=False)

    async def patch(self, request: Request, body: dict, headers: dict[str, str]) -> Response:
        h = self._secret(body)
        op = body.get("op")
        if not isinstance(op, str) or op not in OPS:
            raise Fail(400, "op must be one of: incr, merge, append")
        if op in ("merge", "append") and "val" not in body:
            raise Fail(400, "val is required")
        val = body.get("val")
        if op == "incr":
            field, amount = body.get("field"), body.get("amount")
            if field is not None and (not isinstance(field, str) or not field):
                raise Fail(400, "field must be a non-empty string")
            if amount is not None and not _is_number(amount):
                raise Fail(400, "amount must be a number")
            ttl = self._ttl(body)
            engine_op = Op("incr", NAMESPACE, h, amount=1 if amount is None else amount,
                           path=[field] if field is not None else None, ttl=ttl)
        elif op == "merge":
            if not isinstance(val, dict):
                raise Fail(400, "merge val must be an object")
            deep = body.get("deep")
            if deep is not None and not isinstance(deep, bool):
                raise Fail(400, "deep must be a boolean")
            ttl = self._ttl(body)
            self._val(val)
            engine_op = Op("merge", NAMESPACE, h, value=val, deep=bool(deep), null_deletes=False, ttl=ttl)
        else:
            mx = body.get("max")
            if mx is not None and (not _is_int(mx) or mx < 1):
                raise Fail(400, "max must be a positive integer")
            ttl = self._ttl(body)
            self._val(val)
            engine_op = Op("append", NAMESPACE, h, value=val, max_items=None if mx is None else int(mx), ttl=ttl)
        e = await self.kv.apply(DEFAULT_TENANT, engine_op, self.limits)
        return self._respond_write(request, e, headers, with_val=True)

    async def delete(self, request: Request, body: dict, headers: dict[str, str]) -> Response:
        h = self._secret(body)
        result = await self.kv.apply(DEFAULT_TENANT, Op("delete", NAMESPACE, h), self.limits)
        assert isinstance(result, Deleted)
        return self._respond(request, 200, b'{"ok":true}', headers)

    async def get(self, request: Request, headers: dict[str, str]) -> Response:
        raw = request.path_params["hash"]
        if not _HASH.fullmatch(raw):
            raise Fail(400, "invalid hash")
        e = self.kv.get(DEFAULT_TENANT, NAMESPACE, raw.lower())
        if e is None:
            raise Fail(404, "not found")
        tag = etag(e)
        headers = {**headers, "ETag": tag, "Cache-Control": "no-cache"}
        inm = request.headers.get("if-none-match")
        if inm is not None and _tag_matches(inm, tag):
            return self._respond(request, 304, None, headers)
        return self._respond(request, 200, entry_json(e), headers)

    async def batch(self, request: Request, body: dict, headers: dict[str, str]) -> Response:
        hashes = body.get("hashes")
        if not isinstance(hashes, list) or not 1 <= len(hashes) <= self.max_batch:
            raise Fail(400, f"hashes must be a list of 1-{self.max_batch} hashes")
        if not all(isinstance(h, str) and _HASH.fullmatch(h) for h in hashes):
            raise Fail(400, "invalid hash")
        found = await self.kv.get_many(DEFAULT_TENANT, NAMESPACE, [h.lower() for h in hashes])
        items = b",".join(entry_json(e) if e is not None else b"null" for e in found)
        return self._respond(request, 200, b'{"results":[' + items + b"]}", headers)


class AnyMethod:
    """An ASGI endpoint that Starlette routes every method to (a plain function would get GET/HEAD only),
    so that this surface answers 405 itself, after charging the rate limit."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]):
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)


def _on_surface(path: str) -> bool:
    return path == "/v" or path.startswith("/v/")


def routes(svc: Services) -> list[Route]:
    surface = Surface(svc)
    api_errors.register_surface("statevec", _on_surface, surface.render_exception)

    def handler(kind: str) -> AnyMethod:
        return AnyMethod(lambda request: surface.dispatch(request, kind))

    return [
        Route("/v", handler("/v")),
        Route("/v/batch", handler("/v/batch")),
        Route("/v/{hash:str}", handler("hash")),
        Route("/v/{rest:path}", handler("other")),
    ]


__all__ = ["routes", "address", "Surface"]
