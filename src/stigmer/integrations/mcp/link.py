"""How a tool reaches the server: the SDK client, and plain HTTP for routes the SDK has no method for.

A `Link` carries one credential. Over stdio it is the process's (`--api-key`); over `/mcp` it is the
credential of the MCP request being served, attached by `CallerTransport` to every request the tool makes,
whatever else the clients would send: a tool never acts with more than its caller's key allows.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, AsyncIterator

import httpx
import msgspec

from ...client import AsyncClient, StigmerError
from ...client._base import error_from_response
from ...api.kit.surface import bearer


@dataclasses.dataclass
class Link:
    client: AsyncClient
    http: httpx.AsyncClient  # same server, same credential: the compatible surfaces' routes

    async def get_json(self, path: str, params: dict[str, Any]) -> Any:
        """GET a route of another surface; its error answer becomes a `StigmerError`."""
        return answer(await self.http.get(path, params=params))

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return answer(await self.http.post(path, content=msgspec.json.encode(body),
                                           headers={"Content-Type": "application/json"}))


def answer(response: httpx.Response) -> Any:
    """The JSON of a success; else a `StigmerError` with the surface's message: `{"error": {code, message}}`
    (ours and Statewave's) or FastAPI's `{"detail": ...}` (semvec's)."""
    if response.is_success:
        return msgspec.json.decode(response.content)
    error = error_from_response(response)
    try:
        detail = msgspec.json.decode(response.content).get("detail")
    except (msgspec.DecodeError, AttributeError):
        detail = None
    if detail is not None:
        error.message = detail if isinstance(detail, str) else msgspec.json.encode(detail).decode()
    raise error


@contextlib.asynccontextmanager
async def open_link(url: str, *, api_key: str | None = None, transport: httpx.AsyncBaseTransport | None = None,
                    timeout: float = 10.0) -> AsyncIterator[Link]:
    async with AsyncClient(url, api_key=api_key, transport=transport, timeout=timeout) as client:
        headers = dict(client.headers)
        token = bearer(headers.get("Authorization"))
        if token:  # the surfaces that read their key from X-API-Key (Statewave) get the same one
            headers["X-API-Key"] = token
        async with httpx.AsyncClient(base_url=client.url, headers=headers, transport=transport,
                                     timeout=timeout) as http:
            yield Link(client, http)


class CallerTransport(httpx.AsyncBaseTransport):
    """Sends each request with exactly the caller's credential (or none) and the caller's request id."""

    def __init__(self, inner: httpx.AsyncBaseTransport, credential: str | None, request_id: str | None):
        self.inner, self.credential, self.request_id = inner, credential, request_id

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers.pop("authorization", None)  # e.g. a STIGMER_API_KEY of the server's own environment
        request.headers.pop("x-api-key", None)
        if self.credential:  # in the header each surface reads: the bearer, X-API-Key for Statewave
            request.headers["Authorization"] = f"Bearer {self.credential}"
            request.headers["X-API-Key"] = self.credential
        if self.request_id:
            request.headers["X-Request-ID"] = self.request_id
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


__all__ = ["CallerTransport", "Link", "StigmerError", "open_link"]
