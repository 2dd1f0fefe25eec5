"""Native lease routes: /v1/leases/{resource}. Validate, call the lease engine, render."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import GuardedLeases
from ...engine.fencing import format_fence
from ...engine.leases import LeaseOutcome
from ...engine.types import LeaseRecord
from ...services import Services
from ..errors import APIError
from ..http import json_response, rfc3339
from ..kit.body import request_body
from ..kit.disconnect import unless_client_leaves
from ..kit.idempotency import idempotent
from ..kit.params import optional_int
from ..kit.routing import by_method
from ..kit.surface import principal
from .kv import _decode
from .models import AcquireRequest, LeaseOut, RenewRequest, convert

BODY_LIMIT = 8192


def lease_out(r: LeaseRecord, now: float) -> LeaseOut:
    return LeaseOut(r.resource, r.id, r.holder, r.token, format_fence(r.resource, r.token), r.active(now),
                    rfc3339(r.created_at), rfc3339(r.renewed_at), rfc3339(r.expires_at),  # type: ignore[arg-type]
                    rfc3339(r.released_at))


def routes(svc: Services) -> list[Route]:
    now = svc.store.clock.now

    def guarded(request: Request) -> GuardedLeases:
        return GuardedLeases(svc.leases, principal(request))

    def written(outcome: LeaseOutcome, status: int = 200) -> Response:
        headers = {"X-Stigmer-Revision": str(outcome.revision)} if outcome.revision else None
        return json_response(lease_out(outcome.lease, now()), status, headers)

    async def get_lease(request: Request) -> Response:
        resource = request.path_params["resource"]
        r = await guarded(request).get(resource)
        if r is None:
            raise APIError(404, "not_found", "no lease was ever taken on this resource", {"resource": resource})
        return json_response(lease_out(r, now()))

    async def acquire(request: Request) -> Response:
        leases = guarded(request)
        req: AcquireRequest = convert(_decode(await request_body(request, BODY_LIMIT)), AcquireRequest)
        acquiring = leases.acquire(request.path_params["resource"], req.holder, req.ttl, req.wait)
        if req.wait:  # a waiter whose client left must neither stay queued nor be granted the lease
            return written(await unless_client_leaves(request.receive, acquiring), 201)
        return written(await acquiring, 201)

    async def renew(request: Request) -> Response:
        leases = guarded(request)
        req: RenewRequest = convert(_decode(await request_body(request, BODY_LIMIT)), RenewRequest)
        return written(await leases.renew(request.path_params["resource"], lease_id=req.lease_id,
                                          token=req.fencing_token, ttl=req.ttl))

    async def release(request: Request) -> Response:
        q = request.query_params
        token = optional_int(q.get("fencing_token"), "fencing_token", lo=1)
        return written(await guarded(request).release(request.path_params["resource"], lease_id=q.get("lease_id"),
                                                      token=token))

    def once(handler):  # Idempotency-Key on every write
        return idempotent(svc.idempotency, handler, body_limit=BODY_LIMIT)

    return [Route("/v1/leases/{resource:path}", by_method({"GET": get_lease, "POST": once(acquire),
                                                          "PATCH": once(renew), "DELETE": once(release)}),
                  methods=["GET", "POST", "PATCH", "DELETE"])]
