"""ASGI app assembly: the store, the engine, every front door behind the edge, and the background upkeep."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .api import (agentstate, cntrlnode, console, errors, health, mcp, metrics, reference, semvec, statevec,
                  statewave)
from .api.edge import Edge
from .api.kit import body
from .api.kit.requestid import RequestIDMiddleware
from .api.native import admin, docs, kv as native_kv, leases as native_leases, surface as native_surface
from .api.native import claims as native_claims, tokens as native_tokens, txn as native_txn
from .api.native import conversations as native_conversations, watch as native_watch
from .api.native import semantic_sessions as native_semantic_sessions, server_metrics as native_server_metrics
from .api.native.fastpath import KeyFastPath
from .config import Settings
from .engine import keys as engine_keys, maintenance
from .engine.changes import ChangeHub
from .engine.keys import Keys
from .engine.kv import KV, Limits
from .services import Services
from .clock import Clock, SystemClock
from .store.select import open_store
from .support.accesslog import LineSink, ObserveRequests
from .support.ratelimit import MemoryRateLimiter, parse_networks

log = logging.getLogger("stigmer")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    store = open_store(settings, clock)
    limits = Limits(max_value_bytes=settings.max_value_bytes, max_key_bytes=settings.max_key_bytes,
                    max_batch=settings.max_batch)
    return Services(settings, clock, store, KV(store, limits), ChangeHub(store, settings.watch_buffer),
                    Keys(store.keys, clock.now), MemoryRateLimiter())


async def bootstrap_admin(keys: Keys, secret: str) -> None:
    """Create the configured admin key (tenant `default`) unless it already exists."""
    if secret and await keys.repo.by_digest(engine_keys.digest(secret)) is None:
        await keys.create("default", ["admin"], name="bootstrap (STIGMER_ADMIN_KEY)", secret=secret)
        log.info("created the bootstrap admin key from STIGMER_ADMIN_KEY")


def create_app(settings: Settings | None = None, clock: Clock | None = None, access_log: bool = False) -> Starlette:
    """The app; `access_log`: write each request's line to stderr in the `log_format` (the server's choice)."""
    settings = settings or Settings.load()
    svc = build_services(settings, clock)
    svc.store.observe_group = svc.metrics.commit_group
    body.TIMEOUT = settings.body_timeout_seconds
    mcp_mount = mcp.Mount(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await svc.store.open()
        await bootstrap_admin(svc.keys, settings.admin_key)
        upkeep = contextlib.AsyncExitStack()
        await upkeep.enter_async_context(mcp_mount.running())
        tasks = [
            asyncio.create_task(maintenance.run_sweeper(svc.store, settings.sweep_interval_seconds)),
            asyncio.create_task(maintenance.run_compactor(
                svc.store, settings.change_retention_seconds, settings.compact_interval_seconds)),
        ]
        if svc.store.tick_seconds is not None:
            tasks.append(asyncio.create_task(svc.hub.feed.run(svc.store.tick_seconds)))

        def start_job_worker() -> None:  # once, when the first job kind is registered (docs/jobs.md)
            svc.jobs.on_register = None
            tasks.append(asyncio.create_task(svc.jobs.run()))

        if svc.jobs.kinds:
            start_job_worker()
        else:
            svc.jobs.on_register = start_job_worker
        if svc.webhooks.enabled:
            tasks.append(asyncio.create_task(svc.webhooks.run()))
        # What is alive now (modules, the app, its settings) lives as long as the server: keep it out of the
        # full collections, which otherwise scan it all (12.5 ms each under a GET load; 2.6 ms frozen; the
        # GET's p99 went from 15 to 5.6 ms). Unfrozen at the end, so a process that starts many apps (tests)
        # can collect them.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            svc.jobs.on_register = None
            await upkeep.aclose()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await svc.llm.aclose()
            await svc.webhooks.aclose()
            await svc.sessions.embedder.aclose()
            if svc.memory.finder.embedder is not None:
                await svc.memory.finder.embedder.aclose()
            await svc.store.close()

    statevec_surface, statevec_routes = statevec.mount(svc)
    cntrlnode_surface, cntrlnode_routes = cntrlnode.mount(svc)
    agentstate_surface, agentstate_routes = agentstate.mount(svc)
    semvec_surface, semvec_routes = semvec.mount(svc)
    statewave_surface, statewave_routes = statewave.mount(svc)
    surfaces = [semvec_surface, statevec_surface, cntrlnode_surface, agentstate_surface, statewave_surface,
                mcp.surface(settings), native_surface.surface(settings)]
    # No two surfaces share a path, so the order only sets the cost of matching: Starlette tries routes in
    # turn, and the compatible surfaces' key reads should not pay for two dozen native patterns first.
    routes = [
        *semvec_routes,  # ahead of CntrlNode's: /v1/state/context?session_id=… is semvec's
        *cntrlnode_routes,
        *statevec_routes,
        *agentstate_routes,
        *statewave_routes,
        *native_kv.routes(svc),
        *native_txn.routes(svc),
        *native_leases.routes(svc),
        *native_claims.routes(svc),
        *native_conversations.routes(svc),
        *native_semantic_sessions.routes(svc),
        *native_watch.routes(svc),
        *health.routes(svc),
        *metrics.routes(svc),
        *admin.routes(svc),
        *native_server_metrics.routes(svc),
        *native_tokens.routes(svc),
        *docs.routes(svc),
        *reference.routes(surfaces),
        *console.routes(),
        *mcp_mount.routes,
    ]
    edge = Middleware(Edge, surfaces=surfaces, keys=svc.keys, limiter=svc.limiter,
                      trusted=parse_networks(settings.trusted_proxies),
                      allowed_hosts=frozenset(h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ObserveRequests, stats=svc.metrics.http, sink=LineSink() if access_log else None,
                               line_format=settings.log_format),
                    Middleware(RequestIDMiddleware, rules=(agentstate.request_id_rule(), *semvec.request_id_rules(),
                                                           *statewave.request_id_rules(statewave_surface.prefixes))),
                    edge, Middleware(KeyFastPath, svc=svc)],
        exception_handlers={cls: errors.handle for cls in errors.HANDLED},
        lifespan=lifespan,
    )
    app.state.services = svc
    app.state.surfaces = surfaces
    return app
