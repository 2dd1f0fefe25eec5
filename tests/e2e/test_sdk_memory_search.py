"""The SDK's `search_memories` (both faces) against the real server's memory runtime: compiled memories of a
subject, ranked by words or newest first, scoped by the Statewave tenant, the key sent as X-API-Key, and a bad
limit answered as a clear error."""

from __future__ import annotations

import httpx
import pytest

from crewai_support import keys_create
from server_process import ServerProcess
from stigmer.client import AsyncClient, Client, Memory, StigmerError, UnauthenticatedError


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    data = tmp_path_factory.mktemp("sdk-memory") / "data"
    key, other = keys_create(data, "team-a", "read,write"), keys_create(data, "team-b", "read,write")
    s = ServerProcess(data).start()
    s.key, s.other = key, other
    with httpx.Client(base_url=s.url, headers={"X-API-Key": key}) as h:
        for text, tenant in (("I work at Initech", None), ("I use vim daily", None), ("I work at Globex", "acme")):
            headers = {"X-Tenant-ID": tenant} if tenant else {}
            assert h.post("/v1/episodes", headers=headers, json={
                "subject_id": "user-42", "source": "chat", "type": "note", "payload": {"text": text}}).status_code == 201
        assert h.post("/v1/memories/compile", json={"subject_id": "user-42"}).status_code == 200
    yield s
    s.kill()


def test_search_ranks_scopes_and_limits(srv):
    with Client(srv.url, api_key=srv.key) as c:
        found = c.search_memories("user-42", q="Initech")
        assert found and all(isinstance(m, Memory) and "Initech" in m.content for m in found)
        assert all(m.status == "active" and m.subject_id == "user-42" for m in found)
        newest = c.search_memories("user-42", limit=2)
        assert len(newest) == 2
        assert [m.created_at for m in newest] == sorted((m.created_at for m in newest), reverse=True)
        assert {m.kind for m in c.search_memories("user-42", kind="episode_summary")} == {"episode_summary"}
        acme = c.search_memories("user-42", q="work", tenant_id="acme")
        assert acme and all("Globex" in m.content for m in acme)  # the Statewave tenant sees only its own rows
        with pytest.raises(StigmerError) as bad:
            c.search_memories("user-42", limit=0)
        assert bad.value.status == 422
    with Client(srv.url, api_key=srv.other) as b:
        assert b.search_memories("user-42", q="Initech") == []  # another Stigmer tenant sees nothing
    with Client(srv.url) as anonymous, pytest.raises(UnauthenticatedError):
        anonymous.search_memories("user-42")


async def test_the_async_face_matches(srv):
    async with AsyncClient(srv.url, api_key=srv.key) as ac:
        with Client(srv.url, api_key=srv.key) as c:
            assert await ac.search_memories("user-42", q="vim") == c.search_memories("user-42", q="vim")
        assert await ac.search_memories("nobody") == []
