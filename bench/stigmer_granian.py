"""Stigmer's app as a granian target, for the serving-stack comparison (bench/serving.py):

  granian --interface asgi --factory --loop uvloop --no-ws stigmer_granian:app

The same stack as `stigmer serve` builds for uvicorn (src/stigmer/server.py): the app, the middleware that
ends streams on shutdown and the access log, settings from STIGMER_* variables. Granian has no hook at the
start of its shutdown, so streams are told to end when the lifespan shutdown message arrives.
"""

from __future__ import annotations

from stigmer.app import create_app
from stigmer.config import Settings
from stigmer.server import STREAMS_DRAIN_SECONDS
from stigmer.support.accesslog import AccessLogMiddleware
from stigmer.support.shutdown import EndStreamsOnShutdown, Shutdown


def app():
    settings = Settings.load()
    inner = create_app(settings)
    stop = Shutdown()
    asgi = EndStreamsOnShutdown(inner, stop)
    if settings.access_log:
        asgi = AccessLogMiddleware(asgi)
    hub = inner.state.services.hub

    async def lifespan_aware(scope, receive, send):
        if scope["type"] != "lifespan":
            return await asgi(scope, receive, send)

        async def receive_():
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                stop.begin()
                if await stop.drained(STREAMS_DRAIN_SECONDS):
                    hub.close_all()
            return message

        return await inner(scope, receive_, send)

    return lifespan_aware
