"""The statevec surface (/v, /v/batch, /v/{hash}): wire-compatible with the StateVector Protocol v0.2.

Spec: specs/statevec.md. One global namespace: tenant "default", namespace `statevec`, key = the
64-hex address (SHA-256 of the secret). The edge charges every request one rate-limit token first (a
valid API key in `x-statevec-key` selects the keyed bucket; nothing else about keys matters here) and
adds the CORS and rate-limit headers; then the path and method, the body and its members are checked
in the spec's order (§3.5). Writes run as the principal the secret grants (that one address), reads as
the principal anyone has (an address they name), through the same engine calls as the native API.
Errors are `{"ok": false, "error"}` with the fixed messages of the §3.5 table.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..engine import errors as engine_errors
from ..engine import values
from ..engine.access import GuardedKV, statevec_reader, statevec_writer
from ..engine.kv import Deleted, Limits, Op
from ..services import Services
from ..engine.types import Entry
from .http import encode
from .kit.body import BodyTimeout, BodyTooLarge, request_body
from .kit.cors import Cors
from .kit.errors import Problem
from .kit.routing import AnyMethod
from .kit.surface import Surface, header
from .reference.openapi import Operation, document, header_key

NAMESPACE = "statevec"
MAX_DEPTH = 64
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_decoder = msgspec.json.Decoder()

_S = {"type": "string"}
_SECRET = {"key": {**_S, "description": "The secret; its SHA-256 is the address"}}
_TTL = {"ttl": {"type": "integer", "minimum": 1, "description": "Seconds"}}
_WRITTEN = {"type": "object", "properties": {"ok": {"const": True}, "hash": _S, "val": {}}}
# What dispatch() answers, for the reference page (/docs); specs/statevec.md is the contract.
OPERATIONS = [
    Operation("put", "/v", "Write the value at the secret's address", body={
        "type": "object", "required": ["key", "val"], "properties": {**_SECRET, "val": {}, **_TTL}},
        response=_WRITTEN),
    Operation("patch", "/v", "incr / merge / append at the secret's address", body={
        "type": "object", "required": ["key", "op"], "properties": {
            **_SECRET, "op": {"enum": ["incr", "merge", "append"]}, "val": {}, "field": _S,
            "amount": {"type": "number"}, "deep": {"type": "boolean"}, "max": {"type": "integer", "minimum": 1},
            **_TTL}}, response=_WRITTEN),
    Operation("delete", "/v", "Delete the value at the secret's address",
              body={"type": "object", "required": ["key"], "properties": _SECRET},
              response={"type": "object", "properties": {"ok": {"const": True}}}),
    Operation("post", "/v/batch", "Read up to statevec_max_batch addresses", body={
        "type": "object", "required": ["hashes"], "properties": {"hashes": {"type": "array", "items": _S}}},
        response={"type": "object", "properties": {"results": {"type": "array"}}}),
    Operation("get", "/v/{hash}", "Read an address (64 hex); If-None-Match with its ETag gives 304",
              response={"type": "object", "properties": {"val": {}, "ts": {"type": "integer"}}}),
]
ERROR = {"type": "object", "properties": {"ok": {"const": False}, "error": _S}}


def openapi() -> dict:
    return document("statevec (StateVector Protocol v0.2)", "0.2", OPERATIONS,
                    header_key("x-statevec-key", "Optional: a Stigmer API key selects the keyed rate-limit bucket"),
                    ERROR)


ALLOW = {"/v": "PUT, PATCH, DELETE, OPTIONS", "/v/batch": "POST, OPTIONS", "hash": "GET, HEAD, OPTIONS"}
EXPOSE = "ETag, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
PREFLIGHT_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_HEADERS = "Content-Type, If-None-Match, x-statevec-key"
OPS = ("incr", "merge", "append")


def Fail(status: int, message: str, headers: dict[str, str] | None = None) -> Problem:
    """A statevec error: status and the spec's fixed message (which is also its code)."""
    return Problem(status, message, message, headers=headers)


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


def problem(exc: Exception, limits: Limits) -> Problem:
    """Any error as the spec's status and fixed message."""
    if isinstance(exc, Problem):
        return exc
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
        if "finite" in exc.message or exc.details.get("field") == "amount":  # incr overflowing
            return Fail(400, "amount must be a number")
        return Fail(400, "invalid JSON")
    if isinstance(exc, engine_errors.StorageFull):
        return Fail(507, "storage full")
    if isinstance(exc, engine_errors.StorageUnavailable):
        return Fail(503, "storage unavailable")
    if isinstance(exc, BodyTooLarge):
        return Fail(413, "request body too large")
    if isinstance(exc, BodyTimeout):
        return Fail(408, "request body timeout", {"Connection": "close"})
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return Fail(404, "not found")
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return Fail(405, "method not allowed", {"Allow": ALLOW["/v"]})
    return Fail(500, "internal error")


def render(request: Request, p: Problem) -> Response:
    body: dict[str, Any] = {"ok": False, "error": p.message if p.status != 401 else "unauthorized"}
    if p.code == "rate_limited":
        body.update((k, p.details[k]) for k in ("limit", "remaining", "reset", "retry_after"))
        settings = request.app.state.services.settings
        if settings.statevec_upgrade_url:
            body["upgrade"] = settings.statevec_upgrade_url
        keys_exist = not request.scope["state"].get("open_mode", True)
        if not p.details.get("keyed") and keys_exist and settings.statevec_rate_limit_key > 0:
            body["hint"] = f"Add x-statevec-key header for {settings.statevec_rate_limit_key}/min"
        else:
            body["hint"] = f"Slow down: limit is {p.details['limit']}/min"
    return Response(encode(body), p.status, p.headers, media_type="application/json")


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (not isinstance(v, float) or math.isfinite(v))


class StatevecSurface:
    """Settings and handlers of the statevec surface for one app."""

    def __init__(self, svc: Services):
        s = svc.settings
        self.svc = svc
        self.kv = svc.kv
        self.limits = Limits(max_value_bytes=s.statevec_max_value_bytes, max_depth=MAX_DEPTH,
                             max_batch=max(s.statevec_max_batch, 1), max_key_bytes=svc.kv.limits.max_key_bytes)
        self.default_ttl = s.statevec_default_ttl
        self.max_ttl = s.statevec_max_ttl
        self.max_body = s.statevec_max_body_bytes
        self.max_batch = s.statevec_max_batch
        self.cors = Cors(s.statevec_cors_origins, EXPOSE, PREFLIGHT_METHODS, PREFLIGHT_HEADERS)

    def surface(self) -> Surface:
        s = self.svc.settings
        return Surface("statevec", ("/v",), render, lambda scope: [header(scope, b"x-statevec-key")], self.cors,
                       requires_key=False, problem=lambda exc: problem(exc, self.limits),
                       rate_limit=s.statevec_rate_limit_key, rate_limit_anon=s.statevec_rate_limit_anon,
                       limit_headers=True, openapi=openapi)

    def _respond(self, status: int, body: bytes | None, headers: dict[str, str] | None = None) -> Response:
        if body is None:
            return Response(status_code=status, headers=headers)
        return Response(body, status, headers, media_type="application/json")

    async def dispatch(self, request: Request, path: str) -> Response:
        """One entry point for every method on every statevec path (`path` is "/v", "/v/batch",
        "hash" or "other")."""
        method = request.method
        if path == "other":
            raise Fail(404, "not found")
        if method == "OPTIONS":
            return self._respond(204, None, self.cors.preflight(request.headers.get("access-control-request-headers")))
        allowed = {"/v": ("PUT", "PATCH", "DELETE"), "/v/batch": ("POST",), "hash": ("GET", "HEAD")}[path]
        if method not in allowed:
            raise Fail(405, "method not allowed", {"Allow": ALLOW[path]})
        if path == "hash":
            return await self.get(request)
        body = await self._body(request)
        if path == "/v/batch":
            return await self.batch(body)
        if method == "PUT":
            return await self.put(body)
        if method == "PATCH":
            return await self.patch(body)
        return await self.delete(body)

    # --- parsing

    async def _body(self, request: Request) -> dict:
        raw = await request_body(request, self.max_body)
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

    def _respond_write(self, e: Entry, with_val: bool) -> Response:
        body = b'{"ok":true,"hash":"' + e.key.encode() + b'"'
        if with_val:
            body += b',"val":' + e.value
        return self._respond(200, body + b"}", {"ETag": etag(e)})

    def _writer(self, h: str) -> GuardedKV:
        return GuardedKV(self.kv, statevec_writer(h))

    # --- endpoints

    async def put(self, body: dict) -> Response:
        h = self._secret(body)
        if "val" not in body:
            raise Fail(400, "val is required")
        val = body["val"]
        ttl = self._ttl(body)
        self._val(val)
        e = await self._writer(h).apply(Op("put", NAMESPACE, h, value=val, ttl=ttl), self.limits)
        return self._respond_write(e, with_val=False)

    async def patch(self, body: dict) -> Response:
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
        e = await self._writer(h).apply(engine_op, self.limits)
        return self._respond_write(e, with_val=True)

    async def delete(self, body: dict) -> Response:
        h = self._secret(body)
        result = await self._writer(h).apply(Op("delete", NAMESPACE, h), self.limits)
        assert isinstance(result, Deleted)
        return self._respond(200, b'{"ok":true}')

    async def get(self, request: Request) -> Response:
        raw = request.path_params["hash"]
        if not _HASH.fullmatch(raw):
            raise Fail(400, "invalid hash")
        e = await GuardedKV(self.kv, statevec_reader()).get(NAMESPACE, raw.lower())
        if e is None:
            raise Fail(404, "not found")
        tag = etag(e)
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        inm = request.headers.get("if-none-match")
        if inm is not None and _tag_matches(inm, tag):
            return self._respond(304, None, headers)
        return self._respond(200, entry_json(e), headers)

    async def batch(self, body: dict) -> Response:
        hashes = body.get("hashes")
        if not isinstance(hashes, list) or not 1 <= len(hashes) <= self.max_batch:
            raise Fail(400, f"hashes must be a list of 1-{self.max_batch} hashes")
        if not all(isinstance(h, str) and _HASH.fullmatch(h) for h in hashes):
            raise Fail(400, "invalid hash")
        found = await GuardedKV(self.kv, statevec_reader()).get_many(NAMESPACE, [h.lower() for h in hashes])
        items = b",".join(entry_json(e) if e is not None else b"null" for e in found)
        return self._respond(200, b'{"results":[' + items + b"]}")


def mount(svc: Services) -> tuple[Surface, list[Route]]:
    """The surface's place at the edge, and its routes."""
    sv = StatevecSurface(svc)

    def handler(kind: str) -> AnyMethod:
        return AnyMethod(lambda request: sv.dispatch(request, kind))

    return sv.surface(), [
        Route("/v", handler("/v")),
        Route("/v/batch", handler("/v/batch")),
        Route("/v/{hash:str}", handler("hash")),
        Route("/v/{rest:path}", handler("other")),
    ]


__all__ = ["mount", "address", "StatevecSurface"]
