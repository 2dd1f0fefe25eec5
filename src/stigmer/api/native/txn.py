"""POST /v1/txn: compares and ops applied all-or-nothing under one revision."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.kv import Deleted
from ...services import Services
from ...support.auth import tenant_of
from ..http import encode, json_response, read_body
from .kv import _decode, entry_json
from .models import TxnRequest, convert


def routes(svc: Services) -> list[Route]:
    body_limit = svc.settings.max_value_bytes * 4 + 65536

    async def txn(request: Request) -> Response:
        req: TxnRequest = convert(_decode(await read_body(request, body_limit)), TxnRequest)
        compares, ops = req.to_engine()
        result = await svc.kv.txn(tenant_of(request), compares, ops)
        items = b",".join(
            encode({"deleted": True, "revision": r.revision, "version": r.previous.version})
            if isinstance(r, Deleted) else entry_json(r)
            for r in result.results
        )
        return json_response(b'{"revision":%d,"results":[' % result.revision + items + b"]}",
                             headers={"X-Stigmer-Revision": str(result.revision)})

    return [Route("/v1/txn", txn, methods=["POST"])]
