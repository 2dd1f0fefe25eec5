"""Opaque page cursors: the last key of a page, versioned and URL-safe, for every surface."""

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
