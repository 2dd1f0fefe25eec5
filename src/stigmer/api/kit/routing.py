"""Routing helpers shared by the surfaces."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class AnyMethod:
    """An ASGI endpoint that Starlette routes every method to (a plain function gets GET/HEAD only), so a
    surface answers 405 itself, in its own order of checks."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]):
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)


def by_method(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[[Request], Any]:
    """One endpoint for several methods of one path (HEAD answers as GET), so that a 405 or an OPTIONS
    answers `Allow` with all of them (Starlette takes `Allow` from the first matching route only)."""

    async def endpoint(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return endpoint
