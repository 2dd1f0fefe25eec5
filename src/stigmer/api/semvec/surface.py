"""The semvec surface's place at the edge (specs/semvec.md §2–3): its paths, credentials and limits.

Credentials: the token of `Authorization: Bearer …` when that header starts with `Bearer `, else
`X-API-Key` (semvecctl sends both). Open mode ignores whatever is presented (Decision D2). `/v1/health` and
`/metrics` (its own Basic auth) need no key and take no token from the rate limit; every other request
takes one from its key's bucket (`semvec_rate` per second, `semvec_burst` deep; open mode: one bucket).
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl

from starlette.types import Scope

from ...services import Services
from ..kit.requestid import Rule
from ..kit.surface import Surface, header
from . import wire

PREFIXES = ("/v1/health", "/v1/run", "/v1/store", "/v1/session", "/v1/metrics", "/v1/cluster", "/v1/region",
            "/v1/observer", "/v1/network", "/metrics")
# Upstream paths this surface does not serve (§2): answered 404 {"detail":"Not Found"} with no key needed, as
# upstream's router does (semvecctl's `memory` commands then report that the compliance pack is not mounted).
NOT_SERVED = ("/v1/readyz", "/v1/dedup-check", "/v1/compliance", "/v1/debug", "/openai/v1")
CONTEXT = "/v1/state/context"
PUBLIC = frozenset({"/v1/health", "/metrics"})


class _Public:
    """The paths served without a key (the edge asks `path in surface.public`)."""

    def __contains__(self, path: object) -> bool:
        return path in PUBLIC or isinstance(path, str) and any(
            path == p or path.startswith(p + "/") for p in NOT_SERVED)


def has_session_id(query: bytes) -> bool:
    return b"session_id" in query and any(
        name == "session_id" for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))


def claims(path: str, query: bytes) -> bool:
    """`GET /v1/state/context` is ours only when the query names `session_id` (even empty); else CntrlNode's."""
    return path == CONTEXT and has_session_id(query)


def credentials(scope: Scope) -> list[str | None]:
    auth = header(scope, b"authorization")
    if auth is not None and auth.startswith("Bearer "):
        return [auth[7:].strip() or None]
    key = header(scope, b"x-api-key")
    return [key.strip() or None] if key is not None else [None]


def surface(svc: Services) -> Surface:
    s = svc.settings
    return Surface("semvec", PREFIXES + NOT_SERVED, wire.render, credentials, public=_Public(),  # type: ignore[arg-type]
                   problem=wire.problem,
                   rate_limit=s.semvec_burst if s.semvec_rate > 0 else 0, rate_per_second=s.semvec_rate,
                   open_bucket=True, limiter=svc.shared_limiter,  # PostgreSQL: the replicas share each key's bucket (§3)
                   open_credential=lambda scope: None, claims=claims, checks_path=False)


def _printable(value: bytes) -> bool:
    return 1 <= len(value) <= 128 and all(0x20 <= b <= 0x7E for b in value)


def request_id_rules() -> tuple[Rule, ...]:
    """§3: the caller's X-Request-ID when it is ≤ 128 printable ASCII characters, else 32 new hex digits."""
    return tuple(Rule(p, _printable, lambda: uuid.uuid4().hex.encode()) for p in PREFIXES)
