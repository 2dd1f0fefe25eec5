"""Concurrent duplicates under one Idempotency-Key run once, against real `stigmer serve` processes: one
server (SQLite, or PostgreSQL under TEST_STORE=postgres), and two replicas sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pg_support import drop_database, new_database, postgres_url
from stigmer.client import AsyncClient, Retry

N = 20


async def _revision(url: str) -> int:
    async with AsyncClient(url) as c:
        return (await c.revision()).revision


async def _all_at_once(urls: list[str], method: str, path: str, key: str, body: dict) -> list[httpx.Response]:
    """N requests on N connections (round-robin over `urls`), released together."""
    clients = [httpx.AsyncClient(base_url=urls[i % len(urls)], timeout=30) for i in range(N)]
    connected: list[int] = []
    go = asyncio.Event()

    async def one(c: httpx.AsyncClient) -> httpx.Response:
        await c.get("/healthz")  # connected before the start, so the requests really overlap
        connected.append(1)
        if len(connected) == N:
            go.set()
        await go.wait()
        return await c.request(method, path, json=body, headers={"Idempotency-Key": key})

    try:
        return await asyncio.gather(*[one(c) for c in clients])
    finally:
        for c in clients:
            await c.aclose()


def _one_answer(responses: list[httpx.Response], status: int) -> None:
    assert {r.status_code for r in responses} == {status}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1, "duplicates got different answers"
    assert sum(r.headers.get("idempotency-replayed") != "true" for r in responses) == 1  # one ran, the rest replayed


async def _incr_once(urls: list[str], ns: str) -> None:
    before = await _revision(urls[0])
    responses = await _all_at_once(urls, "PATCH", f"/v1/kv/{ns}/n", "incr-1", {"op": "incr", "amount": 1})
    _one_answer(responses, 201)
    assert responses[0].json()["value"] == 1
    assert await _revision(urls[0]) == before + 1  # one write, one revision


async def _acquire_once_while_waiting(urls: list[str], ns: str) -> None:
    """The first keyed acquire waits for a held lease to expire; its duplicates wait for it, then replay."""
    resource = f"{ns}/job"
    async with AsyncClient(urls[0]) as c:
        held = await c.acquire_lease(resource, "holder", ttl=0.5)
    responses = await _all_at_once(urls, "POST", f"/v1/leases/{resource}", "acquire-1", {"holder": "w", "wait": 5})
    _one_answer(responses, 201)
    assert responses[0].json()["fencing_token"] == held.fencing_token + 1
    async with AsyncClient(urls[-1]) as c:
        assert (await c.get_lease(resource)).fencing_token == held.fencing_token + 1  # acquired once


async def test_twenty_concurrent_duplicates_run_once_on_one_server(shared_server, ns):
    await _incr_once([shared_server.url], ns)
    await _acquire_once_while_waiting([shared_server.url], ns)


async def test_the_sdk_sends_the_key_and_retries_safely_with_it(shared_server, ns):
    async with AsyncClient(shared_server.url, retry=Retry(retries=3)) as c:
        entries = await asyncio.gather(*[c.incr(ns, "sdk", 2, idempotency_key="sdk-1") for _ in range(N)])
        assert {(e.value, e.version, e.mod_revision) for e in entries} == {(2, 1, entries[0].mod_revision)}
        assert (await c.get(ns, "sdk")).value == 2


@pytest.fixture
def two_replicas(make_server, tmp_path):
    """Two servers on one PostgreSQL database of their own (skips, or fails in CI, without PostgreSQL)."""
    postgres_url()
    name = f"stigmer_idem_{tmp_path.name}".lower()[:60]
    url = new_database(name)
    servers = [make_server(database_url=url).start() for _ in range(2)]
    yield servers
    for s in servers:
        s.kill()
    drop_database(name)


async def test_twenty_concurrent_duplicates_run_once_across_two_replicas(two_replicas, ns):
    urls = [s.url for s in two_replicas]
    await _incr_once(urls, ns)
    await _acquire_once_while_waiting(urls, ns)
