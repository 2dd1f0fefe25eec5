"""Who is asking: the tenant of a request, and API-key rings. Open mode (no API keys) serves one default tenant."""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

from starlette.requests import Request

DEFAULT_TENANT = "default"


def tenant_of(request: Request) -> str:
    return scope_tenant(request.scope)


def scope_tenant(scope: dict) -> str:
    return scope.get("state", {}).get("tenant", DEFAULT_TENANT)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """Configured API keys, kept only as SHA-256 digests and compared in constant time.

    Entries are `key` (tenant "default") or `tenant:key`, as a list or a comma-separated string.
    """

    def __init__(self, entries: str | Iterable[str] = ""):
        items = entries.split(",") if isinstance(entries, str) else list(entries)
        self._keys: list[tuple[bytes, str]] = []
        for raw in items:
            raw = raw.strip()
            if not raw:
                continue
            tenant, sep, key = raw.partition(":")
            if not sep:
                tenant, key = DEFAULT_TENANT, raw
            self._keys.append((_digest(key), tenant or DEFAULT_TENANT))

    def __bool__(self) -> bool:
        return bool(self._keys)

    def lookup(self, presented: str | None) -> str | None:
        """The tenant of a configured key, or None. Every configured key is compared (constant time)."""
        if not presented:
            return None
        d = _digest(presented)
        found = None
        for digest, tenant in self._keys:
            if hmac.compare_digest(d, digest) and found is None:
                found = tenant
        return found


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
