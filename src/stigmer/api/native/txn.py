"""POST /v1/txn: compares and ops applied all-or-nothing under one revision."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import GuardedKV
from ...engine.kv import Deleted
from ...services import Services
from ..http import encode, json_response
from ..kit.body import request_body
from ..kit.idempotency import idempotent
from ..kit.surface import principal
from .kv import _decode, entry_json, fenced
from .models import TxnRequest, convert


def routes(svc: Services) -> list[Route]:
    body_limit = svc.settings.max_value_bytes * 4 + 65536

    async def txn(request: Request) -> Response:
        kv = GuardedKV(svc.kv, principal(request))
        req: TxnRequest = convert(_decode(await request_body(request, body_limit)), TxnRequest)
        compares, ops = req.to_engine()
        ops = [op if op.fence is not None else fenced(request, op) for op in ops]  # the header: ops naming none
        result = await kv.txn(compares, ops)
        items = b",".join(
            encode({"deleted": True, "revision": r.revision, "version": r.previous.version})
            if isinstance(r, Deleted) else entry_json(r)
            for r in result.results
        )
        return json_response(b'{"revision":%d,"results":[' % result.revision + items + b"]}",
                             headers={"X-Stigmer-Revision": str(result.revision)})

    return [Route("/v1/txn", idempotent(svc.idempotency, txn, body_limit=body_limit), methods=["POST"])]
