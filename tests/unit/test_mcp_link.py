"""The link's two rules: every request carries exactly the caller's credential (never one of the process's
own), and another surface's error answer becomes a StigmerError with that surface's message."""

from __future__ import annotations

import httpx
import pytest

from mcp_support import needs_mcp
from stigmer.client import NotFoundError, StigmerError

pytestmark = needs_mcp


REVISION = b'{"revision": 1, "compacted_revision": 0}'


def recorder(seen: list[httpx.Request], status: int = 200, body: bytes = REVISION):
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})
    return httpx.MockTransport(handle)


@pytest.mark.parametrize("credential", ["stg_caller", None])
async def test_the_caller_credential_replaces_any_other(monkeypatch, credential):
    from stigmer.integrations.mcp.link import CallerTransport, open_link

    monkeypatch.setenv("STIGMER_API_KEY", "stg_the_servers_own")  # what the SDK client would pick up
    seen: list[httpx.Request] = []
    transport = CallerTransport(recorder(seen), credential, "rid-1")
    async with open_link("http://127.0.0.1", transport=transport) as link:
        await link.client.revision()
        await link.get_json("/api/v1/x", {})
    for request in seen:
        assert request.headers.get("authorization") == (f"Bearer {credential}" if credential else None)
        assert request.headers.get("x-api-key") == credential
        assert request.headers["x-request-id"] == "rid-1"


async def test_a_stdio_link_sends_its_key_in_both_headers():
    from stigmer.integrations.mcp.link import open_link

    seen: list[httpx.Request] = []
    async with open_link("http://127.0.0.1", api_key="stg_k", transport=recorder(seen)) as link:
        await link.post_json("/v1/episodes", {"a": 1})
    assert seen[0].headers["authorization"] == "Bearer stg_k" and seen[0].headers["x-api-key"] == "stg_k"


@pytest.mark.parametrize(("status", "body", "cls", "message"), [
    (404, b'{"detail":"Session not found"}', NotFoundError, "Session not found"),
    (422, b'{"detail":[{"loc":["body","x"],"msg":"Field required"}]}', StigmerError,
     '[{"loc":["body","x"],"msg":"Field required"}]'),
    (404, b'{"error":{"code":"not_found","message":"Job not found or expired"}}', NotFoundError,
     "Job not found or expired"),
])
async def test_other_surfaces_errors(status, body, cls, message):
    from stigmer.integrations.mcp.link import open_link

    async with open_link("http://127.0.0.1", transport=recorder([], status, body)) as link:
        with pytest.raises(cls) as raised:
            await link.get_json("/v1/x", {})
    assert raised.value.message == message and raised.value.status == status
