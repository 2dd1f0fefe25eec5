"""`stigmer mcp`: the MCP server over stdio, for desktop clients, acting through one SDK client.

The client talks to the server at `url` with `api_key` (the CLI's `--api-key` or STIGMER_API_KEY): every
tool call is a request with that key, so the MCP client gets exactly what the key allows.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import AsyncIterator

import anyio

from .link import Link, open_link
from .server import build_server


async def serve(url: str, api_key: str | None) -> None:
    async with open_link(url, api_key=api_key) as link:
        @contextlib.asynccontextmanager
        async def links(_ctx: object) -> AsyncIterator[Link]:
            yield link

        await build_server(links).run_stdio_async()


def run(url: str, api_key: str | None) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # stdout carries the protocol only
    anyio.run(serve, url, api_key)
