"""GET /v1/watch: change streams over SSE, or long-poll with `?index=R&wait=S`."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import READ, require, watch_filter
from ...engine.types import ChangeSet
from ...engine.errors import Compacted
from ...services import Services
from ...engine.types import ChangeFilter
from ..http import encode, json_response
from ..kit import sse
from ..kit.errors import Problem
from ..kit.params import optional_int, parse_bool, parse_seconds
from ..kit.streams import StreamSlots
from ..kit.surface import client, principal
from .kv import change_json

MAX_WAIT = 60.0
LONG_POLL_MAX_SETS = 1000


def changeset_json(cs: ChangeSet, with_prev: bool) -> bytes:
    items = b",".join(change_json(c, with_prev) for c in cs.changes)
    return b'{"revision":%d,"changes":[' % cs.revision + items + b"]}"


# One format per variant, module-wide: every stream of a variant shares each change set's bytes.
FORMATS = {with_prev: sse.Format(lambda cs, p=with_prev: sse.frame(changeset_json(cs, p), cs.revision, "change"))
           for with_prev in (False, True)}


def _compacted_event(exc: Compacted) -> bytes:
    data = encode({"oldest_revision": exc.oldest_revision, "current_revision": exc.current_revision})
    return sse.frame(data, exc.current_revision, "compacted")


def routes(svc: Services) -> list[Route]:
    hub = svc.hub
    keepalive = svc.settings.sse_keepalive_seconds
    slots = StreamSlots(svc.settings.max_streams_per_client)
    svc.metrics.streams("native", lambda: slots.total)

    def _filter(request: Request) -> ChangeFilter:
        q = request.query_params
        ns, key, prefix = q.get("namespace"), q.get("key"), q.get("prefix")
        if ns is None and (key is not None or prefix is not None):
            raise Problem(400, "invalid_argument", "key and prefix need a namespace", {"field": "namespace"})
        if key is not None and prefix is not None:
            raise Problem(400, "invalid_argument", "give key or prefix, not both")
        return watch_filter(principal(request), ns, prefix or None, key)

    async def watch(request: Request) -> Response:
        flt = _filter(request)
        q = request.query_params
        with_prev = parse_bool(q.get("prev_value"), "prev_value", False)
        index = optional_int(q.get("index"), "index")
        if index is not None:
            wait = parse_seconds(q["wait"], "wait", MAX_WAIT) if "wait" in q else 30.0
            return await long_poll(request, flt, index, wait, with_prev)
        after = optional_int(request.headers.get("last-event-id"), "Last-Event-ID")
        if after is None:
            start = optional_int(q.get("from"), "from")
            after = max(start - 1, 0) if start is not None else None
        try:
            watcher = await hub.watch(flt, after)
        except Compacted as exc:
            return sse.once(sse.opening(exc.current_revision) + _compacted_event(exc))
        who = client(request)
        try:
            slots.take(who)
        except Exception:
            watcher.close()
            raise
        # Keep-alives carry the watcher's position as `id:` (progress ids), so a client of a quiet key
        # resumes from a recent revision rather than one that compaction has since removed.
        return sse.EventStream(watcher, FORMATS[with_prev], keepalive, keepalive_id=True,
                               on_compacted=_compacted_event, on_close=partial(slots.give_back, who))

    async def long_poll(request: Request, flt: ChangeFilter, index: int, wait: float, with_prev: bool) -> Response:
        who = client(request)
        slots.take(who)
        try:
            watcher = await hub.watch(flt, index)
            try:
                first = await watcher.next(wait)
                sets = [first] if first else []
                while first and len(sets) < LONG_POLL_MAX_SETS and (more := watcher.poll()) is not None:
                    sets.append(more)
            finally:
                watcher.close()
        finally:
            slots.give_back(who)
        # History reads may run ahead of the published revision: never answer a revision older than an event.
        current = max((await hub.revision(flt.tenant)).current, sets[-1].revision if sets else 0)
        body = b'{"revision":%d,"events":[' % current + b",".join(changeset_json(s, with_prev) for s in sets) + b"]}"
        return json_response(body, headers={"X-Stigmer-Revision": str(current)})

    async def revision(request: Request) -> Response:
        info = await hub.revision(require(principal(request), READ).tenant)
        return json_response({"revision": info.current, "compacted_revision": info.compacted},
                             headers={"X-Stigmer-Revision": str(info.current)})

    return [Route("/v1/watch", watch, methods=["GET"]), Route("/v1/revision", revision, methods=["GET"])]


__all__ = ["routes", "changeset_json"]
