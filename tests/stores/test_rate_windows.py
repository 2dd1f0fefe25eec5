"""Rate-limit windows in the store (Statewave §6.11 `distributed`) on both stores: exact counts per window
under concurrency, shared by replicas, old windows purged, and failing open when the store is gone."""

from __future__ import annotations

import asyncio

from stigmer.support.ratelimit import StoreWindows


async def test_counts_windows_and_retry_after(store, clock):
    clock.set(1_795_459_980.0 + 20)  # 20 s into a UTC minute
    limiter = StoreWindows(store, clock.now)
    decisions = await asyncio.gather(*(limiter.hit("ip:a", 5) for _ in range(8)))
    assert sorted(d.allowed for d in decisions) == [False] * 3 + [True] * 5  # exact under concurrency
    assert {d.retry_after for d in decisions if not d.allowed} == {40}  # to the end of the window
    assert (await limiter.hit("ip:b", 5)).allowed  # buckets are apart
    clock.advance(40)  # the next UTC minute
    assert (await limiter.hit("ip:a", 5)).allowed


async def test_shared_by_replicas_and_purged(open_store, store_kind, clock):
    one, two = await open_store(), (await open_store() if store_kind == "postgres" else None)
    a = StoreWindows(one, clock.now)
    b = StoreWindows(two or one, clock.now)
    assert [(await a.hit("ip:x", 2)).allowed, (await b.hit("ip:x", 2)).allowed, (await a.hit("ip:x", 2)).allowed] == [
        True, True, False]
    clock.advance(6 * 60)
    assert (await b.hit("ip:x", 2)).allowed  # a new window; and b purges the old one on its first hit
    assert await one.rate_windows.hit("ip:x", int(clock.now() // 60) * 60 - 360, None) == 1  # it was gone


async def test_fails_open(open_store, clock):
    store = await open_store()
    limiter = StoreWindows(store, clock.now)
    assert (await limiter.hit("ip:a", 1)).allowed and not (await limiter.hit("ip:a", 1)).allowed
    await store.close()
    assert (await limiter.hit("ip:a", 1)).allowed  # the store errs: the request goes through
