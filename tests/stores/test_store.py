import asyncio

import pytest

from stigmer.engine.errors import StorageUnavailable
from stigmer.engine.kv import KV
from stigmer.engine.types import ChangeFilter, RevisionInfo


async def test_data_revisions_and_compaction_point_survive_reopen(open_store, clock):
    s = await open_store()
    kv = KV(s)
    for i in range(3):
        await kv.put("t", "ns", f"k{i}", {"i": i})
    clock.advance(1)
    await s.log.compact(older_than=clock.now())
    await s.close()

    s2 = await open_store()
    assert await s2.log.revision("t") == RevisionInfo(3, 3)
    assert (await KV(s2).get("t", "ns", "k2")).value == b'{"i":2}'
    e = await KV(s2).put("t", "ns", "k3", 3)
    assert e.mod_rev == 4  # the revision carries on, never restarts


async def test_one_failing_mutation_does_not_fail_its_group(store):
    kv = KV(store)

    def boom(tx):
        tx.kv.put(tx.kv.get("ns", "a"))  # writes, then fails: its savepoint must be rolled back
        raise RuntimeError("boom")

    await kv.put("t", "ns", "a", 1)
    results = await asyncio.gather(
        kv.put("t", "ns", "x", 1), store.submit("t", boom), kv.put("t", "ns", "y", 2), return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert await kv.get("t", "ns", "x") is not None and await kv.get("t", "ns", "y") is not None
    assert (await store.log.revision("t")).current == 3  # no gap left by the failed mutation
    revs = [c.rev for c in await store.log.read(ChangeFilter("t"), 0, 10)]
    assert revs == [1, 2, 3]


async def test_reads_see_acknowledged_writes(store):
    kv = KV(store)
    for i in range(200):
        await kv.put("t", "ns", "k", i)
        assert (await kv.get("t", "ns", "k")).value == str(i).encode()


@pytest.mark.parametrize("prefix", ["a", "é", "a\U0001f600"])
async def test_prefix_scan_bounds(store, prefix):
    kv = KV(store)
    keys = [prefix, prefix + "x", prefix + "\U0001f600", prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    for k in keys:
        await kv.put("t", "ns", k, 1)
    rows, _ = await kv.list("t", "ns", prefix=prefix)
    assert sorted(r.key for r in rows) == sorted(keys[:3])


async def test_a_write_after_close_fails_at_once_instead_of_waiting_forever(store):
    kv = KV(store)
    await kv.put("t", "ns", "a", 1)
    await store.close()
    with pytest.raises(StorageUnavailable) as e:
        await asyncio.wait_for(kv.put("t", "ns", "b", 2), 10)  # was a hang on SQLite: no writer reads the queue
    assert e.value.details["reason"] == "closed"
