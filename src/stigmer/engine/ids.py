"""Server-generated ids: 21 random characters of [A-Za-z0-9_-] (126 bits), the shape the AgentState
spec gives every id it names (leases, tokens, claims, evidence, runs, state events)."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits + "_-"
BASE62 = string.ascii_letters + string.digits
LENGTH = 21


def new_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def new_secret(prefix: str, length: int = 40) -> str:
    """A bearer secret: `prefix` then `length` base62 characters (40 of them carry 238 random bits)."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(length))
