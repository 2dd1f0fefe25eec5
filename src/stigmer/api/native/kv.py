"""Native key routes: /v1/kv/{namespace}/{key}, list, batch and history. Validate, call the engine, render."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine import values
from ...engine.errors import InvalidArgument
from ...engine.access import GuardedKV
from ...engine.fencing import parse_fence
from ...engine.kv import KEEP, Deleted, Op
from ...services import Services
from ...engine.types import Change, Entry
from ..errors import APIError
from ..http import encode, json_response, rfc3339
from ..kit.body import request_body
from ..kit.cursors import decode_cursor, encode_cursor
from ..kit.idempotency import idempotent
from ..kit.routing import by_method
from ..kit.params import optional_int, parse_bool, parse_int, parse_seconds
from ..kit.surface import principal
from .models import EntryMetaOut, EntryOut, PatchRequest

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def etag(e: Entry) -> str:
    return f'"{e.version}.{e.mod_rev}"'


_rendered_ts: dict[float, str] = {}  # hot keys render the same few timestamps on every read


def _ts(ts: float | None) -> str | None:
    if ts is None:
        return None
    out = _rendered_ts.get(ts)
    if out is None:
        if len(_rendered_ts) > 4096:
            _rendered_ts.clear()
        out = _rendered_ts[ts] = rfc3339(ts)
    return out


def _view(e: Entry, with_value: bool) -> EntryOut | EntryMetaOut:
    if with_value:
        return EntryOut(e.namespace, e.key, msgspec.Raw(e.value), e.version, e.create_rev, e.mod_rev,
                        _ts(e.created_at), _ts(e.updated_at), _ts(e.expires_at))  # type: ignore[arg-type]
    return EntryMetaOut(e.namespace, e.key, e.version, e.create_rev, e.mod_rev,
                        _ts(e.created_at), _ts(e.updated_at), _ts(e.expires_at))  # type: ignore[arg-type]


def entry_json(e: Entry, with_value: bool = True) -> bytes:
    return encode(_view(e, with_value))


def entries_json(entries: list[Entry], with_value: bool = True) -> bytes:
    """A JSON array of entries in one encoder call (a page renders hundreds)."""
    return encode([_view(e, with_value) for e in entries])


def change_json(c: Change, with_prev: bool = False) -> bytes:
    out = encode({"type": c.type, "namespace": c.namespace, "key": c.key})[:-1]
    out += b',"value":' + (c.value if c.value is not None else b"null")
    if with_prev:
        out += b',"prev_value":' + (c.prev_value if c.prev_value is not None else b"null")
    return out + b',"version":%d,"revision":%d,"ts":' % (c.version, c.rev) + encode(rfc3339(c.ts)) + b"}"


def _headers(e: Entry) -> dict[str, str]:
    return {"ETag": etag(e), "X-Stigmer-Revision": str(e.mod_rev)}


def parse_tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def tag_matches(tag: str, e: Entry) -> bool:
    """`*`, the full ETag `"version.revision"`, or a bare version `"3"` (also unquoted)."""
    if tag == "*":
        return True
    inner = tag.strip('"')
    return inner == f"{e.version}.{e.mod_rev}" or inner == str(e.version)


def _preconditions(request: Request, op: Op, current: Entry | None) -> Op:
    """Turn If-Match / If-None-Match into engine expectations (checked atomically in the writer)."""
    if_none = request.headers.get("if-none-match")
    if if_none is not None and if_none.strip() == "*":
        return msgspec.structs.replace(op, expect_version=0)
    if_match = request.headers.get("if-match")
    if if_match is None:
        return op
    tags = parse_tags(if_match)
    if tags == ["*"]:
        if current is None:
            raise APIError(412, "precondition_failed", "key does not exist")
        return msgspec.structs.replace(op, expect_revision=current.mod_rev)
    for tag in tags:
        inner = tag.strip('"')
        version, _, rev = inner.partition(".")
        try:
            return msgspec.structs.replace(op, expect_version=parse_int(version, "If-Match"),
                                           expect_revision=parse_int(rev, "If-Match") if rev else None)
        except InvalidArgument:
            continue
    raise APIError(400, "invalid_argument", "If-Match must hold an ETag of this API or *", {"field": "If-Match"})


FENCE_HEADER = "x-stigmer-fence"


def fenced(request: Request, op: Op) -> Op:
    """An `X-Stigmer-Fence: <resource>:<token>` header makes the write conditional on that lease."""
    raw = request.headers.get(FENCE_HEADER)
    return op if raw is None else msgspec.structs.replace(op, fence=parse_fence(raw))


def _ttl(request: Request, default: Any) -> Any:
    raw = request.query_params.get("ttl")
    if raw is None:
        return default
    if raw in ("", "0", "none"):
        return None
    ttl = parse_seconds(raw, "ttl", 1e15)  # the engine holds the real maximum
    if ttl == 0:
        raise APIError(400, "invalid_argument", "ttl must be a positive number of seconds", {"field": "ttl"})
    return ttl


def _write_response(result: Entry, created: bool, with_value: bool) -> Response:
    return json_response(entry_json(result, with_value), 201 if created else 200, _headers(result))


def patch_op(body: Any, content_type: str, namespace: str, key: str, ttl: Any) -> Op:
    """A PATCH by its content type: merge patch, JSON patch, or our `{"op": ...}` body."""
    if content_type == MERGE_PATCH:
        return Op("merge", namespace, key, value=body, deep=True, null_deletes=True, ttl=ttl)
    if content_type == JSON_PATCH:
        return Op("patch", namespace, key, patch=body, ttl=ttl)
    return PatchRequest.to_op(body, namespace, key, ttl)


def media_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


def put_body_limit(settings: Any) -> int:
    return settings.max_value_bytes * 2 + 65536


def key_not_found(namespace: str, key: str) -> APIError:
    return APIError(404, "not_found", "key not found", {"namespace": namespace, "key": key})


def routes(svc: Services) -> list[Route]:
    body_limit = put_body_limit(svc.settings)

    def guarded(request: Request) -> GuardedKV:
        return GuardedKV(svc.kv, principal(request))

    async def get_key(request: Request) -> Response:
        p = request.path_params
        e = await guarded(request).get(p["namespace"], p["key"])
        if e is None:
            raise key_not_found(p["namespace"], p["key"])
        if_none = request.headers.get("if-none-match")
        if if_none is not None and any(tag_matches(t, e) for t in parse_tags(if_none)):
            return Response(status_code=304, headers=_headers(e))
        return json_response(entry_json(e), headers=_headers(e))

    async def put_key(request: Request) -> Response:
        p = request.path_params
        kv = guarded(request)
        body = await request_body(request, body_limit)
        if not body.strip():
            raise APIError(400, "invalid_json", "the request body must be a JSON value")
        value = _decode(body)
        op = Op("put", p["namespace"], p["key"], value=value, ttl=_ttl(request, None))
        current = await kv.get(p["namespace"], p["key"]) if "if-match" in request.headers else None
        result = await kv.apply(fenced(request, _preconditions(request, op, current)))
        return _write_response(result, result.version == 1, with_value=False)

    async def patch_key(request: Request) -> Response:
        p = request.path_params
        kv = guarded(request)
        body = _decode(await request_body(request, body_limit))
        ns, key = p["namespace"], p["key"]
        op = patch_op(body, media_type(request.headers.get("content-type", "")), ns, key, _ttl(request, KEEP))
        current = await kv.get(ns, key) if "if-match" in request.headers else None
        result = await kv.apply(fenced(request, _preconditions(request, op, current)))
        return _write_response(result, result.version == 1, with_value=True)

    async def delete_key(request: Request) -> Response:
        p = request.path_params
        kv = guarded(request)
        op = Op("delete", p["namespace"], p["key"])
        current = await kv.get(p["namespace"], p["key"]) if "if-match" in request.headers else None
        result: Deleted = await kv.apply(fenced(request, _preconditions(request, op, current)))
        return json_response({"deleted": True, "revision": result.revision, "version": result.previous.version},
                             headers={"X-Stigmer-Revision": str(result.revision)})

    async def list_keys(request: Request) -> Response:
        q = request.query_params
        cursor, start_after = q.get("cursor"), q.get("start_after")
        if cursor and start_after is not None:
            raise APIError(400, "invalid_argument", "give cursor or start_after, not both", {"field": "start_after"})
        limit = optional_int(q.get("limit"), "limit", 100)
        with_values = parse_bool(q.get("values"), "values", True)
        rows, last = await guarded(request).list(request.path_params["namespace"], q.get("prefix", ""),
                                                 decode_cursor(cursor) if cursor else start_after, limit)
        nxt = encode(encode_cursor(last) if last is not None else None)
        return json_response(b'{"entries":' + entries_json(rows, with_values) + b',"next_cursor":' + nxt + b"}")

    async def list_namespaces(request: Request) -> Response:
        found = await guarded(request).namespaces()
        return json_response({"namespaces": [{"namespace": ns, "keys": n} for ns, n in found]})

    async def batch_get(request: Request) -> Response:
        body = _decode(await request_body(request, body_limit))
        keys = body.get("keys") if isinstance(body, dict) else None
        found = await guarded(request).get_many(request.path_params["namespace"], keys)
        items = b",".join(entry_json(e) if e is not None else b"null" for e in found)
        return json_response(b'{"entries":[' + items + b"]}")

    async def key_history(request: Request) -> Response:
        p = request.path_params
        limit = optional_int(request.query_params.get("limit"), "limit", 100)
        changes = await guarded(request).history(p["namespace"], p["key"],
                                                 optional_int(request.query_params.get("before"), "before"), limit)
        nxt = encode(changes[-1].rev if len(changes) == limit else None)
        items = b",".join(change_json(c) for c in changes)
        return json_response(b'{"history":[' + items + b'],"next_before":' + nxt + b"}")

    def once(handler):  # Idempotency-Key on every write
        return idempotent(svc.idempotency, handler, body_limit=body_limit)

    return [
        Route("/v1/kv/{namespace}:batch", batch_get, methods=["POST"]),
        Route("/v1/kv/{namespace}", list_keys, methods=["GET"]),
        Route("/v1/namespaces", list_namespaces, methods=["GET"]),
        # One route for the four methods, so a 405 (and OPTIONS) answers `Allow` with all of them.
        Route("/v1/kv/{namespace}/{key:path}", by_method({"GET": get_key, "PUT": once(put_key), "PATCH": once(patch_key),
                                                         "DELETE": once(delete_key)}), methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/v1/history/{namespace}/{key:path}", key_history, methods=["GET"]),
    ]


def _decode(body: bytes) -> Any:
    try:
        return values.decode(body)
    except Exception as exc:
        raise APIError(400, "invalid_json", str(exc) if str(exc) else "invalid JSON") from None
