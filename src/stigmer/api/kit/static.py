"""Static assets shipped as package data (the /docs and /console pages): revalidated on each view (no-cache +
ETag, so a new version of the server never meets a stale script), under a CSP that forbids loading anything from
anywhere but the server and any inline script or style."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def headers(body: bytes) -> dict[str, str]:
    return {"Cache-Control": "no-cache", "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def served(body: bytes, media_type: str):
    """An endpoint answering `body` (or 304 to its ETag)."""
    fixed = headers(body)

    async def endpoint(request: Request) -> Response:
        if request.headers.get("if-none-match") == fixed["ETag"]:
            return Response(status_code=304, headers=fixed)
        return Response(body, 200, fixed, media_type=media_type)

    return endpoint
