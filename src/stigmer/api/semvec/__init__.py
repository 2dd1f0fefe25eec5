"""The semvec-compatible surface (specs/semvec.md): sessions and session control, the coordination
layers, semvec's series of `/metrics`. Each module in MODULES gives `routes(svc) -> list[wire.Route]`; one dispatcher serves
them all, so 404/405 and every error come in this surface's `{"detail": …}` shape."""

from __future__ import annotations

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from ...services import Services
from ..kit.routing import AnyMethod
from ..kit.surface import Surface
from ..reference.openapi import BEARER, Operation, document, summary_of
from . import metrics, sessions, surface as semvec_surface
from . import clusters, network, observer, regions  # the coordination layers
from .wire import Dispatcher

MODULES = (sessions,)  # the coordination layers add theirs here, one line each
MODULES += (clusters,)
MODULES += (regions,)
MODULES += (observer,)
MODULES += (network,)


class _ContextRoute(Route):
    """`/v1/state/context`, matched only when the query names `session_id` (else CntrlNode's route takes it)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not semvec_surface.has_session_id(scope.get("query_string", b"")):
            return Match.NONE, {}
        return super().matches(scope)


def mount(svc: Services) -> tuple[Surface, list[BaseRoute]]:
    """The surface's place at the edge, and its routes (ahead of CntrlNode's and the native ones)."""
    counters = metrics.SemvecMetrics(svc)
    table = [r for m in MODULES for r in m.routes(svc)]
    endpoint = AnyMethod(Dispatcher(table, counters.observe))
    routes: list[BaseRoute] = [_ContextRoute(semvec_surface.CONTEXT, endpoint)]  # `/metrics` is api/metrics.py's
    for prefix in semvec_surface.PREFIXES[:-1] + semvec_surface.NOT_SERVED:
        routes += [Route(prefix, endpoint), Route(prefix + "/{rest:path}", endpoint)]
    place = semvec_surface.surface(svc)

    def openapi() -> dict:
        ops = [Operation(r.method, r.path, summary_of(r.handler)) for r in table]
        ops.append(Operation("GET", "/metrics", "Prometheus exposition (its own Basic auth)"))
        return document("semvec", "1.0.0", ops, BEARER,
                        description="`Authorization: Bearer <key>` or `X-API-Key: <key>`; errors are `{\"detail\": …}`")

    place.openapi = openapi
    return place, routes


request_id_rules = semvec_surface.request_id_rules

__all__ = ["mount", "request_id_rules"]
