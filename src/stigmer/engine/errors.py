"""Engine errors: plain data, no HTTP. Each front door maps them to its own wire shape in one table."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    code = "internal"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidArgument(EngineError):
    code = "invalid_argument"


class NotFound(EngineError):
    code = "not_found"


class VersionConflict(EngineError):
    """An expected version (0 = absent) did not match; `current_version` is 0 when the key is absent."""

    code = "version_conflict"

    def __init__(self, expected: int, current: int):
        super().__init__(f"expected version {expected}, current version {current}",
                         expected_version=expected, current_version=current)
        self.expected_version = expected
        self.current_version = current


class TypeMismatch(EngineError):
    """A read-modify-write met a current value of the wrong type. `reason` names which rule failed."""

    code = "type_mismatch"

    def __init__(self, op: str, reason: str):
        super().__init__(f"cannot {op}: {reason.replace('_', ' ')}", op=op, reason=reason)
        self.op = op
        self.reason = reason


class ValueTooLarge(EngineError):
    code = "value_too_large"

    def __init__(self, limit: int, size: int):
        super().__init__(f"value exceeds {limit} bytes", limit=limit, size=size)
        self.limit = limit


class PatchFailed(EngineError):
    """A JSON Patch could not be applied: a `test` failed or a path did not resolve."""

    code = "patch_failed"


class CompareFailed(EngineError):
    """A transaction's comparison did not hold; nothing was written."""

    code = "compare_failed"

    def __init__(self, index: int, message: str):
        super().__init__(f"compare {index} failed: {message}", index=index)
        self.index = index


class Compacted(EngineError):
    """A watch asked for history that compaction removed."""

    code = "compacted"

    def __init__(self, oldest: int, current: int):
        super().__init__(f"history before revision {oldest} was compacted", oldest_revision=oldest, current_revision=current)
        self.oldest_revision = oldest
        self.current_revision = current


class Unauthenticated(EngineError):
    """No valid credential where one is required (missing, unknown, revoked or expired)."""

    code = "unauthenticated"


class Forbidden(EngineError):
    """The credential is valid but does not allow this operation here."""

    code = "forbidden"


class FutureRevision(EngineError):
    """A watch asked to start after a revision that does not exist yet. Revisions only grow, so the
    caller has a position from elsewhere (another server, a reset store): waiting could hide that."""

    code = "future_revision"

    def __init__(self, requested: int, current: int):
        super().__init__(f"revision {requested} is beyond the current revision {current}",
                         requested_revision=requested, current_revision=current)
        self.requested_revision = requested
        self.current_revision = current


class StorageFull(EngineError):
    """The disk (or the database's size cap) is full: nothing of the write was kept. Retry once space is freed."""

    code = "storage_full"


class StorageUnavailable(EngineError):
    """The database cannot be written (read-only, I/O error, cannot open): nothing of the write was kept."""

    code = "storage_unavailable"


class LeaseConflict(EngineError):
    """The resource has an active lease (or, for a blocking acquire, still had one when the wait ended)."""

    code = "lease_conflict"


class LeaseExpired(EngineError):
    """A renew named the resource's newest lease, which has expired and was not superseded yet."""

    code = "lease_expired"


class FenceStale(EngineError):
    """A write carried a fencing token that is not the active lease's: superseded, released, expired or
    never issued. Nothing was written."""

    code = "fence_stale"


class LeaseRequired(LeaseConflict):
    """A state write named no lease while the key's lease is active. Nothing was written."""

    code = "lease_required"


class LeaseMismatch(LeaseConflict):
    """A state write named a lease that is not the key's newest (unknown, or superseded forever).
    Nothing was written."""

    code = "lease_mismatch"
class IdempotencyConflict(EngineError):
    """An Idempotency-Key was used before for a different request (another fingerprint). Nothing ran."""

    code = "idempotency_conflict"


class IdempotencyInProgress(EngineError):
    """The first request with this Idempotency-Key is still running after the wait; nothing ran here."""

    code = "idempotency_in_progress"


class Conflict(EngineError):
    """The write would break a uniqueness rule (a conversation's external_id in its tenant). Nothing was written."""

    code = "conflict"
