"""The AgentState surface's place at the edge and its dispatcher (specs/agentstate.md §2–3).

Credentials: `Authorization: Bearer <as_live_ key | as_cap_ token>`, and `?token=as_cap_…` on the watch
stream when no Authorization header is sent; the edge resolves them (api/edge.py). In open mode (no API
key exists) an absent or empty bearer, or any well-formed `as_live_…` bearer, is the project `default`
with every scope, while an `as_cap_…` bearer is still looked up and checked (D1).

Routing is on the raw path: `%2F` inside a segment never splits it, and each segment is decoded once,
after matching (D19). Literal segments win over parameters, per method. Per request, in the spec's
order: authentication (the edge) -> capability tokens refused where only API keys go (401) -> scope
(403) -> rate limit (429, a fixed window per credential and UTC minute) -> the handler.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from ...engine.access import Principal, allows
from ...engine.ids import ALPHABET
from ...services import Services
from ..kit.cors import Cors
from ..kit.errors import Problem
from ..kit.requestid import Rule
from ..kit.surface import Surface, header
from . import wire

log = logging.getLogger("stigmer.agentstate")

PREFIX = "/api"
API = "/api/v1/"
CAPABILITY = "as_cap_"
_OPEN_KEY = re.compile(r"as_live_[A-Za-z0-9_-]{1,200}")
_REQUEST_ID = re.compile(rb"[a-zA-Z0-9_-]{1,64}")
ALLOW_HEADERS = "Authorization, Content-Type, X-Request-Id, Idempotency-Key, X-Lease-Id, Last-Event-ID"
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
DEFAULT_RATE_LIMIT = 1000
OPEN = Principal("default", frozenset({"*"}), kind="open")


@dataclasses.dataclass
class Call:
    """One request as a handler sees it: its principal and the decoded path parameters."""

    request: Request
    p: Principal
    params: list[str]


Handler = Callable[[Call], Awaitable[Response]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str | None, ...]  # literal segments, None for a parameter
    scope: str
    handler: Handler
    tokens: bool = True  # capability tokens accepted (D2: states, watch, leases, claims)
    path: str = ""  # as declared, with the parameters' names (the reference page)


def route(method: str, path: str, scope: str, handler: Handler, tokens: bool = True) -> Route:
    pattern = tuple(None if s.startswith("{") else s for s in path.strip("/").split("/"))
    return Route(method, pattern, scope, handler, tokens, path)


def request_id_rule() -> Rule:
    return Rule(PREFIX, lambda v: _REQUEST_ID.fullmatch(v) is not None,
                lambda: "".join(secrets.choice(ALPHABET) for _ in range(16)).encode())


def rate_limit_of(text: str) -> int:
    """The configured limit; blank or invalid falls back to the default (D23)."""
    try:
        n = int(text.strip())
    except (ValueError, AttributeError):
        return DEFAULT_RATE_LIMIT
    return n if n > 0 else DEFAULT_RATE_LIMIT


def _unauthorized() -> Problem:
    return wire.fail(401, *wire.UNAUTHORIZED, padded=True)


def credentials(scope: Scope) -> list[str | None]:
    """Keyed mode: the bearer, else (watch only) a capability token in `?token=`."""
    auth = header(scope, b"authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        return [value.strip() or None] if scheme.lower() == "bearer" else []
    return [_query_token(scope)]


def _query_token(scope: Scope) -> str | None:
    if scope["path"] != API + "states/watch" or b"token=" not in scope["query_string"]:
        return None
    for name, value in parse_qsl(scope["query_string"].decode("latin-1")):
        if name == "token":
            if not value.startswith(CAPABILITY):
                raise _unauthorized()  # an API key never travels in a URL
            return value
    return None


def open_credential(scope: Scope) -> str | None:
    """Open mode: the capability token to look up, None for the open project; 401 for anything else."""
    auth = header(scope, b"authorization")
    if auth is None:
        return _query_token(scope)
    scheme, _, value = auth.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer":
        raise _unauthorized()
    if value.startswith(CAPABILITY):
        return value
    if value and not _OPEN_KEY.fullmatch(value):
        raise _unauthorized()
    return None


class Dispatcher:
    def __init__(self, svc: Services, routes: list[Route]):
        self.svc = svc
        self.routes = routes
        self.limit = rate_limit_of(svc.settings.agentstate_rate_limit)

    def _match(self, method: str, segments: list[str]) -> tuple[Route | None, list[str]]:
        """The first route of this method whose literals match; an encoded segment is never a literal."""
        for r in self.routes:
            if r.method == method and len(r.pattern) == len(segments) and all(
                    p is None or (p == s and "%" not in s) for p, s in zip(r.pattern, segments)):
                return r, [s for p, s in zip(r.pattern, segments) if p is None]
        return None, []

    async def __call__(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Access-Control-Allow-Headers": ALLOW_HEADERS,
                                                      "Access-Control-Allow-Methods": ALLOW_METHODS,
                                                      "Access-Control-Max-Age": "86400"})
        segments = path[len(API):].split("/") if path.startswith(API) else []
        r, raw_params = self._match(request.method, segments) if segments else (None, [])
        if r is None:
            return wire.render(request, wire.not_found())
        request.scope["state"]["route"] = API + r.path  # the metrics' and the log's route
        p: Principal = request.scope["state"]["principal"]
        limit_headers: dict[str, str] = {}
        try:
            if p.kind == "token" and not r.tokens:
                raise _unauthorized()
            if not allows(p, r.scope):
                raise wire.fail(403, "FORBIDDEN", "Capability token does not have required scope"
                                if p.kind == "token" else f"Missing required scope: {r.scope}", padded=True)
            limit_headers = self._charge(p)
            params = [_decode(s) for s in raw_params]
            response = await r.handler(Call(request, p, params))
        except Exception as exc:  # rendered here so the rate-limit headers reach error responses too
            problem = wire.problem(exc)
            if problem.status == 500:
                log.error("unexpected error on %s %s", request.method, path, exc_info=exc)
            response = wire.render(request, problem)
        for k, v in limit_headers.items():
            response.headers.setdefault(k, v)
        return response

    def _charge(self, p: Principal) -> dict[str, str]:
        d = self.svc.limiter.hit_minute(f"agentstate:{p.key_id or 'anonymous'}", self.limit)
        headers = {"X-RateLimit-Limit": str(d.limit), "X-RateLimit-Remaining": str(d.remaining),
                   "X-RateLimit-Reset": str(d.reset)}
        if not d.allowed:
            raise wire.fail(429, "RATE_LIMITED", f"Rate limit exceeded. Maximum {d.limit} requests per minute. "
                            f"Retry after {d.retry_after} seconds.", headers | {"Retry-After": str(d.retry_after)})
        return headers


def _decode(raw: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise wire.bad("Invalid path encoding") from None


def surface(svc: Services, cors: Cors) -> Surface:
    return Surface("agentstate", (PREFIX,), wire.render, credentials, cors, public=frozenset({PREFIX}),
                   problem=wire.problem, checks_path=False, open_as=lambda: OPEN, open_credential=open_credential)
