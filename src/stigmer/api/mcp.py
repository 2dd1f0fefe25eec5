"""The MCP front door: the MCP server (integrations/mcp) over streamable HTTP at `/mcp`, behind the edge.

`/mcp` is a surface of its own at the edge: its credential is `Authorization: Bearer` or else `X-API-Key`
(exactly one is looked at: the bearer when both are sent), a request without a valid key is refused with
401 once keys exist, and its errors are JSON-RPC error objects. It charges no rate limit itself: each tool
call is one or more native requests, charged there to the same key. A tool acts through the SDK client on
an in-process transport into this very app, carrying the MCP request's own credential, client address and
request id, so it passes the edge again as the caller and gets exactly what the caller's key allows.

The transport is stateless (a fresh MCP session per POST, no `Mcp-Session-Id`, JSON answers rather than SSE):
any replica can answer any request. Without the `mcp` package the path answers 503 `mcp_unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from typing import Any, AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..config import Settings
from .http import json_response
from .kit.cors import Cors
from .kit.errors import Problem
from .kit.surface import Surface, bearer, header

PATH = "/mcp"
MAX_BODY = 10 * 1024 * 1024  # as the native conversation and claim routes
INTERNAL_BASE = "http://127.0.0.1"  # a loopback name, so that open mode's Host check passes the tools' requests
ALLOW = "POST, OPTIONS"
UNAVAILABLE = "the MCP server needs the mcp package on the server: pip install 'stigmer[mcp]'"


def credential(scope: Scope) -> str | None:
    """The one credential of an MCP request: the bearer token, else the `X-API-Key` header."""
    return bearer(header(scope, b"authorization")) or (header(scope, b"x-api-key") or "").strip() or None


def render(request: Request, p: Problem) -> Response:
    """A JSON-RPC error object (no request id: the request was refused before it was read)."""
    rid = request.scope.get("state", {}).get("request_id", "")
    data: dict[str, Any] = {"code": p.code, "status": p.status, "request_id": rid}
    if p.details:
        data["details"] = p.details
    body = {"jsonrpc": "2.0", "id": None,
            "error": {"code": -32603 if p.status >= 500 else -32600, "message": p.message, "data": data}}
    return json_response(body, p.status, {**p.headers, "X-Request-ID": rid})


def cors(settings: Settings) -> Cors:
    return Cors(settings.cors_origins, expose="Mcp-Session-Id, X-Request-ID", methods=ALLOW,
                headers="Authorization, X-API-Key, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, "
                        "Last-Event-ID")


_ID = {"type": ["string", "integer", "null"]}
REQUEST = {"type": "object", "required": ["jsonrpc", "method"], "properties": {
    "jsonrpc": {"const": "2.0"}, "id": _ID, "method": {"type": "string", "examples": ["tools/list", "tools/call"]},
    "params": {"type": "object", "examples": [{"name": "kv_get", "arguments": {"namespace": "app", "key": "k"}}]}}}
RESPONSE = {"type": "object", "properties": {"jsonrpc": {"const": "2.0"}, "id": _ID, "result": {"type": "object"}}}
ERROR = {"type": "object", "properties": {"jsonrpc": {"const": "2.0"}, "id": _ID, "error": {
    "type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                                     "data": {"type": "object"}}}}}


def openapi() -> dict:
    from .reference.openapi import BEARER, Operation, document

    op = Operation("post", PATH, "An MCP JSON-RPC request: initialize, tools/list, tools/call (the tools: "
                   "docs/integrations.md)", body=REQUEST, response=RESPONSE)
    return document("MCP (streamable HTTP, stateless)", "2.3.0", [op], BEARER, ERROR, description=(
        "The Model Context Protocol over streamable HTTP. The key goes in Authorization: Bearer, or else "
        "X-API-Key; every tool acts with exactly that key."))


def surface(settings: Settings) -> Surface:
    return Surface("mcp", (PATH,), render, lambda scope: [credential(scope)], cors(settings), openapi=openapi)


def caller_link(request: Request) -> contextlib.AbstractAsyncContextManager[Any]:
    """The `Link` a tool serving this MCP request acts through (see the module's docstring)."""
    from ..integrations.mcp.link import CallerTransport, open_link

    state = request.scope.get("state", {})
    inner = httpx.ASGITransport(app=request.app, client=(state.get("client_ip") or "127.0.0.1", 0),
                                raise_app_exceptions=False)
    transport = CallerTransport(inner, credential(request.scope), state.get("request_id"))
    return open_link(INTERNAL_BASE, transport=transport, timeout=90.0)  # outlasts a 60 s watch or lease wait


def check_post(scope: Scope) -> None:
    """What the SDK would refuse in plain text, refused here in the surface's shape."""
    kind = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, "unsupported_media_type", "an MCP request is JSON: send Content-Type: application/json")
    length = header(scope, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > MAX_BODY:
        raise Problem(413, "payload_too_large", f"the request body is larger than {MAX_BODY} bytes",
                      {"limit": MAX_BODY})


class Mount:
    """The `/mcp` route, and its SDK session manager, which runs inside the app's lifespan (`running`).

    The `mcp` SDK is imported and the server built on the first `/mcp` request, not at start-up: the import
    costs about a second of CPU that a server nobody asks for MCP should not pay.
    """

    def __init__(self, settings: Settings) -> None:
        self.cors = cors(settings)
        self.available = importlib.util.find_spec("mcp") is not None
        self.routes = [Route(PATH, endpoint=self)]
        self._handler: Any = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._open = False  # between the lifespan's start and end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":  # a browser's preflight (the edge added the CORS headers)
            extra = self.cors.preflight(header(scope, b"access-control-request-headers")) if self.cors.enabled else {}
            await Response(status_code=204, headers={"Allow": ALLOW, **extra})(scope, receive, send)
            return
        if method != "POST":  # stateless: no GET stream (it would stay open with nothing to say), no session to DELETE
            raise Problem(405, "method_not_allowed", f"{method} is not served: MCP requests are POSTs to /mcp",
                          headers={"Allow": ALLOW})
        check_post(scope)
        if not self.available:
            raise Problem(503, "mcp_unavailable", UNAVAILABLE)
        handler = self._handler or await self._start()
        await handler(scope, receive, send)

    async def _start(self) -> Any:
        async with self._lock:
            if self._handler is not None:
                return self._handler
            if not self._open:
                raise Problem(503, "unavailable", "the server is not running (starting or shutting down)")
            from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
            from mcp.server.transport_security import TransportSecuritySettings

            from ..integrations.mcp.server import build_server

            @contextlib.asynccontextmanager
            async def links(ctx: Any) -> AsyncIterator[Any]:
                async with caller_link(ctx.request_context.request) as link:
                    yield link

            server = build_server(links)
            # The edge checks Host (open mode) and cross-site Origins for every surface; the SDK's own check
            # would refuse names the operator allowed (STIGMER_ALLOWED_HOSTS).
            server.streamable_http_app(streamable_http_path=PATH, json_response=True, stateless_http=True,
                                       max_request_body_size=MAX_BODY, transport_security=TransportSecuritySettings(
                                           enable_dns_rebinding_protection=False))
            manager = server.session_manager
            started = asyncio.Event()

            async def run() -> None:  # the manager's task group lives (and ends) in this one task
                async with manager.run():
                    started.set()
                    await self._stop.wait()

            self._task = asyncio.create_task(run())
            waiting = asyncio.create_task(started.wait())
            await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if not started.is_set():
                self._task.result()  # raises what stopped it
            self._handler = StreamableHTTPASGIApp(manager)
            return self._handler

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._open = True
        try:
            yield
        finally:
            self._open = False
            self._stop.set()
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
