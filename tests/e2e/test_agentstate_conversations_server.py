"""AgentState conversations against the real server process over real HTTP: concurrent appends lose no message
and no count, one of many concurrent creates with one external_id wins, acknowledged messages survive kill -9,
and replicas over one PostgreSQL database serve (and search) one another's conversations."""

from __future__ import annotations

import asyncio

import httpx
import pytest

V1 = "/api/v1"


@pytest.fixture
def server(make_server):
    return make_server(agentstate_rate_limit="1000000").start()


def say(*contents):
    return [{"role": "user", "content": text, "token_count": 1, "input_tokens": 1, "cost_microdollars": 2}
            for text in contents]


async def _append_concurrently(urls: list[str], cid: str, requests: int, per_request: int) -> list[list[str]]:
    """`requests` appends spread over the servers at once; the ids each request was given, in its order."""
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
    try:
        async def one(i: int) -> list[str]:
            c = clients[i % len(clients)]
            r = await c.post(f"{V1}/conversations/{cid}/messages",
                             json={"messages": say(*[f"r{i} m{j}" for j in range(per_request)])})
            assert r.status_code == 201, r.text
            return [m["id"] for m in r.json()["messages"]]
        return await asyncio.gather(*(one(i) for i in range(requests)))
    finally:
        for c in clients:
            await c.aclose()


def _all_messages(url: str, cid: str) -> list[dict]:
    out, after = [], None
    with httpx.Client(base_url=url, timeout=30) as c:
        while True:
            page = c.get(f"{V1}/conversations/{cid}/messages", params={"limit": 500, **({"after": after} if after else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            out += body["data"]
            after = body["pagination"]["next_cursor"]
            if after is None:
                return out


def _check(url: str, cid: str, given: list[list[str]], before: int) -> None:
    messages = _all_messages(url, cid)
    total = before + sum(len(ids) for ids in given)
    assert len(messages) == total and len({m["id"] for m in messages}) == total
    position = {m["id"]: i for i, m in enumerate(messages)}
    for ids in given:  # each request's messages are contiguous, in its order
        assert [position[i] for i in ids] == list(range(position[ids[0]], position[ids[0]] + len(ids)))
    got = httpx.get(f"{url}{V1}/conversations/{cid}?fields=!messages").json()
    assert (got["message_count"], got["token_count"], got["total_tokens"], got["total_cost_microdollars"]) == (
        total, total, total, 2 * total)


def test_concurrent_appends_lose_nothing_and_a_kill_keeps_what_was_acknowledged(server):
    cid = httpx.post(f"{server.url}{V1}/conversations", json={"messages": say("first")}).json()["id"]
    given = asyncio.run(_append_concurrently([server.url], cid, 40, 5))
    _check(server.url, cid, given, 1)
    server.kill()  # SIGKILL: no shutdown hook runs
    server.start()
    _check(server.url, cid, given, 1)


def test_one_of_many_concurrent_creates_with_one_external_id_wins(server):
    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            async def one(i: int) -> int:
                r = await c.post(f"{V1}/conversations", json={"external_id": "run-7", "messages": say(f"from {i}")})
                return r.status_code
            return await asyncio.gather(*(one(i) for i in range(20)))
    statuses = asyncio.run(run())
    assert sorted(statuses) == [201] + [409] * 19
    only = httpx.get(f"{server.url}{V1}/conversations/by-external-id/run-7").json()
    assert only["message_count"] == 1 and len(httpx.get(f"{server.url}{V1}/conversations").json()["data"]) == 1


def test_replicas_serve_one_anothers_conversations(replicas):
    urls = [r.url for r in replicas]
    created = httpx.post(f"{urls[0]}{V1}/conversations", json={"external_id": "shared", "messages": say("hello")})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    given = asyncio.run(_append_concurrently(urls, cid, 30, 3))
    for url in urls:
        _check(url, cid, given, 1)
    assert httpx.post(f"{urls[2]}{V1}/conversations", json={"external_id": "shared"}).status_code == 409
    for url in urls:  # what one replica wrote, every replica finds
        hits = httpx.get(f"{url}{V1}/conversations/search", params={"q": "r29 m2"}).json()["data"]
        assert [h["id"] for h in hits] == [cid] and hits[0]["snippet"] == "r29 m2"
    assert httpx.post(f"{urls[1]}{V1}/conversations/{cid}/tags", json={"tags": ["t"]}).status_code == 201
    assert httpx.get(f"{urls[2]}{V1}/conversations?tag=t").json()["data"][0]["id"] == cid
    assert httpx.delete(f"{urls[2]}{V1}/conversations/{cid}").status_code == 204
    assert httpx.get(f"{urls[0]}{V1}/conversations/{cid}").status_code == 404
