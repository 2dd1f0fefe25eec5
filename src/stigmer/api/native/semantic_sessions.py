"""Native read-only routes over semantic sessions, for the console (docs/api.md#semantic-sessions):
GET /v1/semantic-sessions (a page, newest first) and GET /v1/semantic-sessions/{id} (its drift series).
semvec has no list route; these are named apart from its `/v1/session` prefix so that the edge routes them
here. Access is what semvec's own GET routes ask: the read scope of the key's tenant."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import READ, require
from ...engine.errors import InvalidArgument
from ...engine.sessions.engine import BACKING_KINDS
from ...engine.sessions.overview import Summary
from ...services import Services
from ..http import json_response, rfc3339
from ..kit.cursors import decode_cursor, encode_cursor
from ..kit.params import optional_int
from ..kit.surface import principal
from .models import DriftPointOut, SemanticSessionOut, SemanticSessionsOut, SemanticSessionDetailOut

MAX_PAGE = 200
KINDS = ("session", *BACKING_KINDS)


def summary_out(s: Summary) -> SemanticSessionOut:
    return SemanticSessionOut(s.session_id, s.kind, rfc3339(s.created_at), s.turns, s.memories,  # type: ignore[arg-type]
                              s.phase, s.drift)


def encode_before(before: tuple[float, str] | None) -> str | None:
    return None if before is None else encode_cursor(json.dumps(list(before)))


def decode_before(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    try:
        at, sid = json.loads(decode_cursor(cursor))
        if isinstance(at, (int, float)) and isinstance(sid, str):
            return float(at), sid
    except (ValueError, TypeError):
        pass
    raise InvalidArgument("invalid cursor", field="cursor")


def routes(svc: Services) -> list[Route]:
    sessions = svc.sessions

    async def list_sessions(request: Request) -> Response:
        p = require(principal(request), READ)
        q = request.query_params
        kind = q.get("kind") or "session"
        if kind not in KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}", field="kind")
        limit = optional_int(q.get("limit"), "limit", 50, 1, MAX_PAGE)
        page, nxt = await sessions.page(p.tenant, kind, limit, decode_before(q.get("cursor")))  # type: ignore[arg-type]
        return json_response(SemanticSessionsOut([summary_out(s) for s in page], encode_before(nxt)))

    async def get_session(request: Request) -> Response:
        p = require(principal(request), READ)
        d = await sessions.detail(p.tenant, request.path_params["id"])
        return json_response(SemanticSessionDetailOut(
            summary_out(d.summary), [DriftPointOut(x.turn, x.drift, x.similarity, x.phase) for x in d.series]))

    return [Route("/v1/semantic-sessions", list_sessions, methods=["GET"]),
            Route("/v1/semantic-sessions/{id}", get_session, methods=["GET"])]
