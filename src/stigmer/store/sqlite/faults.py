"""Which SQLite errors are storage faults (the disk, not the request), and the engine error for each."""

from __future__ import annotations

import sqlite3

from ...engine.errors import EngineError, StorageFull, StorageUnavailable

# Primary result codes (the low byte of an extended code).
SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT = 5, 8, 10, 11
SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 13, 14, 26
_UNAVAILABLE = {SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB}
# For errors raised without a code (older Pythons, some wrappers).
_FULL_TEXT = "database or disk is full"
_UNAVAILABLE_TEXT = ("readonly database", "disk i/o error", "unable to open database file", "database is locked",
                     "malformed", "not a database")


def storage_error(exc: BaseException) -> EngineError | None:
    """The engine error for a storage fault, or None when `exc` is something else (a bug, a bad query)."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary == SQLITE_FULL or _FULL_TEXT in text:
        return StorageFull("storage is full; the write was not kept", reason=str(exc))
    if primary in _UNAVAILABLE or any(t in text for t in _UNAVAILABLE_TEXT):
        return StorageUnavailable("storage cannot be written; the write was not kept", reason=str(exc))
    return None
