"""Which PostgreSQL errors are storage faults (the database, not the request), and the engine error for each."""

from __future__ import annotations

import psycopg

from ...engine.errors import EngineError, InvalidArgument, StorageFull, StorageUnavailable

# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
SERIALIZATION_FAILURE, DEADLOCK_DETECTED = "40001", "40P01"
TOO_MANY_CONNECTIONS = "53300"
_UNAVAILABLE = {
    "57P01", "57P02", "57P03",  # admin shutdown, crash shutdown, cannot connect now (starting up)
    "25006",  # read-only transaction (a standby, or default_transaction_read_only)
    TOO_MANY_CONNECTIONS,
    "XX001", "XX002",  # data / index corrupted
}
# Class 08 is "connection exception", class 58 "system error" (I/O); class 53 "insufficient resources".
_UNAVAILABLE_CLASSES = ("08", "58")


def storage_error(exc: BaseException) -> EngineError | None:
    """The engine error for a storage fault, or None when `exc` is something else (a bug, a bad query)."""
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    if state.startswith("53") and state != TOO_MANY_CONNECTIONS:
        return StorageFull("storage is full; the write was not kept", reason=_reason(exc))
    if state in _UNAVAILABLE or state.startswith(_UNAVAILABLE_CLASSES):
        return StorageUnavailable("storage cannot be written; the write was not kept", reason=_reason(exc))
    if not state and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        # No SQLSTATE: raised by the client (refused, lost or closed connection, pool timeout).
        if not isinstance(exc, psycopg.errors.PipelineAborted):
            return StorageUnavailable("storage cannot be reached; the write was not kept", reason=_reason(exc))
    return None


def request_refused(exc: BaseException) -> EngineError | None:
    """The engine error for a statement refused because of what this request holds, or None: text holding
    U+0000, which PostgreSQL's text cannot (psycopg refuses it before sending); class 54, "program limit
    exceeded" (an index entry over its 2,704-byte limit, from a key of some 2,700 bytes that does not compress)."""
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None and "NUL" in str(exc):
        return InvalidArgument("text must not contain U+0000 (the PostgreSQL store cannot hold it)",
                               reason=_reason(exc))
    if isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith("54"):
        return InvalidArgument("the request exceeds a limit of the PostgreSQL store (a key of more than about "
                               "2,700 UTF-8 bytes cannot be indexed)", field="key", reason=_reason(exc))
    return None


def is_retryable(exc: BaseException) -> bool:
    """A conflict PostgreSQL resolves by aborting one side: running the mutations again is safe."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in (SERIALIZATION_FAILURE, DEADLOCK_DETECTED)


def unavailable(message: str, exc: BaseException) -> StorageUnavailable:
    return StorageUnavailable(message, reason=_reason(exc))


def _reason(exc: BaseException) -> str:
    # The first line only: libpq's messages go on with hints and the server's address per attempt.
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
