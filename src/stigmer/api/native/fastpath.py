"""Pure-ASGI fast path for the hottest requests: a plain GET, PUT and PATCH of one key.

ARCHITECTURE §5 asks the key hot paths to stay near the bare-ASGI floor. Requests with a query string, a
conditional header, a fence (`X-Stigmer-Fence`, checked in the write's mutation) or an `Idempotency-Key`
take the full route in `kv.py`; these two call the same engine functions and render the
same bytes through the same helpers, so the wire behaviour is identical (tests cover both paths).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ...engine.access import GuardedKV
from ...engine.kv import KEEP, Op
from ...services import Services
from ..errors import APIError, from_exception
from ..kit.body import read_body
from ..kit.surface import principal
from .kv import _decode, entry_json, key_not_found, media_type, patch_op, put_body_limit

PREFIX = "/v1/kv/"
ROUTE = "/v1/kv/{namespace}/{key:path}"  # the routed path's template, for the metrics and the log
_METHODS = ("GET", "PUT", "PATCH")
_ROUTED_HEADERS = (b"if-match", b"if-none-match", b"x-stigmer-fence", b"idempotency-key")  # never skip their checks
_JSON = (b"content-type", b"application/json")


class KeyFastPath:
    def __init__(self, app: ASGIApp, svc: Services):
        self.app = app
        self.kv = svc.kv
        self.body_limit = put_body_limit(svc.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["query_string"] and scope["path"].startswith(PREFIX):
            method = scope["method"]
            namespace, sep, key = scope["path"][len(PREFIX):].partition("/")
            if sep and key and ":" not in namespace and method in _METHODS and not any(
                    name in _ROUTED_HEADERS for name, _ in scope["headers"]):
                scope["state"]["route"] = ROUTE
                try:
                    kv = GuardedKV(self.kv, principal(Request(scope)))
                    if method == "GET":
                        await self._get(kv, namespace, key, send)
                    elif method == "PUT":
                        await self._put(kv, namespace, key, scope, receive, send)
                    else:
                        await self._patch(kv, namespace, key, scope, receive, send)
                except Exception as exc:  # rendered like the routed path renders it
                    await from_exception(Request(scope), exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _get(self, kv: GuardedKV, namespace: str, key: str, send: Send) -> None:
        e = await kv.get(namespace, key)
        if e is None:
            raise key_not_found(namespace, key)
        await _respond(send, 200, entry_json(e), e.version, e.mod_rev)

    async def _put(self, kv: GuardedKV, namespace: str, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, self.body_limit)
        if not body.strip():
            raise APIError(400, "invalid_json", "the request body must be a JSON value")
        e = await kv.apply(Op("put", namespace, key, value=_decode(body), ttl=None))
        await _respond(send, 201 if e.version == 1 else 200, entry_json(e, with_value=False), e.version, e.mod_rev)

    async def _patch(self, kv: GuardedKV, namespace: str, key: str, scope: Scope, receive: Receive,
                     send: Send) -> None:
        body = _decode(await read_body(scope, receive, self.body_limit))
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"").decode("latin-1")
        e = await kv.apply(patch_op(body, media_type(content_type), namespace, key, KEEP))
        await _respond(send, 201 if e.version == 1 else 200, entry_json(e), e.version, e.mod_rev)


async def _respond(send: Send, status: int, body: bytes, version: int, rev: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        _JSON, (b"content-length", b"%d" % len(body)),
        (b"etag", b'"%d.%d"' % (version, rev)), (b"x-stigmer-revision", b"%d" % rev)]})
    await send({"type": "http.response.body", "body": body})
