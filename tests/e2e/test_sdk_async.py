"""The asyncio SDK against the real server: every method, and an async watch."""

from __future__ import annotations

import asyncio

import pytest

from stigmer.client import (
    AsyncClient, Compare, CompareFailedError, Deleted, InvalidArgumentError, NotFoundError, Op, PatchFailedError,
    VersionConflictError,
)


@pytest.fixture
async def client(shared_server):
    async with AsyncClient(shared_server.url) as c:
        yield c


async def test_key_operations(client, ns):
    e = await client.put(ns, "k/1", {"a": 1}, ttl=60)
    assert e.version == 1 and e.value == {"a": 1} and e.expires_at is not None
    assert (await client.get(ns, "k/1")).value == {"a": 1}
    with pytest.raises(VersionConflictError):
        await client.put(ns, "k/1", 0, create_only=True)
    assert (await client.put(ns, "k/1", {"a": 2}, if_version=1)).version == 2
    assert (await client.incr(ns, "k/1", 5, field="a")).value == {"a": 7}
    assert (await client.merge(ns, "k/1", {"b": {"c": 1}}, deep=True)).value == {"a": 7, "b": {"c": 1}}
    assert (await client.append(ns, "log", "x", max_items=1)).value == ["x"]
    assert (await client.append(ns, "log", "y", max_items=1)).value == ["y"]
    p = await client.patch(ns, "k/1", [{"op": "replace", "path": "/a", "value": 0}])
    assert p.value == {"a": 0, "b": {"c": 1}}
    with pytest.raises(PatchFailedError):
        await client.patch(ns, "k/1", [{"op": "remove", "path": "/nope"}])
    d = await client.delete(ns, "log")
    assert isinstance(d, Deleted) and d.version == 2
    with pytest.raises(NotFoundError):
        await client.get(ns, "log")


async def test_reads(client, ns):
    for i in range(5):
        await client.put(ns, f"r/{i}", i)
    assert [e and e.value for e in await client.batch_get(ns, ["r/4", "r/9"])] == [4, None]
    page = await client.list_page(ns, limit=2)
    assert len(page.entries) == 2 and page.next_cursor
    after = await client.list_page(ns, prefix="r/", start_after="r/2", limit=1)
    assert [e.key for e in after.entries] == ["r/3"] and after.next_cursor
    assert [e.value async for e in client.list(ns, prefix="r/", page_size=2)] == [0, 1, 2, 3, 4]
    h = await client.history(ns, "r/0")
    assert [c.value for c in h.history] == [0] and h.next_before is None
    rev = await client.revision()
    assert rev.revision >= 5
    polled = await client.poll(index=rev.revision - 1, namespace=ns, wait=1)
    assert [cs.revision for cs in polled.events] == [rev.revision]
    with pytest.raises(InvalidArgumentError):
        await client.batch_get(ns, [])


async def test_txn(client, ns):
    r = await client.txn([Compare(ns, "t", version=0)], [Op("put", ns, "t", value=1), Op("put", ns, "u", value=2)])
    assert [x.version for x in r.results] == [1, 1]
    with pytest.raises(CompareFailedError):
        await client.txn([Compare(ns, "t", exists=False)], [Op("put", ns, "t", value=3)])
    assert (await client.get(ns, "t")).value == 1


async def test_async_watch(client, ns, shared_server):
    start = (await client.put(ns, "a", 0)).mod_revision
    got = []

    async def consume():
        async with AsyncClient(shared_server.url) as c:
            async for cs in c.watch(ns, key="a", from_revision=start, prev_value=True):
                got.append((cs.revision, cs.changes[0].value, cs.changes[0].prev_value))
                if len(got) == 3:
                    return

    task = asyncio.create_task(consume())
    await client.put(ns, "b", "ignored")
    r1 = (await client.put(ns, "a", 1)).mod_revision
    r2 = (await client.put(ns, "a", 2)).mod_revision
    await asyncio.wait_for(task, 20)
    assert got == [(start, 0, None), (r1, 1, 0), (r2, 2, 1)]
