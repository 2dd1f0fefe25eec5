"""The web console at /console: plain ES modules, CSS and one HTML page shipped as package data (assets/),
which read the native API with the signed-in key. The page and its assets are public like /docs (they hold no
data; every data call carries the key). docs/console.md."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..kit.static import served

PAGE = "index.html"
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".html": "text/html; charset=utf-8"}


def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file under assets/ (sub-folders included) by its path there, with its media type."""
    root = resources.files(__package__) / "assets"
    found: dict[str, tuple[bytes, str]] = {}

    def walk(folder, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif (suffix := item.name[item.name.rfind("."):]) in MEDIA and item.name != PAGE:
                found[prefix + item.name] = (item.read_bytes(), MEDIA[suffix])

    walk(root, "")
    return found


ASSETS = _assets()
PUBLIC = frozenset({"/console", "/console/", *(f"/console/assets/{p}" for p in ASSETS)})


def routes() -> list[Route]:
    page = (resources.files(__package__) / "assets" / PAGE).read_bytes()
    endpoints = {p: served(body, media) for p, (body, media) in ASSETS.items()}

    async def asset(request: Request) -> Response:
        endpoint = endpoints.get(request.path_params["path"])
        if endpoint is None:  # only reachable with a key: unknown asset paths are not public
            return Response("not found", 404, media_type="text/plain")
        return await endpoint(request)

    async def slash(request: Request) -> Response:
        return RedirectResponse("/console", 308)

    return [Route("/console", served(page, MEDIA[".html"]), methods=["GET"]),
            Route("/console/", slash, methods=["GET"]),
            Route("/console/assets/{path:path}", asset, methods=["GET"])]
