"""Administration under /v1/admin (admin scope): API keys and tenants; and /v1/settings, /v1/whoami."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import ADMIN, Principal
from ...engine.errors import Forbidden
from ...services import Services
from ...engine.types import KeyRecord
from ..errors import APIError
from ..http import json_response, rfc3339
from ..kit.body import request_body
from ..kit.idempotency import idempotent, not_replayable
from ..kit.routing import by_method
from ..kit.surface import principal
from .kv import _decode
from .models import CreateKeyRequest, convert

BODY_LIMIT = 65_536


def key_json(r: KeyRecord) -> dict[str, Any]:
    return {"id": r.id, "tenant": r.tenant, "name": r.name, "scopes": list(r.scopes), "prefixes": list(r.prefixes),
            "created_at": rfc3339(r.created_at), "expires_at": rfc3339(r.expires_at),
            "last_used_at": rfc3339(r.last_used_at), "revoked_at": rfc3339(r.revoked_at),
            "active": r.revoked_at is None}


def principal_json(p: Principal) -> dict[str, Any]:
    return {"tenant": p.tenant, "scopes": sorted(p.scopes), "kind": p.kind, "key_id": p.key_id,
            "prefixes": None if p.grants is None else [str(g) for g in p.grants], "expires_at": rfc3339(p.expires_at)}


def _expiry(req: CreateKeyRequest, now: float) -> float | None:
    if req.expires_in is not None and req.expires_at is not None:
        raise APIError(400, "invalid_argument", "give expires_in or expires_at, not both", {"field": "expires_at"})
    if req.expires_in is not None:
        if not 1 <= req.expires_in <= 100 * 365 * 86400:
            raise APIError(400, "invalid_argument", "expires_in must be 1 s to 100 years", {"field": "expires_in"})
        return now + req.expires_in
    if req.expires_at is not None:
        try:
            when = dt.datetime.fromisoformat(req.expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise APIError(400, "invalid_argument", "expires_at must be an RFC 3339 time", {"field": "expires_at"}) from None
        if when.tzinfo is None:
            raise APIError(400, "invalid_argument", "expires_at needs a time zone", {"field": "expires_at"})
        return when.timestamp()
    return None


def routes(svc: Services) -> list[Route]:
    keys = svc.keys

    def admin(request: Request) -> Principal:
        p = principal(request)
        if not p.has(ADMIN):
            raise Forbidden("this route needs an admin key", scope=ADMIN)
        return p

    async def create_key(request: Request) -> Response:
        by = admin(request)
        req = convert(_decode(await request_body(request, BODY_LIMIT)), CreateKeyRequest)
        created = await keys.create(req.tenant or by.tenant, req.scopes, req.prefixes, name=req.name,
                                    expires_at=_expiry(req, keys.clock()), by=by, secret_format=req.format)
        return json_response({"key": key_json(created.record), "secret": created.secret}, 201)

    async def list_keys(request: Request) -> Response:
        records = await keys.list(request.query_params.get("tenant"), by=admin(request))
        return json_response({"keys": [key_json(r) for r in records]})

    async def revoke_key(request: Request) -> Response:
        record = await keys.revoke(request.path_params["id"], by=admin(request))
        return json_response({"key": key_json(record)})

    async def tenants(request: Request) -> Response:
        by = admin(request)
        names = await keys.tenants()
        return json_response({"tenants": names if by.tenant == "default" and by.grants is None else [by.tenant]})

    async def settings(request: Request) -> Response:
        admin(request)
        return json_response(svc.settings.public())

    async def whoami(request: Request) -> Response:
        return json_response(principal_json(principal(request)))

    return [
        Route("/v1/admin/keys", by_method({"POST": not_replayable(create_key), "GET": list_keys}),
              methods=["POST", "GET"]),
        Route("/v1/admin/keys/{id}", idempotent(svc.idempotency, revoke_key, body_limit=BODY_LIMIT), methods=["DELETE"]),
        Route("/v1/admin/tenants", tenants, methods=["GET"]),
        Route("/v1/settings", settings, methods=["GET"]),
        Route("/v1/whoami", whoami, methods=["GET"]),
    ]
