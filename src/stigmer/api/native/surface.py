"""The native surface's place at the edge: every path not claimed by a compatible surface."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Scope

from ...config import Settings
from ..errors import render
from ..kit.cors import Cors
from ..kit.surface import Surface, bearer, header
from ..console import PUBLIC as CONSOLE
from ..reference import PUBLIC as REFERENCE
from .docs import openapi

PUBLIC = frozenset({"/healthz", "/health", "/readyz", "/ready", "/openapi.json", *REFERENCE, *CONSOLE})
STREAM_PATHS = frozenset({"/v1/watch"})  # a browser EventSource cannot send headers


def credentials(scope: Scope) -> list[str | None]:
    found = [bearer(header(scope, b"authorization"))]
    if scope["path"] in STREAM_PATHS and b"access_token=" in scope["query_string"]:
        found += [v for k, v in parse_qsl(scope["query_string"].decode("latin-1")) if k == "access_token"]
    return found


def surface(settings: Settings) -> Surface:
    cors = Cors(settings.cors_origins, expose="ETag, X-Stigmer-Revision, X-Request-ID, Retry-After, Idempotency-Replayed",
                methods="GET, PUT, PATCH, DELETE, POST, OPTIONS",
                headers="Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID, X-Stigmer-Fence, "
                        "Idempotency-Key")
    return Surface("native", ("/",), render, credentials, cors, public=PUBLIC,
                   rate_limit=settings.native_rate_limit, rate_limit_anon=settings.native_rate_limit,
                   limit_headers=True, openapi=openapi)
