"""Opaque page cursors: the last key of a page, versioned and URL-safe, for every surface; and the
cursor of a page ordered by (time in ms, id), which stands for its last row's `<ms>.<id>`."""

from __future__ import annotations

import base64
import binascii

from ...engine.errors import InvalidArgument

_TAG = b"c1:"


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(_TAG + key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The key a cursor stands for; InvalidArgument(field="cursor") for anything this codec did not make."""
    try:
        if len(cursor) > 8192:
            raise ValueError
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        if raw.startswith(_TAG) and len(raw) > len(_TAG):
            return raw[len(_TAG):].decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument("invalid cursor", field="cursor")


def encode_row_cursor(row: tuple[int, str] | None) -> str | None:
    """The cursor of a page whose last row is (ms, id); None when no row follows."""
    return None if row is None else encode_cursor(f"{row[0]}.{row[1]}")


def decode_row_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    at, dot, row_id = decode_cursor(cursor).partition(".")
    if not dot or not at.isascii() or not at.isdigit() or len(at) > 18 or not row_id:
        raise InvalidArgument("invalid cursor", field="cursor")
    return int(at), row_id
