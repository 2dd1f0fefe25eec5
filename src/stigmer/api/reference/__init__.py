"""The API reference page at /docs: a small HTML+JS+CSS app shipped as package data (assets/), which reads
every surface's OpenAPI document from /docs/openapi/<surface>.json. Nothing is fetched from elsewhere: the
CSP forbids it. docs/api.md, "The reference page"."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..kit.surface import Surface

SURFACES = ("native", "statevec", "cntrlnode", "agentstate", "statewave", "semvec", "mcp")  # the page's order
ASSETS = {"docs.js": "text/javascript; charset=utf-8", "docs.css": "text/css; charset=utf-8"}
PAGE = "index.html"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
INDEX = "/docs/openapi/index.json"
PUBLIC = frozenset({"/docs", INDEX, *(f"/docs/{a}" for a in ASSETS), *(f"/docs/openapi/{s}.json" for s in SURFACES)})


def _headers(body: bytes) -> dict[str, str]:
    # Revalidated on each view (no-cache + ETag): a new version of the server never meets a stale script.
    return {"Cache-Control": "no-cache", "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _served(body: bytes, media_type: str):
    headers = _headers(body)

    async def endpoint(request: Request) -> Response:
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(body, 200, headers, media_type=media_type)

    return endpoint


def documents(surfaces: list[Surface]) -> dict[str, dict[str, Any]]:
    """Each surface's OpenAPI document, by surface name, in the page's order."""
    found = {s.name: s.openapi() for s in surfaces if s.openapi is not None}
    return {n: found[n] for n in sorted(found, key=lambda n: SURFACES.index(n) if n in SURFACES else len(SURFACES))}


def routes(surfaces: list[Surface]) -> list[Route]:
    docs = documents(surfaces)
    assets = resources.files(__package__) / "assets"
    index = [{"name": n, "title": d["info"]["title"], "url": f"/docs/openapi/{n}.json"} for n, d in docs.items()]
    out = [Route("/docs", _served(assets.joinpath(PAGE).read_bytes(), "text/html; charset=utf-8"), methods=["GET"]),
           Route(INDEX, _served(msgspec.json.encode(index), "application/json"), methods=["GET"])]
    out += [Route(f"/docs/{a}", _served(assets.joinpath(a).read_bytes(), t), methods=["GET"]) for a, t in ASSETS.items()]
    out += [Route(f"/docs/openapi/{n}.json", _served(msgspec.json.encode(d), "application/json"), methods=["GET"])
            for n, d in docs.items()]
    return out
