"""The tenant's namespaces with live key counts (GET /v1/namespaces, the console's Keys view), on both stores."""

from __future__ import annotations

from stigmer.engine.access import Grant, GuardedKV, Principal

T = "t1"


async def test_namespaces_count_live_keys_by_name_within_the_tenant(kv, clock):
    for ns, key in (("b", "x"), ("a", "x"), ("a", "y"), ("a", "z")):
        await kv.put(T, ns, key, 1)
    await kv.put(T, "a", "soon", 1, ttl=5)
    await kv.put("other", "c", "x", 1)
    await kv.delete(T, "b", "x")
    await kv.put(T, "b", "w", 2)
    assert await kv.namespaces(T) == [("a", 4), ("b", 1)]
    clock.advance(6)  # an expired key is not counted, swept or not
    assert await kv.namespaces(T) == [("a", 3), ("b", 1)]
    assert await kv.namespaces("nobody") == []


async def test_ranges_count_only_the_keys_they_cover(kv):
    for key in ("agents/1", "agents/2", "jobs/1"):
        await kv.put(T, "app", key, 1)
    assert await kv.namespaces(T, [("app", "agents/"), ("empty", "")]) == [("app", 2), ("empty", 0)]


async def test_a_key_limited_to_prefixes_sees_its_grants_only_and_statevec_needs_admin(kv):
    for ns, key in (("app", "agents/1"), ("app", "agents/2"), ("app", "jobs/1"), ("secret", "x"), ("statevec", "h")):
        await kv.put(T, ns, key, 1)
    limited = Principal(T, frozenset({"read"}), (Grant("app", "agents/"), Grant("app", "agents/1"), Grant("new")))
    assert await GuardedKV(kv, limited).namespaces() == [("app", 2), ("new", 0)]  # agents/1 inside agents/: once
    reader = Principal(T, frozenset({"read"}))
    assert await GuardedKV(kv, reader).namespaces() == [("app", 3), ("secret", 1)]
    admin = Principal(T, frozenset({"admin"}))
    assert await GuardedKV(kv, admin).namespaces() == [("app", 3), ("secret", 1), ("statevec", 1)]
