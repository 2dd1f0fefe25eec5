"""GET /v1/watch: change streams over SSE, or long-poll with `?index=R&wait=S`."""

from __future__ import annotations

from typing import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...engine.changes import ChangeSet, Watcher
from ...engine.errors import Compacted
from ...services import Services
from ...store.base import ChangeFilter
from ...support.auth import tenant_of
from ..errors import APIError
from ..http import encode, json_response
from .kv import change_json

MAX_WAIT = 60.0
LONG_POLL_MAX_SETS = 1000
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def changeset_json(cs: ChangeSet, with_prev: bool) -> bytes:
    items = b",".join(change_json(c, with_prev) for c in cs.changes)
    return b'{"revision":%d,"changes":[' % cs.revision + items + b"]}"


def _revision(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise APIError(400, "invalid_argument", f"{name} must be a non-negative integer", {"field": name})
    return int(raw)


def _wait(raw: str | None) -> float:
    if raw is None:
        return 30.0
    try:
        wait = float(raw.removesuffix("s"))
    except ValueError:
        raise APIError(400, "invalid_argument", "wait must be a number of seconds, e.g. 30 or 30s", {"field": "wait"}) from None
    if not 0 <= wait <= MAX_WAIT:
        raise APIError(400, "invalid_argument", f"wait must be 0-{MAX_WAIT:g} seconds", {"field": "wait"})
    return wait


def routes(svc: Services) -> list[Route]:
    hub = svc.hub
    keepalive = svc.settings.sse_keepalive_seconds

    def _filter(request: Request) -> ChangeFilter:
        q = request.query_params
        ns, key, prefix = q.get("namespace"), q.get("key"), q.get("prefix")
        if ns is None and (key is not None or prefix is not None):
            raise APIError(400, "invalid_argument", "key and prefix need a namespace", {"field": "namespace"})
        if key is not None and prefix is not None:
            raise APIError(400, "invalid_argument", "give key or prefix, not both")
        return ChangeFilter(tenant_of(request), ns, prefix or None, key)

    async def watch(request: Request) -> Response:
        flt = _filter(request)
        q = request.query_params
        with_prev = q.get("prev_value", "").lower() in ("1", "true", "yes")
        index = _revision(q.get("index"), "index")
        if index is not None:
            return await long_poll(flt, index, _wait(q.get("wait")), with_prev)
        after = _revision(request.headers.get("last-event-id"), "Last-Event-ID")
        if after is None:
            start = _revision(q.get("from"), "from")
            after = max(start - 1, 0) if start is not None else None
        try:
            watcher = hub.watch(flt, after)
        except Compacted as exc:
            return StreamingResponse(_compacted_stream(exc), media_type="text/event-stream", headers=SSE_HEADERS)
        return StreamingResponse(_stream(watcher, with_prev), media_type="text/event-stream", headers=SSE_HEADERS)

    async def _compacted_stream(exc: Compacted) -> AsyncIterator[bytes]:
        yield b"retry: 3000\nid: %d\n\n" % exc.current_revision + _compacted_event(exc)

    async def _stream(watcher: Watcher, with_prev: bool) -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\nid: %d\n\n" % watcher.last
            while True:
                try:
                    cs = await watcher.next(keepalive)
                except Compacted as exc:
                    yield _compacted_event(exc)
                    return
                if cs is None:
                    yield b": keep-alive\n\n"
                    continue
                frames = [cs]
                while (more := watcher.poll()) is not None and len(frames) < 64:
                    frames.append(more)
                yield b"".join(b"id: %d\nevent: change\ndata: " % f.revision + changeset_json(f, with_prev) + b"\n\n"
                               for f in frames)
        finally:
            watcher.close()

    async def long_poll(flt: ChangeFilter, index: int, wait: float, with_prev: bool) -> Response:
        watcher = hub.watch(flt, index)
        try:
            first = await watcher.next(wait)
            sets = [first] if first else []
            while first and len(sets) < LONG_POLL_MAX_SETS and (more := watcher.poll()) is not None:
                sets.append(more)
        finally:
            watcher.close()
        current = svc.store.revision(flt.tenant).current
        body = b'{"revision":%d,"events":[' % current + b",".join(changeset_json(s, with_prev) for s in sets) + b"]}"
        return json_response(body, headers={"X-Stigmer-Revision": str(current)})

    async def revision(request: Request) -> Response:
        info = svc.store.revision(tenant_of(request))
        return json_response({"revision": info.current, "compacted_revision": info.compacted},
                             headers={"X-Stigmer-Revision": str(info.current)})

    return [Route("/v1/watch", watch, methods=["GET"]), Route("/v1/revision", revision, methods=["GET"])]


def _compacted_event(exc: Compacted) -> bytes:
    data = encode({"oldest_revision": exc.oldest_revision, "current_revision": exc.current_revision})
    return b"event: compacted\nid: %d\ndata: " % exc.current_revision + data + b"\n\n"


__all__ = ["routes", "changeset_json"]
