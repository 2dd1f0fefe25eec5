"""CORS for one surface: which origins are allowed, and the headers of responses and preflights."""

from __future__ import annotations

from typing import Iterable


class Cors:
    def __init__(self, origins: str | Iterable[str], expose: str = "", methods: str = "", headers: str = "",
                 credentials: bool = False):
        items = [o.strip() for o in (origins.split(",") if isinstance(origins, str) else origins) if o.strip()]
        self.any = "*" in items
        self.origins = frozenset(items) - {"*"}
        self.expose, self.methods, self.allow_headers = expose, methods, headers
        # Credentials allowed: a browser refuses `*` then, so an allowed origin is echoed (as Starlette does).
        self.credentials = credentials

    @property
    def enabled(self) -> bool:
        return self.any or bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (self.any or origin in self.origins)

    def headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Headers for a response to a request from `origin` (none when CORS is off)."""
        if not self.enabled:
            return []
        out: list[tuple[bytes, bytes]] = []
        if self.any and not self.origins and not self.credentials:
            out.append((b"access-control-allow-origin", b"*"))
        else:
            if self.allows(origin):
                out.append((b"access-control-allow-origin", origin.encode("latin-1")))
            out.append((b"vary", b"Origin"))
        if self.credentials and self.allows(origin):
            out.append((b"access-control-allow-credentials", b"true"))
        if self.expose:
            out.append((b"access-control-expose-headers", self.expose.encode()))
        return out

    def preflight(self, requested_headers: str | None) -> dict[str, str]:
        """The extra headers of a 204 preflight answer."""
        return {"Access-Control-Allow-Methods": self.methods,
                "Access-Control-Allow-Headers": requested_headers or self.allow_headers,
                "Access-Control-Max-Age": "86400"}
