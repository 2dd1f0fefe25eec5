"""Concurrent clients on one key: atomic increments and compare-and-set with exactly one winner."""

from __future__ import annotations

import asyncio

import pytest

from stigmer.client import AsyncClient, Client, VersionConflictError


async def test_fifty_concurrent_increments(server, ns):
    async with AsyncClient(server.url) as c:
        results = await asyncio.gather(*(c.incr(ns, "counter") for _ in range(50)))
        assert sorted(e.value for e in results) == list(range(1, 51))
        assert sorted(e.version for e in results) == list(range(1, 51))
        assert len({e.mod_revision for e in results}) == 50
        assert (await c.get(ns, "counter")).value == 50


async def test_twenty_concurrent_compare_and_sets_have_one_winner(server, ns):
    async with AsyncClient(server.url) as c:
        base = await c.put(ns, "lock", {"owner": None})
        outcomes = await asyncio.gather(
            *(c.put(ns, "lock", {"owner": i}, if_version=base.version) for i in range(20)), return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1 and winners[0].version == 2
    assert len(losers) == 19 and all(isinstance(e, VersionConflictError) for e in losers)
    assert all(e.current_version == 2 for e in losers)
    with Client(server.url) as sync:
        assert sync.get(ns, "lock").value == winners[0].value


def test_concurrent_create_only_has_one_winner(server, ns):
    from concurrent.futures import ThreadPoolExecutor

    with Client(server.url) as c, ThreadPoolExecutor(10) as pool:
        def attempt(i):
            try:
                return c.put(ns, "leader", i, create_only=True)
            except VersionConflictError:
                return None
        results = list(pool.map(attempt, range(10)))
    assert sum(r is not None for r in results) == 1


@pytest.mark.parametrize("n", [30])
async def test_concurrent_appends_keep_every_item(server, ns, n):
    async with AsyncClient(server.url) as c:
        await asyncio.gather(*(c.append(ns, "log", i) for i in range(n)))
        assert sorted((await c.get(ns, "log")).value) == list(range(n))
