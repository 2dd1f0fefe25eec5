"""`GET /metrics`: the server-wide Prometheus exposition (support/metrics.py) behind its own Basic auth.

The path and its wire contract are semvec's (§5.51): the credential is the `metrics_user` /
`metrics_password` pair (read from semvec's `STIGMER_SEMVEC_METRICS_*` names too), refusals are semvec's
`{"detail": …}` bodies, and the exposition holds semvec's series beside the server's `stigmer_*` ones.
The edge gives the path to the semvec surface, which serves it without an API key.
"""

from __future__ import annotations

import base64
import binascii
import hmac

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..services import Services
from ..support.metrics import CONTENT_TYPE
from .kit.routing import AnyMethod


def _detail(text: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode({"detail": text}), status, headers, media_type="application/json")


def refusal(request: Request, user: str, password: str) -> Response | None:
    """The semvec §5.51 answer to a request without the right Basic credential; None when it has it."""
    auth = request.headers.get("authorization")
    if auth is None or not auth[:6].lower() == "basic ":
        return _detail("Missing Basic Auth", 401)
    try:
        given_user, sep, given_password = base64.b64decode(auth[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return _detail("Invalid Basic Auth header", 401)
    if not sep:
        return _detail("Invalid Basic Auth header", 401)
    if not user or not password:
        return _detail("Metrics auth not configured", 503)
    ok = hmac.compare_digest(given_user.encode(), user.encode())
    ok &= hmac.compare_digest(given_password.encode(), password.encode())
    return None if ok else _detail("Invalid credentials", 401)


def engine_gauges(svc: Services) -> None:
    """The server-wide gauges, read from the engine (and through it the store) at each scrape."""
    m = svc.metrics
    watchers = m.gauge("stigmer_watchers", "Open change watchers: the watch streams and long-polls of every surface.")
    backlog = m.gauge("stigmer_webhook_backlog", "Webhook events waiting for delivery (every tenant).")
    queued = m.gauge("stigmer_job_queue_depth", "Jobs waiting to run (every tenant, every kind).")

    async def read() -> None:
        watchers.set(svc.hub.watcher_count)
        backlog.set(await svc.webhooks.backlog())
        queued.set(await svc.jobs.queue_depth())

    m.on_scrape(read)


def routes(svc: Services) -> list[Route]:
    settings = svc.settings
    engine_gauges(svc)

    async def metrics(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _detail("Method Not Allowed", 405, {"Allow": "GET"})
        refused = refusal(request, settings.metrics_user, settings.metrics_password)
        if refused is not None:
            return refused
        return Response(await svc.metrics.exposition(), 200, media_type=CONTENT_TYPE)

    return [Route("/metrics", AnyMethod(metrics))]
