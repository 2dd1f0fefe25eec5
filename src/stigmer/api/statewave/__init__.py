"""The Statewave-compatible surface (specs/statewave.md): episodes, compile, search and context, timeline,
subjects, support analytics and admin, at the spec's paths beside the other surfaces.

Each module of this package holds the routes of one part and exposes `routes(svc) -> list[Route]`
(`surface.route(method, path, handler, scope)`); add a part by adding its module to `PARTS`. The surface
owns `/v1/<name>` (or `/<name>`) of every route, so a new part needs nothing else. docs/compat.md has the
mapping (tenant, auth, paths, what is out of scope) and docs/memory.md the behaviour.
"""

from __future__ import annotations

from starlette.routing import Route as StarletteRoute

from ...services import Services
from ..kit.routing import AnyMethod
from ..kit.surface import Surface
from ..reference.openapi import document, from_routes, header_key
from . import admin, compile, context, episodes, subjects, support
from .surface import Dispatcher, prefixes, request_id_rules, surface

VERSION = "0.6.1"  # the contract version it is wire-compatible with
PARTS = (episodes, compile, subjects, context, support, admin)
__all__ = ["mount", "request_id_rules", "VERSION"]


def mount(svc: Services) -> tuple[Surface, list[StarletteRoute]]:
    """The surface's place at the edge, and its routes (one dispatcher under each owned path)."""
    routes = [r for part in PARTS for r in part.routes(svc)]
    owned = prefixes(routes)
    dispatch = AnyMethod(Dispatcher(svc, routes))
    mounted = [m for p in owned for m in (StarletteRoute(p, dispatch), StarletteRoute(p + "/{rest:path}", dispatch))]
    place = surface(svc, owned)
    def openapi() -> dict:
        schemas: dict = {}
        ops = from_routes(routes, schemas=schemas)
        return document("Statewave", VERSION, ops, header_key("X-API-Key", "A Stigmer API key (or `?api_key=`)"),
                        schemas=schemas)

    place.openapi = openapi
    return place, mounted
