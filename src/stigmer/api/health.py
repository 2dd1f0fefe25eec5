"""Liveness and readiness, in the shapes every surface shares (statewave spec §5.1–5.2)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..services import Services
from .http import json_response


def routes(svc: Services) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        start = time.perf_counter()
        try:
            svc.store.ping()
        except Exception as exc:
            return json_response({"status": "not_ready", "checks": [
                {"name": "database", "status": "error", "detail": str(exc) or type(exc).__name__}]}, 503)
        latency = round((time.perf_counter() - start) * 1000, 3)
        return json_response({"status": "ready", "checks": [{"name": "database", "status": "ok", "latency_ms": latency}]})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/health", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/ready", readyz, methods=["GET"]),
    ]
