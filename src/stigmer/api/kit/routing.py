"""Routing helpers shared by the surfaces."""

from __future__ import annotations

from typing import Awaitable, Callable

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
