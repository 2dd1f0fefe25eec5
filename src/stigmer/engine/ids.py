"""Server-generated ids: 21 random characters of [A-Za-z0-9_-] (about 126 bits), the shape the AgentState
spec gives every id it names (leases, tokens, claims, evidence, runs, state events, conversations, messages).
The first character is a letter or digit, so an id is never read as an option on a command line (`-x…`)."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits + "_-"
BASE62 = string.ascii_letters + string.digits
LENGTH = 21


def new_id() -> str:
    # One read of the OS's randomness for the tail: 64 characters map each byte's low 6 bits without bias.
    return secrets.choice(BASE62) + "".join(ALPHABET[b & 63] for b in secrets.token_bytes(LENGTH - 1))


def new_secret(prefix: str, length: int = 40) -> str:
    """A bearer secret: `prefix` then `length` base62 characters (40 of them carry 238 random bits)."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(length))
