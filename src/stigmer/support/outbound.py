"""What every outbound HTTP provider shares (the LLM, the embeddings endpoint): a pooled client per event loop
and a response body read with a size bound."""

from __future__ import annotations

import asyncio

import httpx


class LoopClient:
    """An `httpx.AsyncClient` for the running event loop: pooled connections belong to one loop, so a new loop
    (a test, `asyncio.run`) gets its own client. `aclose()` at shutdown."""

    def __init__(self, timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=self.timeout, follow_redirects=False)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed response, or None as soon as it is known to exceed `limit` bytes."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
