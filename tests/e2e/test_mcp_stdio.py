"""`stigmer mcp` over stdio, launched by the `mcp` SDK's own stdio client against the real server process:
every tool, a version conflict, a read-only key refused on writes, a missing key refused."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

from mcp_support import ADMIN, answer, every_tool, failure, make_key, needs_mcp

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_without_the_mcp_package_the_command_says_what_to_install():
    blocked = "import sys; sys.modules['mcp'] = None; sys.argv = ['stigmer', 'mcp']; from stigmer.cli import main; main()"
    p = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert p.returncode == 1 and "pip install 'stigmer[mcp]'" in p.stderr and p.stdout == "", p.stderr


@pytest.fixture
def keyed(start_server):
    return start_server(admin_key=ADMIN)


@contextlib.asynccontextmanager
async def stdio_session(url: str, api_key: str | None = None, *args: str) -> AsyncIterator[object]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {"PYTHONPATH": SRC, "STIGMER_URL": url}  # the URL from the environment, the key from either
    if api_key is not None:
        env["STIGMER_API_KEY"] = api_key
    params = StdioServerParameters(command=sys.executable, args=["-m", "stigmer.cli", "mcp", *args], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "stigmer" and init.instructions
            yield session


@needs_mcp
async def test_every_tool_over_stdio(keyed, ns):
    key = make_key(keyed.url, "team-s", ["read", "write", "watch"])
    async with stdio_session(keyed.url, key) as session:
        await every_tool(session, ns)


@needs_mcp
async def test_a_read_only_key_is_refused_on_writes(keyed, ns):
    writer = make_key(keyed.url, "team-ro", ["read", "write"])
    reader = make_key(keyed.url, "team-ro", ["read"])
    async with stdio_session(keyed.url, None, "--api-key", writer, "--url", keyed.url) as session:
        answer(await session.call_tool("kv_put", {"namespace": ns, "key": "k", "value": "w"}))
    async with stdio_session(keyed.url, reader) as session:
        assert answer(await session.call_tool("kv_get", {"namespace": ns, "key": "k"}))["value"] == "w"
        for tool, args in (("kv_put", {"namespace": ns, "key": "k", "value": "r"}),
                           ("kv_merge", {"namespace": ns, "key": "k", "value": {"a": 1}}),
                           ("txn", {"ops": [{"op": "delete", "namespace": ns, "key": "k"}]}),
                           ("conversation_create", {"title": "x"}),
                           ("memory_add_episode", {"subject_id": ns, "payload": {"text": "x"}}),
                           ("session_run", {"message": "x"})):
            refused = failure(await session.call_tool(tool, args))
            assert "forbidden" in refused and reader not in refused and "Traceback" not in refused, refused
        assert answer(await session.call_tool("kv_get", {"namespace": ns, "key": "k"}))["value"] == "w"


@needs_mcp
async def test_without_a_key_every_call_is_unauthenticated(keyed, ns):
    async with stdio_session(keyed.url) as session:
        assert len((await session.list_tools()).tools) == 24
        refused = failure(await session.call_tool("kv_get", {"namespace": ns, "key": "k"}))
        assert "unauthenticated" in refused


@needs_mcp
async def test_an_unreachable_server_is_a_tool_error(ns):
    from local_http import free_port

    async with stdio_session(f"http://127.0.0.1:{free_port()}") as session:
        refused = failure(await session.call_tool("kv_get", {"namespace": ns, "key": "k"}))
        assert "unavailable" in refused
