import asyncio

import pytest

from stigmer.engine import maintenance
from stigmer.engine.errors import CompareFailed, InvalidArgument, NotFound, PatchFailed, TypeMismatch, ValueTooLarge, VersionConflict
from stigmer.engine.kv import KEEP, Compare, Deleted, Op

T = "t1"


async def test_versions_revisions_and_timestamps(kv, store):
    e1 = await kv.put(T, "ns", "a", {"x": 1})
    assert (e1.version, e1.create_rev, e1.mod_rev) == (1, 1, 1)
    e2 = await kv.put(T, "ns", "a", {"x": 2})
    assert (e2.version, e2.create_rev, e2.mod_rev) == (2, 1, 2)
    assert e2.created_at == e1.created_at and e2.updated_at >= e1.updated_at
    d = await kv.delete(T, "ns", "a")
    assert isinstance(d, Deleted) and d.revision == 3 and d.previous.version == 2
    e3 = await kv.put(T, "ns", "a", 1)
    assert (e3.version, e3.create_rev) == (1, 4)
    assert (await store.log.revision(T)).current == 4
    assert (await store.log.revision("other")).current == 0  # revisions are per tenant


async def test_get_returns_exact_bytes_and_none_when_absent(kv):
    await kv.put(T, "ns", "k", {"b": 1, "a": [1.0, 2]})
    assert (await kv.get(T, "ns", "k")).value == b'{"b":1,"a":[1.0,2]}'
    assert await kv.get(T, "ns", "missing") is None
    assert await kv.get("other-tenant", "ns", "k") is None


async def test_compare_and_set_and_create_only(kv):
    await kv.put(T, "ns", "k", 1, expect_version=0)
    with pytest.raises(VersionConflict) as e:
        await kv.put(T, "ns", "k", 2, expect_version=0)
    assert e.value.current_version == 1
    await kv.put(T, "ns", "k", 2, expect_version=1)
    with pytest.raises(VersionConflict):
        await kv.put(T, "ns", "k", 3, expect_version=1)
    with pytest.raises(VersionConflict) as e:
        await kv.delete(T, "ns", "k", expect_version=5)
    assert e.value.current_version == 2


async def test_failed_mutation_changes_nothing_and_takes_no_revision(kv, store):
    await kv.put(T, "ns", "s", "text")
    before = (await store.log.revision(T)).current
    with pytest.raises(TypeMismatch):
        await kv.incr(T, "ns", "s", 1)
    with pytest.raises(NotFound):
        await kv.delete(T, "ns", "nope")
    with pytest.raises(PatchFailed):
        await kv.apply(T, Op("patch", "ns", "s", patch=[{"op": "test", "path": "", "value": "other"}]))
    assert (await store.log.revision(T)).current == before
    assert (await kv.get(T, "ns", "s")).version == 1


async def test_concurrent_increments_are_all_counted(kv):
    results = await asyncio.gather(*[kv.incr(T, "ns", "n", 1) for _ in range(50)])
    assert (await kv.get(T, "ns", "n")).value == b"50"
    assert sorted(int(r.value) for r in results) == list(range(1, 51))


async def test_concurrent_cas_has_one_winner(kv):
    await kv.put(T, "ns", "c", 0)
    outcomes = await asyncio.gather(*[kv.put(T, "ns", "c", i, expect_version=1) for i in range(20)],
                                    return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, VersionConflict) for o in outcomes if isinstance(o, Exception))


async def test_limits(kv):
    with pytest.raises(ValueTooLarge):
        await kv.put(T, "ns", "big", "x" * 5000)
    with pytest.raises(InvalidArgument):
        await kv.put(T, "ns", "k" * 1025, 1)
    with pytest.raises(InvalidArgument):
        await kv.put(T, "bad/ns", "k", 1)
    with pytest.raises(InvalidArgument):
        await kv.put(T, "ns", "", 1)
    with pytest.raises(InvalidArgument):
        await kv.get_many(T, "ns", [f"k{i}" for i in range(11)])
    with pytest.raises(ValueTooLarge):  # a merge result over the limit is refused too
        await kv.put(T, "ns", "m", {"a": "x" * 3000})
        await kv.merge(T, "ns", "m", {"b": "y" * 3000})


async def test_ttl_expiry_is_exact_for_reads_and_emits_expire(kv, store, hub, clock):
    from stigmer.engine.types import ChangeFilter

    w = await hub.watch(ChangeFilter(T, "ns"))
    e = await kv.put(T, "ns", "t", 1, ttl=50)
    assert e.expires_at == clock.now() + 50  # the store's clock, shared with the engine
    clock.advance(49.999)
    assert await kv.get(T, "ns", "t") is not None
    assert await maintenance.sweep_once(store) == 0
    clock.advance(0.001)
    assert await kv.get(T, "ns", "t") is None  # expired before any sweep
    rows, _ = await kv.list(T, "ns")
    assert rows == []
    assert await maintenance.sweep_once(store) == 1
    put = await w.next(1)
    exp = await w.next(1)
    assert [c.type for c in put.changes] == ["put"]
    assert [c.type for c in exp.changes] == ["expire"] and exp.changes[0].prev_value == b"1"


async def test_write_to_expired_key_records_expire_first_then_starts_fresh(kv, hub, clock):
    from stigmer.engine.types import ChangeFilter

    await kv.put(T, "ns", "t", [1, 2], ttl=5)
    w = await hub.watch(ChangeFilter(T, "ns", key="t"))
    clock.advance(5)
    e = await kv.append(T, "ns", "t", 3)
    assert e.value == b"[3]" and e.version == 1  # the old value never comes back
    first, second = await w.next(1), await w.next(1)
    assert first.changes[0].type == "expire" and second.changes[0].type == "put"
    assert second.revision == first.revision + 1


async def test_ttl_keep_and_clear(kv):
    e = await kv.put(T, "ns", "k", 1, ttl=100)
    assert e.expires_at == pytest.approx(e.updated_at + 100)
    e = await kv.incr(T, "ns", "k", 1)  # read-modify-write keeps the expiry by default
    assert e.expires_at is not None
    e = await kv.put(T, "ns", "k", 1)  # a put without ttl clears it
    assert e.expires_at is None
    e = await kv.incr(T, "ns", "k", 1, ttl=KEEP)
    assert e.expires_at is None


async def test_list_prefix_pagination_and_byte_order(kv):
    for k in ["b", "Z", "_", "a", "aa", "a/1", "a/2", "é"]:
        await kv.put(T, "ns", k, k)
    rows, nxt = await kv.list(T, "ns", limit=3)
    assert [r.key for r in rows] == ["Z", "_", "a"] and nxt == "a"
    rows, nxt = await kv.list(T, "ns", after=nxt, limit=100)
    assert [r.key for r in rows] == ["a/1", "a/2", "aa", "b", "é"] and nxt is None
    rows, _ = await kv.list(T, "ns", prefix="a/")
    assert [r.key for r in rows] == ["a/1", "a/2"]


async def test_batch_get_in_order_with_duplicates(kv):
    await kv.put(T, "ns", "a", 1)
    got = await kv.get_many(T, "ns", ["a", "x", "a"])
    assert [g.value if g else None for g in got] == [b"1", None, b"1"]


async def test_history_newest_first(kv):
    for i in range(5):
        await kv.put(T, "ns", "h", i)
    await kv.delete(T, "ns", "h")
    hist = await kv.history(T, "ns", "h", limit=3)
    assert [(c.type, c.value) for c in hist] == [("delete", None), ("put", b"4"), ("put", b"3")]
    older = await kv.history(T, "ns", "h", before=hist[-1].rev, limit=10)
    assert [c.value for c in older] == [b"2", b"1", b"0"]


async def test_txn_all_or_nothing_one_revision(kv, store):
    await kv.put(T, "ns", "a", 1)
    r = await kv.txn(T, [Compare("ns", "a", version=1), Compare("ns", "b", exists=False)],
                     [Op("put", "ns", "b", value=2), Op("incr", "ns", "a", amount=1), Op("delete", "ns", "a")])
    assert r.revision == 2 and (await store.log.revision(T)).current == 2
    assert isinstance(r.results[2], Deleted)
    assert await kv.get(T, "ns", "a") is None and (await kv.get(T, "ns", "b")).mod_rev == 2
    with pytest.raises(CompareFailed) as e:
        await kv.txn(T, [Compare("ns", "b", value=3)], [Op("put", "ns", "c", value=1)])
    assert e.value.index == 0
    with pytest.raises(TypeMismatch):  # a failing op rolls back the ops before it
        await kv.txn(T, [], [Op("put", "ns", "c", value=1), Op("append", "ns", "b", value=1)])
    assert await kv.get(T, "ns", "c") is None and (await store.log.revision(T)).current == 2
