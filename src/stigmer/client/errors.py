"""One error tree for every failure the SDK reports.

`StigmerError` carries the server's envelope: `.code`, `.status`, `.message`, `.details`, `.request_id`.
Each error code has its own subclass; `ConnectionFailedError` (code "unavailable", status 0) stands
for a server that could not be reached or dropped the connection.
"""

from __future__ import annotations

from typing import Any


class StigmerError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, status: int = 0,
                 details: dict[str, Any] | None = None, request_id: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.details = details or {}
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class InvalidArgumentError(StigmerError):
    code = "invalid_argument"


class InvalidJSONError(InvalidArgumentError):
    code = "invalid_json"


class NotFoundError(StigmerError):
    code = "not_found"


class ConflictError(StigmerError):
    """Base of the 409 family: the request was valid but the key's state did not allow it."""

    code = "conflict"


class VersionConflictError(ConflictError):
    code = "version_conflict"

    @property
    def expected_version(self) -> int | None:
        return self.details.get("expected_version")

    @property
    def current_version(self) -> int | None:
        return self.details.get("current_version")


class TypeMismatchError(ConflictError):
    code = "type_mismatch"


class PatchFailedError(ConflictError):
    code = "patch_failed"


class CompareFailedError(ConflictError):
    code = "compare_failed"

    @property
    def index(self) -> int | None:
        return self.details.get("index")


class LeaseConflictError(ConflictError):
    """The resource has an active lease, or a blocking acquire's wait ran out (409); `details.holder`."""

    code = "lease_conflict"


class LeaseExpiredError(ConflictError):
    """A renew of a lease that expired and was not superseded yet (409)."""

    code = "lease_expired"


class FenceStaleError(ConflictError):
    """A fenced write whose token is not the resource's active lease (409); `details.reason`."""

    code = "fence_stale"


class IdempotencyConflictError(ConflictError):
    """The Idempotency-Key was already used for a different request (409); nothing ran."""

    code = "idempotency_conflict"


class IdempotencyInProgressError(ConflictError):
    """The first request with this Idempotency-Key was still running after the server's wait (409); retry."""

    code = "idempotency_in_progress"


class PreconditionFailedError(StigmerError):
    code = "precondition_failed"


class ValueTooLargeError(StigmerError):
    code = "value_too_large"


class PayloadTooLargeError(StigmerError):
    code = "payload_too_large"


class CompactedError(StigmerError):
    """The history a watch or poll needs was compacted away; re-read the state and watch from now."""

    code = "compacted"

    @property
    def oldest_revision(self) -> int | None:
        return self.details.get("oldest_revision")

    @property
    def current_revision(self) -> int | None:
        return self.details.get("current_revision")


class UnauthenticatedError(StigmerError):
    """No valid API key: missing, unknown, revoked or expired (401)."""

    code = "unauthenticated"


class ForbiddenError(StigmerError):
    """The key is valid but lacks the scope or the prefix this needs (403)."""

    code = "forbidden"


class RateLimitedError(StigmerError):
    code = "rate_limited"


class MethodNotAllowedError(StigmerError):
    code = "method_not_allowed"


class ServerError(StigmerError):
    """A 5xx answer (code "internal" or unknown)."""

    code = "internal"


class ConnectionFailedError(StigmerError):
    """No answer: the server could not be reached, timed out or dropped the connection."""

    code = "unavailable"


BY_CODE: dict[str, type[StigmerError]] = {
    cls.code: cls for cls in (
        InvalidArgumentError, InvalidJSONError, NotFoundError, VersionConflictError, TypeMismatchError,
        PatchFailedError, CompareFailedError, LeaseConflictError, LeaseExpiredError, FenceStaleError,
        IdempotencyConflictError, IdempotencyInProgressError, PreconditionFailedError, ValueTooLargeError, PayloadTooLargeError,
        CompactedError, UnauthenticatedError, ForbiddenError, RateLimitedError, MethodNotAllowedError, ServerError,
        ConnectionFailedError,
    )
}
BY_STATUS: dict[int, type[StigmerError]] = {
    400: InvalidArgumentError, 401: UnauthenticatedError, 403: ForbiddenError, 429: RateLimitedError, 404: NotFoundError, 405: MethodNotAllowedError, 409: ConflictError,
    410: CompactedError, 412: PreconditionFailedError, 413: PayloadTooLargeError,
}


def error_class(code: str, status: int) -> type[StigmerError]:
    if code in BY_CODE:
        return BY_CODE[code]
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else StigmerError


__all__ = ["StigmerError", *(c.__name__ for c in BY_CODE.values()), "ConflictError"]
