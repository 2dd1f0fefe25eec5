"""The MCP server over streamable HTTP at /mcp of the real server process, driven by the `mcp` SDK's own
client (ClientSession over streamable_http_client): every tool, keys in force, tenants kept apart."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import httpx
import pytest

from mcp_support import ADMIN, answer, every_tool, failure, make_key, needs_mcp

pytestmark = needs_mcp


@pytest.fixture
def keyed(start_server):
    """A server with keys in force (the bootstrap admin key makes the others)."""
    return start_server(admin_key=ADMIN)


@contextlib.asynccontextmanager
async def mcp_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[object]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30, read=120)) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def test_every_tool_over_http_with_a_key(keyed, ns):
    key = make_key(keyed.url, "team-a", ["read", "write", "watch"])
    async with mcp_session(keyed.url, {"Authorization": f"Bearer {key}"}) as session:
        await every_tool(session, ns)


async def test_x_api_key_and_a_read_only_key(keyed, ns):
    writer = make_key(keyed.url, "team-r", ["read", "write"])
    reader = make_key(keyed.url, "team-r", ["read"])
    async with mcp_session(keyed.url, {"X-API-Key": writer}) as session:
        answer(await session.call_tool("kv_put", {"namespace": ns, "key": "k", "value": 1}))
    async with mcp_session(keyed.url, {"X-API-Key": reader}) as session:
        assert answer(await session.call_tool("kv_get", {"namespace": ns, "key": "k"}))["value"] == 1
        refused = failure(await session.call_tool("kv_put", {"namespace": ns, "key": "k", "value": 2}))
        assert refused.startswith("Error executing tool kv_put: forbidden:") and reader not in refused
        assert "forbidden" in failure(await session.call_tool("kv_incr", {"namespace": ns, "key": "k"}))
        assert "forbidden" in failure(await session.call_tool("lease_acquire", {"resource": "r", "holder": "h"}))
        assert "forbidden" in failure(await session.call_tool("memory_add_episode", {"subject_id": ns,
                                                                                     "payload": {"text": "x"}}))
    r = httpx.get(keyed.url + f"/v1/kv/{ns}/k", headers={"Authorization": f"Bearer {writer}"})
    assert r.json()["value"] == 1  # the refused writes did not happen


async def test_a_key_of_tenant_a_never_sees_tenant_b(keyed, ns):
    a = make_key(keyed.url, "tenant-a", ["read", "write", "watch"])
    b = make_key(keyed.url, "tenant-b", ["read", "write", "watch"])
    async with mcp_session(keyed.url, {"Authorization": f"Bearer {b}"}) as session:
        answer(await session.call_tool("kv_put", {"namespace": ns, "key": "secret", "value": "b's"}))
        conv = answer(await session.call_tool("conversation_create", {
            "messages": [{"role": "user", "content": f"quokka {ns}"}]}))
        answer(await session.call_tool("memory_add_episode", {"subject_id": ns, "payload": {"text": "B lives in Oslo"}}))
        assert answer(await session.call_tool("memory_compile", {"subject_id": ns}))["memories_created"] >= 1
        b_session = answer(await session.call_tool("session_run", {"message": "B's plan"}))["session_id"]
    async with mcp_session(keyed.url, {"Authorization": f"Bearer {a}"}) as session:
        assert "not_found" in failure(await session.call_tool("kv_get", {"namespace": ns, "key": "secret"}))
        assert answer(await session.call_tool("kv_list", {"namespace": ns}))["entries"] == []
        seen = answer(await session.call_tool("watch", {"namespace": ns, "after_revision": 0, "timeout": 0.2}))
        assert seen["events"] == []
        assert "not_found" in failure(await session.call_tool("conversation_get", {"conversation_id": conv["id"]}))
        assert answer(await session.call_tool("conversation_search", {"query": f"quokka {ns}"}))["results"] == []
        assert answer(await session.call_tool("memory_search", {"subject_id": ns}))["memories"] == []
        context = answer(await session.call_tool("memory_context", {"subject_id": ns, "task": "where"}))
        assert "Oslo" not in context["assembled_context"] and context["facts"] == []
        assert "Session not found" in failure(await session.call_tool("session_store", {
            "session_id": b_session, "response": "A was here"}))


async def test_without_a_valid_key_mcp_is_refused(keyed):
    for headers in ({}, {"Authorization": "Bearer stg_wrong"}, {"X-API-Key": "stg_wrong"}):
        r = httpx.post(keyed.url + "/mcp", headers={**headers, "Accept": "application/json, text/event-stream"},
                       json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        body = r.json()
        assert body["jsonrpc"] == "2.0" and body["error"]["data"]["code"] == "unauthenticated"
    from mcp.shared.exceptions import MCPError

    with pytest.raises(BaseExceptionGroup) as raised:  # the SDK client reports the refusal; no session starts
        async with mcp_session(keyed.url, {"Authorization": "Bearer stg_wrong"}):
            pass
    matched, _ = raised.value.split(MCPError)
    assert matched is not None
    errors = []
    pending = [matched]
    while pending:
        e = pending.pop()
        pending.extend(e.exceptions) if isinstance(e, BaseExceptionGroup) else errors.append(e)
    assert [(e.error.message, e.error.data["code"]) for e in errors] == [("missing or invalid API key",
                                                                            "unauthenticated")]


async def test_open_mode_serves_the_tools(shared_server, ns):
    async with mcp_session(shared_server.url) as session:
        put = answer(await session.call_tool("kv_put", {"namespace": ns, "key": "k", "value": [1]}))
        assert put["version"] == 1
    assert httpx.get(shared_server.url + f"/v1/kv/{ns}/k").json()["value"] == [1]
