"""The Statewave surface's place at the edge and its dispatcher (specs/statewave.md §3).

Credentials: `X-API-Key`, else `?api_key=` (an empty value counts as missing), resolved by the one edge as
a Stigmer API key (api/edge.py); in open mode (no key exists) every request is the tenant `default` with
full access, whatever key it carries. A key is refused with 401 `missing_api_key` when none was sent and
403 `invalid_api_key` when the one sent is unknown, revoked or expired.

Per request, in the spec's order (§3.1): CORS (the edge) → request id (the middleware) → authentication
(the edge) → scope (403) → rate limit (429, per client IP) → unknown route (404) / method (405) → tenant
header (400 `missing_tenant`, 422 when longer than 256) → the handler, which validates its body (422).

Routing is on the raw path, so a `subject_id` sent with `%2F` stays one segment (§3.3, Decision 50).
Every error under the surface's paths is `{"error": {code, message, details?, request_id}}` (§3.5).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import logging
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from ...engine import errors as engine_errors
from ...engine.access import Principal
from ...services import Services
from ...support.ratelimit import Decision, SlidingLog
from ..http import encode
from ..kit.body import BodyTimeout, BodyTooLarge, ClientGone
from ..kit.cors import Cors
from ..kit.errors import Problem
from ..kit.requestid import Rule
from ..kit.surface import Surface, header
from ..kit.validation import RequestInvalid
from . import wire

log = logging.getLogger("stigmer.statewave")

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "X-API-Key, X-Tenant-ID, X-Request-ID, Content-Type"
OPEN = Principal("default", frozenset({"*"}), kind="open")
NAMESPACE = "statewave"  # what a key limited by namespace prefixes must cover to reach this surface
# Paths the surface answers with its own 404 although it has no route there (later upstream features, §1).
OUT_OF_SCOPE = ("/v1/receipts",)
MESSAGES = {404: "Not Found", 405: "Method Not Allowed", 500: "An unexpected error occurred"}


@dataclasses.dataclass
class Call:
    """One request as a handler sees it."""

    request: Request
    svc: Services
    principal: Principal
    tenant_id: str | None  # the Statewave tenant (§3.2); None: unscoped
    params: list[str]  # the path parameters, percent-decoded once

    @property
    def tenant(self) -> str:
        """The Stigmer tenant of the key: every Statewave tenant lives inside it."""
        return self.principal.tenant


Handler = Callable[[Call], Awaitable[Response]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str | None, ...]  # literal segments, None for a parameter
    handler: Handler
    scope: str  # the key scope the route needs
    path: str = ""  # as declared, with the parameters' names (the reference page)
    body: type | None = None  # the pydantic model the handler reads the body with (the reference page)
    query: type | None = None  # the pydantic model the handler reads the query with (the reference page)


def route(method: str, path: str, handler: Handler, scope: str = "read", body: type | None = None,
          query: type | None = None) -> Route:
    """A route of the surface: `route("DELETE", "/v1/subjects/{subject_id}", delete, "write")`."""
    return Route(method, tuple(None if s.startswith("{") else s for s in path.strip("/").split("/")), handler, scope,
                 path, body, query)


def prefixes(routes: list[Route]) -> tuple[str, ...]:
    """The paths the surface owns: `/v1/<name>` or `/<name>` of each route, and the out-of-scope ones."""
    out = dict.fromkeys(OUT_OF_SCOPE)
    for r in routes:
        n = 2 if r.pattern[0] == "v1" else 1
        out["/" + "/".join(str(s) for s in r.pattern[:n])] = None
    return tuple(out)


def request_id_rules(owned: tuple[str, ...]) -> tuple[Rule, ...]:
    """§3.6: the client's X-Request-ID echoed verbatim, else 16 lower-case hex chars."""
    return tuple(Rule(p, lambda v: 0 < len(v) <= 1024, lambda: secrets.token_hex(8).encode()) for p in owned)


# --- credentials and errors

def _query_key(scope: Scope) -> str | None:
    if b"api_key=" not in scope["query_string"]:
        return None
    found = [v for k, v in parse_qsl(scope["query_string"].decode("latin-1")) if k == "api_key"]
    return found[0] if found else None


def presented(scope: Scope) -> str | None:
    """The key the request carries: the header first; an empty value counts as missing (§3.1)."""
    return header(scope, b"x-api-key") or _query_key(scope) or None


def credentials(scope: Scope) -> list[str | None]:
    return [presented(scope)]


def problem(exc: Exception) -> Problem:
    """Any error in this surface's terms."""
    if isinstance(exc, (wire.Failure, RequestInvalid)):
        return exc
    if isinstance(exc, engine_errors.InvalidArgument):
        loc = exc.details.get("loc")
        if isinstance(loc, list):
            item = {"type": exc.details.get("type", "value_error"), "loc": loc, "msg": exc.message}
            if "input" in exc.details:
                item["input"] = exc.details["input"]
            return RequestInvalid([item])
        return RequestInvalid([{"type": "value_error", "loc": ["body"], "msg": exc.message}])
    if isinstance(exc, engine_errors.NotFound):
        return wire.not_found(exc.message)
    if isinstance(exc, BodyTooLarge):
        return wire.fail(413, "payload_too_large", f"Request body exceeds {exc.limit} bytes.")
    if isinstance(exc, BodyTimeout):
        return wire.fail(408, "request_timeout", str(exc), {"Connection": "close"})
    if isinstance(exc, ClientGone):
        return wire.fail(400, "bad_request", "the client disconnected")
    if isinstance(exc, engine_errors.StorageUnavailable):
        return wire.fail(503, "service_unavailable", exc.message, {"Retry-After": "1"})
    if isinstance(exc, engine_errors.StorageFull):
        return wire.fail(507, "insufficient_storage", exc.message)
    if isinstance(exc, HTTPException) and exc.status_code in (404, 405):
        return wire.fail(exc.status_code, "not_found" if exc.status_code == 404 else "method_not_allowed",
                         MESSAGES[exc.status_code], dict(exc.headers or {}))
    if isinstance(exc, Problem):  # raised by the edge (or kit) in Stigmer's terms
        return exc
    return wire.fail(500, "internal_error", MESSAGES[500])


def render(request: Request, p: Problem) -> Response:
    """The §3.5 envelope; the edge's 401 becomes missing_api_key (none sent) or invalid_api_key (§3.1)."""
    status, code, message, headers = p.status, p.code, p.message, dict(p.headers)
    if status == 401:
        headers.pop("WWW-Authenticate", None)
        if presented(request.scope) is None:
            code, message = "missing_api_key", "X-API-Key header is required."
        else:
            status, code, message = 403, "invalid_api_key", "Invalid API key."
    elif status == 500 and not isinstance(p, wire.Failure):
        code, message = "internal_error", MESSAGES[500]
    error: dict = {"code": code, "message": message}
    if isinstance(p, RequestInvalid):
        error["details"] = p.items
    rid = request.scope.get("state", {}).get("request_id", "")
    error["request_id"] = rid
    # Set here too: a 500 is rendered outside the request-id middleware.
    return Response(encode({"error": error}), status, {**headers, "X-Request-ID": rid}, media_type="application/json")


def _decode(raw: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise wire.invalid_one("string_type", ["path"], "Input should be a valid UTF-8 string once decoded") from None


# --- the dispatcher

class Dispatcher:
    def __init__(self, svc: Services, routes: list[Route]):
        s = svc.settings
        self.svc = svc
        self.routes = routes
        self.rpm = s.statewave_rate_limit_rpm
        strategy = s.statewave_rate_limit_strategy.strip().lower()
        if strategy not in ("distributed", "memory"):
            raise ValueError(f"statewave_rate_limit_strategy is `distributed` or `memory`, got {strategy!r}")
        if strategy == "memory":
            log = SlidingLog(svc.clock.now)

            async def in_process(bucket: str, limit: int) -> Decision:
                return log.hit(bucket, limit)

            self._hit = in_process
        else:
            self._hit = svc.rate_windows.hit
        self.require_tenant = s.statewave_require_tenant
        self.tenant_header = s.statewave_tenant_header
        self._tenant_key = s.statewave_tenant_header.lower().encode("latin-1")

    def _match(self, method: str, segments: list[str]) -> tuple[Route | None, list[str], list[str]]:
        """The route of this method whose literals match (an encoded segment is never a literal), its raw
        parameters, and the methods other routes of the path allow."""
        allowed: list[str] = []
        for r in self.routes:
            if len(r.pattern) == len(segments) and all(
                    p is None or (p == s and "%" not in s) for p, s in zip(r.pattern, segments)):
                if r.method == method:
                    return r, [s for p, s in zip(r.pattern, segments) if p is None], []
                allowed.append(r.method)
        return None, [], allowed

    def _tenant_id(self, request: Request) -> str | None:
        value = header(request.scope, self._tenant_key)
        if value:
            value = value.encode("latin-1").decode("utf-8", "replace")
            if len(value) > 256:
                raise wire.invalid_one("string_too_long", ["header", self.tenant_header],
                                       "String should have at most 256 characters", value)
            return value
        if self.require_tenant:
            raise wire.fail(400, "missing_tenant", f"{self.tenant_header} header is required.")
        return None

    async def _charge(self, request: Request) -> None:
        if self.rpm <= 0:
            return
        bucket = f"statewave:ip:{request.scope['state']['client_ip']}"
        d = await self._hit(bucket, self.rpm)
        if not d.allowed:
            raise wire.fail(429, "rate_limited", f"Rate limit exceeded. Max {self.rpm} requests per minute.",
                            {"Retry-After": str(d.retry_after)})

    async def __call__(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        try:
            if request.method == "OPTIONS":
                return self._preflight(request)
            r, raw_params, allowed = self._match(request.method, path.strip("/").split("/"))
            if r is not None:
                request.scope["state"]["route"] = r.path  # the metrics' and the log's route
            principal: Principal = request.scope["state"]["principal"]
            if r is not None and not principal.has(r.scope):
                raise wire.fail(403, "forbidden", f"This API key lacks the `{r.scope}` scope.")
            if r is not None and not principal.covers(NAMESPACE):
                raise wire.fail(403, "forbidden", f"This API key is limited to other namespaces than `{NAMESPACE}`.")
            await self._charge(request)
            if r is None:
                if allowed:
                    raise wire.fail(405, "method_not_allowed", MESSAGES[405], {"Allow": ", ".join(allowed)})
                raise wire.not_found()
            tenant_id = self._tenant_id(request)
            return await r.handler(Call(request, self.svc, principal, tenant_id, [_decode(s) for s in raw_params]))
        except Exception as exc:
            p = problem(exc)
            if p.status == 500:
                log.error("unexpected error on %s %s", request.method, path, exc_info=exc)
            return render(request, p)

    def _preflight(self, request: Request) -> Response:
        return Response(status_code=204, headers={
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers") or ALLOW_HEADERS,
            "Access-Control-Max-Age": "600"})


def cors_origins(text: str) -> list[str]:
    """`CORS_ORIGINS` as a JSON array or a comma-separated list (§3.10)."""
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list) and all(isinstance(o, str) for o in items):
            return items
    return [o.strip() for o in text.split(",") if o.strip()]


def surface(svc: Services, owned: tuple[str, ...]) -> Surface:
    cors = Cors(cors_origins(svc.settings.statewave_cors_origins), expose="X-Request-ID, Retry-After", methods=ALLOW_METHODS,
                headers=ALLOW_HEADERS, credentials=True)
    return Surface("statewave", owned, render, credentials, cors, problem=problem, checks_path=False,
                   open_as=lambda: OPEN, open_credential=lambda scope: None)
