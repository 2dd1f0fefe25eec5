"""GET /v1/admin/metrics: the server-wide figures of the metrics registry (support/metrics.py) as JSON, for the
console's Health view (docs/api.md#get-v1adminmetrics). The Prometheus exposition at /metrics stays behind its
own Basic credential; this route needs the server's unrestricted admin key (of the tenant `default`, as for
every tenant's list): the figures count every tenant's requests. Counts are totals since the process started;
a client samples them and takes differences for rates and a window's latency quantiles."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import ADMIN, DEFAULT_TENANT
from ...engine.errors import Forbidden
from ...services import Services
from ..http import json_response
from ..kit.surface import principal
from .models import LatencyOut, ServerMetricsOut


def routes(svc: Services) -> list[Route]:
    async def server_metrics(request: Request) -> Response:
        p = principal(request)
        if not p.has(ADMIN) or p.tenant != DEFAULT_TENANT or p.grants is not None:
            raise Forbidden("the server's figures need an unrestricted admin key of the tenant default", scope=ADMIN)
        count, cumulative, seconds = svc.metrics.http.totals()
        return json_response(ServerMetricsOut(
            svc.clock.now(), count, LatencyOut([*svc.metrics.http.buckets], cumulative, seconds),
            svc.hub.watcher_count, await svc.jobs.queue_depth(), await svc.webhooks.backlog()))

    return [Route("/v1/admin/metrics", server_metrics, methods=["GET"])]
