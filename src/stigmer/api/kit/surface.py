"""What the edge and the error handler need to know of a surface: where it lives, where its
credentials are, its CORS and rate limits, and how it renders an error."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from ...engine.access import Principal, open_principal
from ...engine.errors import Unauthenticated
from .cors import Cors
from .errors import Problem, problem_of


def bearer(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


@dataclasses.dataclass
class Surface:
    name: str
    prefixes: tuple[str, ...]  # a path is on the surface when it is a prefix or under one ("/" = any)
    render: Callable[[Request, Problem], Response]
    credentials: Callable[[Scope], list[str | None]]  # presented credentials, in the spec's order
    cors: Cors = dataclasses.field(default_factory=lambda: Cors(""))
    requires_key: bool = True  # with keys in force, refuse requests that carry no valid key (401)
    public: frozenset[str] = frozenset()  # paths served without a key
    problem: Callable[[Exception], Problem] = problem_of  # engine error -> wire terms
    rate_limit: int = 0  # per minute, per credential (the bucket's capacity when `rate_per_second` is set)
    rate_per_second: float = 0.0  # refill of a bucket whose capacity (burst) is `rate_limit`; 0 = rate_limit/60
    open_bucket: bool = False  # in open mode one bucket for the default tenant, not one per client IP
    limiter: Any = None  # the surface's own limiter (`await limiter.ahit(...)`): buckets the replicas share
    rate_limit_anon: int = 0  # per minute, per client IP without a valid credential
    limit_headers: bool = False  # X-RateLimit-* on every charged response
    free_methods: tuple[str, ...] = ("OPTIONS",)  # methods that cost no token
    checks_path: bool = True  # the edge refuses paths that are not UTF-8 once percent-decoded
    open_as: Callable[[], Principal] = open_principal  # who a request is in open mode (no key exists)
    # In open mode, the one credential that is still looked up (a capability token), or None; it raises
    # a Problem for a credential the surface refuses even in open mode.
    open_credential: Callable[[Scope], str | None] | None = None
    openapi: Callable[[], dict] | None = None  # the surface's OpenAPI document, for /docs (api/reference/)

    # Paths that are the surface's only for some queries (semvec's /v1/state/context?session_id=…)
    claims: Callable[[str, bytes], bool] | None = None

    def matches(self, path: str, query: bytes = b"") -> bool:
        if self.claims is not None and self.claims(path, query):
            return True
        for p in self.prefixes:
            if p == "/" or path.startswith(p) and (len(path) == len(p) or path[len(p)] == "/"):
                return True
        return False

    def error(self, request: Request, exc: Exception) -> Response:
        return self.render(request, self.problem(exc))


def surface_for(surfaces: list[Surface], path: str, query: bytes = b"") -> Surface:
    for s in surfaces:
        if s.matches(path, query):
            return s
    raise LookupError(path)  # the native surface matches every path; assembly puts it last


def principal(request: Request) -> Principal:
    """The request's principal, as the edge resolved it; Unauthenticated when there is none."""
    p = request.scope.get("state", {}).get("principal")
    if p is None:
        raise Unauthenticated("missing or invalid API key")
    return p


def client(request: Request) -> str:
    """Who to count for limits: `key:<id>` or `ip:<addr>`."""
    return request.scope["state"]["client"]
