"""Run the app on uvicorn: head and keep-alive timeouts, access log, and a shutdown that ends streams.

On SIGTERM: stop accepting, end open SSE streams (clients resume with Last-Event-ID), answer pending
long-polls, let in-flight requests (writes included) finish, then close the store.
"""

from __future__ import annotations

import copy
import logging
import socket

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from . import __version__
from .app import create_app
from .config import Settings
from .engine.changes import ChangeHub
from .store.select import describe_target
from .support.accesslog import AccessLogMiddleware
from .support.headtimeout import protocol_class
from .support.shutdown import EndStreamsOnShutdown, Shutdown

log = logging.getLogger("stigmer")

STREAMS_DRAIN_SECONDS = 1.0


class StigmerServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, stop: Shutdown, hub: ChangeHub, banner: str):
        super().__init__(config)
        self.stop, self.hub, self.banner = stop, hub, banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("%s", self.banner)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop new requests first, so no stream can start after the streams are told to end.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        self.stop.begin()
        if await self.stop.drained(STREAMS_DRAIN_SECONDS):
            # Only now: a native SSE generator still running would spin on a closed watcher.
            self.hub.close_all()  # long-polls answer at once with what they have
        else:
            log.warning("%d stream(s) did not end in %gs", self.stop.streams, STREAMS_DRAIN_SECONDS)
        await super().shutdown(sockets)


def _log_config(level: str) -> dict:
    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["stigmer"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg


def banner(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return (f"stigmer {__version__} on http://{host}:{settings.port} with data in "
            f"{describe_target(settings)}; serving the native API /v1, statevec /v, "
            f"CntrlNode /v1/state, docs /docs and /openapi.json")


def build(settings: Settings, *, http: str = "httptools", graceful_timeout_seconds: float = 5.0) -> StigmerServer:
    app = create_app(settings)
    stop = Shutdown()
    logged = settings.access_log and logging.getLevelName(settings.log_level.upper()) <= logging.INFO
    asgi = AccessLogMiddleware(app) if logged else app
    # Outermost, so the send it hands watch streams (`Wire`) is uvicorn's own.
    asgi = EndStreamsOnShutdown(asgi, stop)
    config = uvicorn.Config(
        asgi, host=settings.host, port=settings.port, log_level=settings.log_level,
        log_config=_log_config(settings.log_level), loop="auto", lifespan="on",
        http=protocol_class(http, settings.head_timeout_seconds), timeout_keep_alive=settings.keepalive_timeout_seconds,
        timeout_graceful_shutdown=graceful_timeout_seconds,
        access_log=False,  # ours is support/accesslog.py
        proxy_headers=False,  # X-Forwarded-For is the app's trusted-proxy setting, not uvicorn's
        server_header=False, date_header=True,  # RFC 9110: an origin server with a clock sends Date
    )
    return StigmerServer(config, stop, app.state.services.hub, banner(settings))


def run(settings: Settings, **options: object) -> None:
    """Serve until SIGINT / SIGTERM. `options` as for `build`."""
    server = build(settings, **options)  # type: ignore[arg-type]
    server.run()
