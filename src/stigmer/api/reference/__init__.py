"""The API reference page at /docs: a small HTML+JS+CSS app shipped as package data (assets/), which reads
every surface's OpenAPI document from /docs/openapi/<surface>.json. Nothing is fetched from elsewhere: the
CSP forbids it. docs/api.md, "The reference page"."""

from __future__ import annotations

from importlib import resources
from typing import Any

import msgspec
from starlette.routing import Route

from ..kit.static import served
from ..kit.surface import Surface

SURFACES = ("native", "statevec", "cntrlnode", "agentstate", "statewave", "semvec", "mcp")  # the page's order
ASSETS = {"docs.js": "text/javascript; charset=utf-8", "docs.css": "text/css; charset=utf-8"}
PAGE = "index.html"
INDEX = "/docs/openapi/index.json"
PUBLIC = frozenset({"/docs", INDEX, *(f"/docs/{a}" for a in ASSETS), *(f"/docs/openapi/{s}.json" for s in SURFACES)})


def documents(surfaces: list[Surface]) -> dict[str, dict[str, Any]]:
    """Each surface's OpenAPI document, by surface name, in the page's order."""
    found = {s.name: s.openapi() for s in surfaces if s.openapi is not None}
    return {n: found[n] for n in sorted(found, key=lambda n: SURFACES.index(n) if n in SURFACES else len(SURFACES))}


def routes(surfaces: list[Surface]) -> list[Route]:
    docs = documents(surfaces)
    assets = resources.files(__package__) / "assets"
    index = [{"name": n, "title": d["info"]["title"], "url": f"/docs/openapi/{n}.json"} for n, d in docs.items()]
    out = [Route("/docs", served(assets.joinpath(PAGE).read_bytes(), "text/html; charset=utf-8"), methods=["GET"]),
           Route(INDEX, served(msgspec.json.encode(index), "application/json"), methods=["GET"])]
    out += [Route(f"/docs/{a}", served(assets.joinpath(a).read_bytes(), t), methods=["GET"]) for a, t in ASSETS.items()]
    out += [Route(f"/docs/openapi/{n}.json", served(msgspec.json.encode(d), "application/json"), methods=["GET"])
            for n, d in docs.items()]
    return out
