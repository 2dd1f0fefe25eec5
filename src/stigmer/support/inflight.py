"""Requests in flight, for a server that cannot drain them itself (granian embedded, `--server granian`).

Counts HTTP requests from their start to the end of the app's call. Once shutdown begins, responses carry
`connection: close`, so keep-alive clients move on instead of sending the next request here; `drained`
waits, up to a grace period, until every counted request has ended.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class InFlight:
    def __init__(self, app: ASGIApp):
        self.app = app
        self.count = 0
        self.closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Stop keeping connections alive; wait until no request is in flight. False if `timeout` passes first."""
        self.closing = True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_(message: Message) -> None:
            if self.closing and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        self.count += 1
        self._idle.clear()
        try:
            await self.app(scope, receive, send_)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()
