"""Pure ASGI middleware: every response carries X-Request-ID (echoed when the client sent a valid one)."""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"


def _valid(value: bytes) -> bool:
    return 1 <= len(value) <= 128 and all(0x21 <= b <= 0x7E for b in value)


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = next((v for k, v in scope["headers"] if k == HEADER), b"")
        if not _valid(rid):
            rid = uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = rid.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                headers.append((b"x-request-id", rid))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
