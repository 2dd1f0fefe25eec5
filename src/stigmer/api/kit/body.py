"""Bounded, timed request bodies: no body larger than its limit is read, no client holds a request open."""

from __future__ import annotations

import asyncio

from starlette.types import Receive


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


class BodyTimeout(Exception):
    def __init__(self, seconds: float):
        super().__init__(f"request body not received in time (at most {seconds:g} s of silence, "
                         f"{seconds * TOTAL_FACTOR:g} s in all)")
        self.seconds = seconds


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


# Set once at start-up from `body_timeout_seconds`: the longest silence while a body arrives. The whole
# body must arrive within TOTAL_FACTOR times that, so a trickle cannot hold a request open either.
TIMEOUT = 10.0
TOTAL_FACTOR = 6


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 19 else None
    return None


async def read_body(scope: dict, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes (by Content-Length, then while reading)."""
    length = declared_length(scope["headers"])
    if length is not None and length > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT * TOTAL_FACTOR
    try:
        while True:
            async with asyncio.timeout(min(TIMEOUT, deadline - loop.time())):
                message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
    except TimeoutError:
        raise BodyTimeout(TIMEOUT) from None


async def request_body(request, limit: int) -> bytes:
    """`read_body` for a Starlette request."""
    return await read_body(request.scope, request.receive, limit)
