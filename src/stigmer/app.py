"""ASGI app assembly: the store, the engine, every front door, and the background upkeep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .api import cntrlnode, errors, health, statevec
from .api.native import docs, kv as native_kv, txn as native_txn, watch as native_watch
from .api.native.fastpath import KeyFastPath
from .config import Settings
from .engine import maintenance
from .engine.changes import ChangeHub
from .engine.kv import KV, Limits
from .services import Services
from .store.sqlite import SQLiteStore
from .support.requestid import RequestIDMiddleware

log = logging.getLogger("stigmer")


def build_services(settings: Settings) -> Services:
    store = SQLiteStore(settings.data_dir, settings.reader_threads)
    limits = Limits(max_value_bytes=settings.max_value_bytes, max_key_bytes=settings.max_key_bytes,
                    max_batch=settings.max_batch)
    return Services(settings, store, KV(store, limits), ChangeHub(store, settings.watch_buffer))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.load()
    svc = build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await svc.store.open()
        tasks = [
            asyncio.create_task(maintenance.run_sweeper(svc.store, settings.sweep_interval_seconds)),
            asyncio.create_task(maintenance.run_compactor(
                svc.store, settings.change_retention_seconds, settings.compact_interval_seconds)),
        ]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await svc.store.close()

    routes = [
        *health.routes(svc),
        *native_kv.routes(svc),
        *native_txn.routes(svc),
        *native_watch.routes(svc),
        *docs.routes(svc),
        *statevec.routes(svc),
        *cntrlnode.routes(svc),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestIDMiddleware), Middleware(KeyFastPath, svc=svc)],
        exception_handlers={cls: errors.handle for cls in errors.HANDLED},
        lifespan=lifespan,
    )
    app.state.services = svc
    return app
