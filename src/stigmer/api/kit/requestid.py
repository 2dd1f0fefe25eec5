"""Pure ASGI middleware: every response carries X-Request-ID (echoed when the client sent a valid one).

A surface whose spec has its own rule for which ids are echoed and what a fresh one looks like gives it
as a rule for its path prefix."""

from __future__ import annotations

import itertools
import os
from typing import Callable, NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# A random per-process prefix and a counter: unique, and far cheaper than uuid4 on the hot path.
_PREFIX = os.urandom(6).hex().encode()
_counter = itertools.count(1)


def _valid(value: bytes) -> bool:
    return 1 <= len(value) <= 128 and all(0x21 <= b <= 0x7E for b in value)


class Rule(NamedTuple):
    prefix: str  # the rule holds on this path and below it
    valid: Callable[[bytes], bool]  # an id the client sent that is echoed
    fresh: Callable[[], bytes]  # a new id


def _fresh() -> bytes:
    return b"%s-%x" % (_PREFIX, next(_counter))


DEFAULT = Rule("/", _valid, _fresh)


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp, rules: tuple[Rule, ...] = ()):
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = DEFAULT
        if self.rules:
            path = scope["path"]
            rule = next((r for r in self.rules if path == r.prefix or path.startswith(r.prefix + "/")), DEFAULT)
        rid = next((v for k, v in scope["headers"] if k == HEADER), b"")
        if not rule.valid(rid):
            rid = rule.fresh()
        scope.setdefault("state", {})["request_id"] = rid.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(k.lower() == HEADER for k, _ in headers):
                    headers = message["headers"] = [*headers, (HEADER, rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)
