"""The native API's error envelope, and the one exception handler every surface's errors go through.

`{"error": {"code", "message", "details"?, "request_id"}}` for every error of `/v1`, `/healthz`,
`/readyz`, `/openapi.json` and `/docs`, including unknown routes (404) and wrong methods (405). Errors
raised under a compatible surface's paths are rendered by that surface, in its own shape.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..engine.errors import EngineError
from .http import json_response
from .kit.body import BodyTimeout, BodyTooLarge, ClientGone
from .kit.errors import Problem
from .kit.surface import surface_for

APIError = Problem  # a native handler's error in wire terms


def error_response(request: Request, status: int, code: str, message: str,
                   details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    body["request_id"] = rid = request.scope.get("state", {}).get("request_id", "")
    # Set here too: a 500 is rendered outside the request-id middleware.
    return json_response({"error": body}, status, {**(headers or {}), "X-Request-ID": rid})


def render(request: Request, p: Problem) -> Response:
    if request.method == "OPTIONS" and p.status == 405:  # OPTIONS on a known path: what it allows
        headers = {"Allow": (p.headers.get("allow") or p.headers.get("Allow", "")) + ", OPTIONS"}
        if request.headers.get("origin"):
            cors = surface_for(request.app.state.surfaces, request.url.path, request.scope.get("query_string", b"")).cors
            headers |= cors.preflight(request.headers.get("access-control-request-headers"))
        return Response(status_code=204, headers=headers)
    return error_response(request, p.status, p.code, p.message, p.details, p.headers)


def from_exception(request: Request, exc: Exception) -> Response:
    return surface_for(request.app.state.surfaces, request.url.path, request.scope.get("query_string", b"")).error(request, exc)


async def handle(request: Request, exc: Exception) -> Response:
    return from_exception(request, exc)


# Exception classes mapped inside the middleware stack; `Exception` last, for the 500 that must never
# leak details (Starlette renders that one outermost, so it sets X-Request-ID itself).
HANDLED = (HTTPException, Problem, EngineError, BodyTooLarge, BodyTimeout, ClientGone, Exception)
