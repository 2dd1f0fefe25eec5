"""Liveness and readiness, in the shapes every surface shares (statewave spec §5.1–5.2)."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..engine.errors import EngineError
from ..services import Services
from .http import json_response

# While a storage fault is active, readiness tries one tiny write once the latest failure is this old (a
# failed probe counts as a failure), so a nearly full disk does not flip readiness on every request.
PROBE_INTERVAL = 5.0
PROBE_TIMEOUT = 2.0
STUCK_SECONDS = 30 * 60  # a job running longer makes readiness `degraded` (§5.2), not unready


def routes(svc: Services) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def storage_fault():
        """The active storage fault after a probe write, so readiness comes back by itself once the disk does."""
        fault = svc.store.health()
        if fault is not None and svc.clock.now() - fault.last >= PROBE_INTERVAL:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await svc.store.probe()
            except (EngineError, TimeoutError):
                pass  # the fault stays recorded
        return svc.store.health()

    async def readyz(request: Request) -> Response:
        start = time.perf_counter()
        try:
            await svc.store.ping()
        except Exception as exc:
            return json_response({"status": "not_ready", "checks": [
                {"name": "database", "status": "error", "detail": str(exc) or type(exc).__name__}]}, 503)
        fault = await storage_fault()
        if fault is not None:
            return json_response({"status": "not_ready", "checks": [
                {"name": "database", "status": "error", "detail": f"{fault.code}: {fault.reason}"}]}, 503)
        latency = round((time.perf_counter() - start) * 1000, 3)
        checks = [{"name": "database", "status": "ok", "latency_ms": latency}]
        try:
            stuck = await svc.jobs.running_longer_than(STUCK_SECONDS)
        except EngineError:
            stuck = 0  # the database answered the ping: a failed count is not a reason to refuse traffic
        if stuck:
            checks.append({"name": "queue", "status": "degraded", "detail": f"{stuck} job(s) running > 30 min"})
        return json_response({"status": "degraded" if stuck else "ready", "checks": checks})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/health", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/ready", readyz, methods=["GET"]),
    ]
