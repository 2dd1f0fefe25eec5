"""Native capability-token routes: /v1/tokens. Validate, call the token engine, render (never a digest)."""

from __future__ import annotations

import datetime as dt
import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.tokens import Tokens
from ...engine.types import TokenRecord
from ...services import Services
from ..errors import APIError
from ..http import json_response, rfc3339
from ..kit.body import request_body
from ..kit.idempotency import idempotent, not_replayable
from ..kit.routing import by_method
from ..kit.surface import principal
from .kv import _decode
from .models import MintTokenRequest, TokenOut, convert

BODY_LIMIT = 65_536
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def token_out(r: TokenRecord) -> TokenOut:
    return TokenOut(r.id, r.tenant, r.name, r.key_prefix, list(r.scopes), list(r.prefixes), r.parent_id, r.key_id,
                    rfc3339(r.created_at), rfc3339(r.expires_at), rfc3339(r.last_used_at),  # type: ignore[arg-type]
                    rfc3339(r.revoked_at), r.revoked_at is None)


def _invalid(message: str, field: str = "expires_at") -> APIError:
    return APIError(400, "invalid_argument", message, {"field": field})


def expiry(req: MintTokenRequest, now: float) -> float | None:
    """expires_in (seconds from now) or expires_at (RFC 3339, or seconds since the epoch); a past time is
    accepted (the token is minted unusable)."""
    if req.expires_in is not None and req.expires_at is not None:
        raise _invalid("give expires_in or expires_at, not both")
    if req.expires_in is not None:
        if not 0 <= req.expires_in <= 100 * 365 * 86400:
            raise _invalid("expires_in must be 0 s to 100 years", "expires_in")
        return now + req.expires_in
    if req.expires_at is None:
        return None
    if isinstance(req.expires_at, str):
        try:
            when = dt.datetime.fromisoformat(req.expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("expires_at must be an RFC 3339 time or seconds since the epoch") from None
        if when.tzinfo is None:
            raise _invalid("expires_at needs a time zone")
        return when.timestamp()
    if not math.isfinite(req.expires_at) or not 0 <= req.expires_at <= MAX_SECONDS:
        raise _invalid("expires_at must be seconds since the epoch, up to year 9999")
    return float(req.expires_at)


def routes(svc: Services) -> list[Route]:
    tokens: Tokens = svc.tokens

    async def mint(request: Request) -> Response:
        by = principal(request)
        req = convert(_decode(await request_body(request, BODY_LIMIT)), MintTokenRequest)
        created = await tokens.mint(by, req.name, req.scopes, req.prefixes, expiry(req, tokens.clock()))
        return json_response({"token": token_out(created.record), "secret": created.secret}, 201)

    async def list_tokens(request: Request) -> Response:
        by = principal(request)
        return json_response({"tokens": [token_out(r) for r in await tokens.list(by.tenant, by=by)]})

    async def revoke(request: Request) -> Response:
        record = await tokens.revoke(principal(request), request.path_params["id"])
        return json_response({"token": token_out(record)})

    return [
        Route("/v1/tokens", by_method({"POST": not_replayable(mint), "GET": list_tokens}), methods=["POST", "GET"]),
        Route("/v1/tokens/{id}", idempotent(svc.idempotency, revoke, body_limit=BODY_LIMIT), methods=["DELETE"]),
    ]
