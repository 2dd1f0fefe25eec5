"""Run the app on uvicorn: head and keep-alive timeouts, access log, and a shutdown that ends streams.

On SIGTERM: stop accepting, end open SSE streams (clients resume with Last-Event-ID), answer pending
long-polls, let in-flight requests (writes included) finish, then close the store.
"""

from __future__ import annotations

import copy
import logging
import os

# One BLAS thread: the server's numpy work (semvec retrieval, the local embedder) runs on the event loop and
# the writer thread already; OpenBLAS's own threads spin against them (measured on the 2-core bench machine:
# a 10,000 x 384 float32 matvec took 20 ms with its default threads, 7 ms with one). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import logging.config
import socket

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from . import __version__
from .app import create_app
from .config import Settings
from .engine.changes import ChangeHub
from .store.select import describe_target, keys_exist
from .support.headtimeout import protocol_class
from .support.shutdown import EndStreamsOnShutdown, Shutdown

log = logging.getLogger("stigmer")

STREAMS_DRAIN_SECONDS = 1.0


class StigmerServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, stop: Shutdown, hub: ChangeHub, banner: str, banner_fields: dict):
        super().__init__(config)
        self.stop, self.hub, self.banner, self.banner_fields = stop, hub, banner, banner_fields

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("%s", self.banner, extra={"fields": self.banner_fields})

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


def _log_config(settings: Settings) -> dict:
    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["stigmer"] = {"handlers": ["default"], "level": settings.log_level.upper(), "propagate": False}
    if settings.log_format == "json":
        for formatter in cfg["formatters"].values():
            formatter["()"] = "stigmer.support.jsonlog.JsonFormatter"
    return cfg


def _access_logged(settings: Settings) -> bool:
    return settings.access_log and logging.getLevelName(settings.log_level.upper()) <= logging.INFO


def banner_fields(settings: Settings, surfaces) -> dict:
    """What the start-up line names: store, data location (no password), auth mode, surfaces served."""
    return {"version": __version__, "store": "postgresql" if settings.database_url else "sqlite",
            "data": describe_target(settings),
            "auth": "api-keys" if settings.admin_key or keys_exist(settings) else "open",
            "surfaces": [s.name for s in surfaces]}


def banner(settings: Settings, fields: dict) -> str:
    """The start-up line: version, address, store and where its data is, auth mode, and every surface served
    (docs/operations.md, docs/compat.md)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    served = ", ".join(s for s in fields["surfaces"] if s != "native")
    auth = "API keys" if fields["auth"] == "api-keys" else "open mode (no API key)"
    return (f"stigmer {__version__} on http://{host}:{settings.port} with data in {fields['data']} "
            f"(store {fields['store']}, auth {auth}); serving the native API /v1 (reference /docs, console /console) and {served}")


def build(settings: Settings, *, http: str = "httptools", graceful_timeout_seconds: float = 5.0) -> StigmerServer:
    app = create_app(settings, access_log=_access_logged(settings))
    stop = Shutdown()
    # Outermost, so the send it hands watch streams (`Wire`) is uvicorn's own.
    asgi = EndStreamsOnShutdown(app, stop)
    config = uvicorn.Config(
        asgi, host=settings.host, port=settings.port, log_level=settings.log_level,
        log_config=_log_config(settings), loop="auto", lifespan="on",
        http=protocol_class(http, settings.head_timeout_seconds), timeout_keep_alive=settings.keepalive_timeout_seconds,
        timeout_graceful_shutdown=graceful_timeout_seconds,
        access_log=False,  # ours is support/accesslog.py
        proxy_headers=False,  # X-Forwarded-For is the app's trusted-proxy setting, not uvicorn's
        server_header=False, date_header=True,  # RFC 9110: an origin server with a clock sends Date
    )
    fields = banner_fields(settings, app.state.surfaces)
    return StigmerServer(config, stop, app.state.services.hub, banner(settings, fields), fields)


def run(settings: Settings, **options: object) -> None:
    """Serve until SIGINT / SIGTERM. `options` as for `build`."""
    server = build(settings, **options)  # type: ignore[arg-type]
    server.run()


# ---- opt-in: granian (`stigmer serve --server granian`, `pip install 'stigmer[granian]'`) ----------------------

GRANIAN_GRACE_SECONDS = 5.0  # in-flight requests get this long to finish after SIGTERM
GRANIAN_MAX_HEAD_TIMEOUT = 60.0  # granian's header read timeout tops out at 60 s


def run_granian(settings: Settings) -> None:
    """Serve on granian's embedded server in this process until SIGINT / SIGTERM.

    The same app and middleware as on uvicorn. What differs (docs/benchmarks.md, "Serving stack"): granian
    sends `server: granian`, answers more than 100 request headers with a bare 431, and has one timer for the
    request head and the keep-alive idle time: `head_timeout_seconds` (at most 60 s) bounds both, and
    `keepalive_timeout_seconds` is not used. Shutdown is ours: on the signal, end open streams, answer pending
    long-polls, let in-flight requests finish (up to 5 s), then stop granian (which runs the lifespan's end).
    """
    import asyncio
    import signal

    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server.embed import Server as GranianServer

    from .support.inflight import InFlight

    logging.config.dictConfig(_log_config(settings))
    # granian binds with SO_REUSEPORT, so a second server on a taken port would share it silently: refuse, as
    # uvicorn does (a plain bind fails while any socket holds the port)
    if settings.port:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, settings.port))
            except OSError as exc:
                log.error("%s while attempting to bind on address %s", exc, (settings.host, settings.port))
                raise SystemExit(1) from None
    app = create_app(settings, access_log=_access_logged(settings))
    hub = app.state.services.hub
    stop = Shutdown()
    inflight = InFlight(app)
    fields = banner_fields(settings, app.state.surfaces)  # before the loop: it may read the store
    asgi = EndStreamsOnShutdown(inflight, stop)  # outermost, as on uvicorn: watch streams run in its frame
    head_ms = int(min(settings.head_timeout_seconds, GRANIAN_MAX_HEAD_TIMEOUT) * 1000)
    server = GranianServer(asgi, address=settings.host, port=settings.port, interface=Interfaces.ASGI,
                           http=HTTPModes.http1, websockets=False, http1_settings=HTTP1Settings(header_read_timeout=head_ms),
                           log_enabled=False, backlog=2048)

    async def graceful() -> None:
        stop.begin()
        if await stop.drained(STREAMS_DRAIN_SECONDS):
            hub.close_all()
        else:
            log.warning("%d stream(s) did not end in %gs", stop.streams, STREAMS_DRAIN_SECONDS)
        if not await inflight.drained(GRANIAN_GRACE_SECONDS):
            log.warning("%d request(s) still in flight after %gs", inflight.count, GRANIAN_GRACE_SECONDS)
        server.stop()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task] = []

        def on_signal() -> None:
            if not stopping:
                stopping.append(loop.create_task(graceful()))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        loop.call_later(0, lambda: log.info("%s (granian)", banner(settings, fields), extra={"fields": fields}))
        await server.serve()

    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(main())
