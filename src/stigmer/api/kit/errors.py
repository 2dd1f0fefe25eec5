"""Errors in wire terms, and the mapping from engine errors to each surface's status and code.

Handlers raise engine errors (or `Problem`s); one exception handler picks the surface by path and lets
it turn the error into a `Problem` with its table, then render it in its own body shape.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from ...engine import errors as e
from .body import BodyTimeout, BodyTooLarge, ClientGone
from .streams import TooManyStreams


class Problem(Exception):
    """An error already in wire terms."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details or {}, headers or {}


# The native table: engine error class -> HTTP status (the code is the error's own `code`).
STATUS: dict[type[Exception], int] = {
    e.InvalidArgument: 400,
    e.FutureRevision: 400,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.VersionConflict: 409,
    e.TypeMismatch: 409,
    e.PatchFailed: 409,
    e.CompareFailed: 409,
    e.LeaseConflict: 409,
    e.LeaseExpired: 409,
    e.FenceStale: 409,
    e.IdempotencyConflict: 409,
    e.Conflict: 409,
    e.IdempotencyInProgress: 409,
    e.Compacted: 410,
    e.ValueTooLarge: 413,
    TooManyStreams: 429,
    e.StorageUnavailable: 503,
    e.StorageFull: 507,
}


def status_of(exc: Exception, table: dict[type[Exception], int] = STATUS) -> int:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return 500


def problem_of(exc: Exception, table: dict[type[Exception], int] = STATUS) -> Problem:
    """Any exception as a Problem: engine errors by the table, transport errors by kind, the rest 500."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, e.EngineError):
        status = status_of(exc, table)
        if status == 500:
            return Problem(500, "internal", "internal error")
        headers = {"Retry-After": "1"} if isinstance(exc, TooManyStreams) else None
        return Problem(status, exc.code, exc.message, exc.details, headers)
    if isinstance(exc, BodyTooLarge):
        return Problem(413, "payload_too_large", str(exc), {"limit": exc.limit})
    if isinstance(exc, BodyTimeout):
        return Problem(408, "request_timeout", str(exc), headers={"Connection": "close"})
    if isinstance(exc, ClientGone):
        return Problem(400, "client_gone", "the client disconnected")
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "route not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return Problem(exc.status_code, code, message, headers=dict(exc.headers or {}))
    return Problem(500, "internal", "internal error")
