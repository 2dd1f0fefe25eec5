"""The native API's error envelope and the one table mapping engine errors to it.

`{"error": {"code", "message", "details"?, "request_id"}}` for every error of `/v1`, `/healthz`,
`/readyz`, `/openapi.json` and `/docs`, including unknown routes (404) and wrong methods (405).
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..engine import errors as engine_errors
from .http import BodyTooLarge, json_response


class APIError(Exception):
    """An error raised by a native handler, already in wire terms."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


# engine error class -> HTTP status
STATUS: dict[type[engine_errors.EngineError], int] = {
    engine_errors.InvalidArgument: 400,
    engine_errors.NotFound: 404,
    engine_errors.VersionConflict: 409,
    engine_errors.TypeMismatch: 409,
    engine_errors.PatchFailed: 409,
    engine_errors.CompareFailed: 409,
    engine_errors.ValueTooLarge: 413,
    engine_errors.Compacted: 410,
    engine_errors.FutureRevision: 400,
    engine_errors.StorageFull: 507,
    engine_errors.StorageUnavailable: 503,
}


def error_response(request: Request, status: int, code: str, message: str,
                   details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    body["request_id"] = rid = request.scope.get("state", {}).get("request_id", "")
    # Set here too: a 500 is rendered outside the request-id middleware.
    return json_response({"error": body}, status, {**(headers or {}), "X-Request-ID": rid})


# Compatible surfaces answer errors on their own paths in their own shape: name -> (path test, renderer).
SURFACES: dict[str, tuple[Callable[[str], bool], Callable[[Request, Exception], Response]]] = {}


def register_surface(name: str, matches: Callable[[str], bool],
                     render: Callable[[Request, Exception], Response]) -> None:
    """Route errors (unknown path, wrong method, unexpected failure) under a surface's paths to its renderer."""
    SURFACES[name] = (matches, render)


def from_exception(request: Request, exc: Exception) -> Response:
    for matches, render in SURFACES.values():
        if matches(request.url.path):
            return render(request, exc)
    if isinstance(exc, APIError):
        return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, engine_errors.EngineError):
        return error_response(request, STATUS.get(type(exc), 500), exc.code, exc.message, exc.details or None)
    if isinstance(exc, BodyTooLarge):
        return error_response(request, 413, "payload_too_large", str(exc), {"limit": exc.limit})
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "route not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return error_response(request, exc.status_code, code, message, headers=exc.headers)
    return error_response(request, 500, "internal", "internal error")


async def handle(request: Request, exc: Exception) -> Response:
    return from_exception(request, exc)


# Exception classes the app maps; `Exception` last, for the 500 that must never leak details.
HANDLED = (HTTPException, APIError, engine_errors.EngineError, BodyTooLarge, Exception)
