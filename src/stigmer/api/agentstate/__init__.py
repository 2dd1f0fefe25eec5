"""The AgentState-compatible surface (/api/v1, and the /api health document): specs/agentstate.md.

A project is a Stigmer tenant. States are keys of the reserved namespace `_states` with an append-only
event log (engine/states.py); leases are the lease engine's, on the resource `_states/<state_key>`;
capability tokens and claims are the token and claim engines'. docs/compat.md has the whole mapping.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...services import Services
from ..kit.cors import Cors
from ..kit.routing import AnyMethod
from ..kit.surface import Surface
from ..reference.openapi import BEARER, Operation, document, from_routes
from . import analytics, conversations, coordination, states, traces, wire
from .surface import ALLOW_HEADERS, ALLOW_METHODS, API, PREFIX, Dispatcher, request_id_rule, surface

VERSION = "0.1.4"
__all__ = ["mount", "request_id_rule"]


def mount(svc: Services) -> tuple[Surface, list[Route]]:
    """The surface's place at the edge, and its routes."""
    cors = Cors(svc.settings.agentstate_cors_origins, methods=ALLOW_METHODS, headers=ALLOW_HEADERS)
    # Traces before conversations: the dispatcher takes the first match, and `/conversations/traces` is a literal.
    declared = [*states.routes(svc), *coordination.routes(svc), *traces.routes(svc), *conversations.routes(svc),
                *analytics.routes(svc)]
    dispatch = AnyMethod(Dispatcher(svc, declared))

    async def health(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return wire.render(request, wire.not_found())
        return wire.json({"name": "agentstate", "version": VERSION, "status": "ok"})

    place = surface(svc, cors)
    place.openapi = lambda: document(
        "AgentState", VERSION, [Operation("get", PREFIX, "The surface's health document"),
                                        *from_routes(declared, API)],
        {**BEARER, "description": "An `as_live_` API key or an `as_cap_` capability token"})
    return place, [Route(PREFIX, AnyMethod(health)), Route(PREFIX + "/{rest:path}", dispatch)]
