import asyncio

import pytest

from stigmer.engine import changes as changes_mod
from stigmer.engine.changes import ChangeHub
from stigmer.engine.errors import Compacted
from stigmer.engine.kv import Op
from stigmer.engine.types import ChangeFilter

T = "t1"


async def drain(w, n, timeout=2.0):
    out = []
    while len(out) < n:
        cs = await w.next(timeout)
        assert cs is not None, f"only {len(out)} of {n} change sets arrived"
        out.append(cs)
    return out


async def test_replay_then_live_in_order(kv, hub):
    for i in range(3):
        await kv.put(T, "ns", f"k{i}", i)
    w = await hub.watch(ChangeFilter(T, "ns"), after=1)
    await kv.put(T, "ns", "k3", 3)
    got = await drain(w, 3)
    assert [cs.revision for cs in got] == [2, 3, 4]
    assert await w.next(0.05) is None


async def test_filters_key_prefix_namespace_tenant(kv, hub):
    wk = await hub.watch(ChangeFilter(T, "ns", key="a/1"), after=0)
    wp = await hub.watch(ChangeFilter(T, "ns", prefix="a/"), after=0)
    wn = await hub.watch(ChangeFilter(T, "other"), after=0)
    await kv.put(T, "ns", "a/1", 1)
    await kv.put(T, "ns", "a/2", 2)
    await kv.put(T, "ns", "b", 3)
    await kv.put("t2", "ns", "a/1", 4)
    await kv.put(T, "other", "x", 5)
    assert [c.key for cs in await drain(wk, 1) for c in cs.changes] == ["a/1"]
    assert [c.key for cs in await drain(wp, 2) for c in cs.changes] == ["a/1", "a/2"]
    assert [c.key for cs in await drain(wn, 1) for c in cs.changes] == ["x"]
    for w in (wk, wp, wn):
        assert await w.next(0.05) is None


async def test_transaction_arrives_together(kv, hub):
    w = await hub.watch(ChangeFilter(T, "ns"))
    await kv.txn(T, [], [Op("put", "ns", "a", value=1), Op("put", "ns", "b", value=2), Op("put", "zz", "c", value=3)])
    (cs,) = await drain(w, 1)
    assert [c.key for c in cs.changes] == ["a", "b"] and {c.rev for c in cs.changes} == {cs.revision}


async def test_slow_watcher_overflows_then_catches_up_without_loss(kv, store, monkeypatch):
    monkeypatch.setattr(changes_mod, "CATCHUP_PAGE", 7)
    hub = ChangeHub(store, buffer=1)
    w = await hub.watch(ChangeFilter(T, "ns"))
    await asyncio.gather(*[kv.put(T, "ns", f"k{i}", i) for i in range(60)])  # never read meanwhile
    got = await drain(w, 60)
    assert [cs.revision for cs in got] == list(range(1, 61))
    await kv.put(T, "ns", "late", 1)
    assert (await w.next(1)).revision == 61


async def test_writers_never_wait_for_watchers(kv, hub):
    watchers = [await hub.watch(ChangeFilter(T, "ns")) for _ in range(50)]
    await asyncio.wait_for(asyncio.gather(*[kv.put(T, "ns", "k", i) for i in range(500)]), 10)
    for w in watchers[:3]:
        assert [cs.revision for cs in await drain(w, 500)] == list(range(1, 501))
    assert hub.watcher_count == 50
    for w in watchers:
        w.close()
    assert hub.watcher_count == 0


async def test_compacted_history_is_reported_not_skipped(kv, store, hub, clock):
    for i in range(5):
        await kv.put(T, "ns", "k", i)
    clock.advance(1)
    assert await store.log.compact(older_than=clock.now() - 2) == 0  # nothing that old yet
    removed = await store.log.compact(older_than=clock.now())
    assert removed == 5
    info = (await store.log.revision(T))
    assert (info.current, info.compacted) == (5, 5)
    with pytest.raises(Compacted) as e:
        await hub.watch(ChangeFilter(T, "ns"), after=3)
    assert (e.value.oldest_revision, e.value.current_revision) == (6, 5)
    w = await hub.watch(ChangeFilter(T, "ns"), after=5)  # resuming at the compaction point works
    await kv.put(T, "ns", "k", 9)
    assert (await w.next(1)).revision == 6


async def test_watcher_behind_compaction_gets_compacted(kv, store, clock):
    hub = ChangeHub(store, buffer=1)
    w = await hub.watch(ChangeFilter(T, "ns"), after=0)
    for i in range(4):
        await kv.put(T, "ns", "k", i)
    clock.advance(1)
    await store.log.compact(older_than=clock.now())
    with pytest.raises(Compacted):
        await w.next(1)


@pytest.mark.parametrize("store_kind", ["postgres"])  # one process owns a SQLite file: no other writer exists
async def test_a_commit_through_another_handle_is_seen_without_any_notification(store_kind, open_store, kv, hub):
    """Revision information comes from the database: a commit made elsewhere moves the watch start point and
    the future-revision check at once (it used to be a per-process cache)."""
    from stigmer.engine.errors import FutureRevision
    from stigmer.engine.kv import KV

    await kv.put(T, "ns", "a", 1)
    other = await open_store()
    await KV(other).put(T, "ns", "b", 2)
    assert (await hub.revision(T)).current == 2
    w = await hub.watch(ChangeFilter(T, "ns"), after=2)  # not FutureRevision
    w.close()
    with pytest.raises(FutureRevision):
        await hub.watch(ChangeFilter(T, "ns"), after=3)
    w = await hub.watch(ChangeFilter(T, "ns"), after=0)
    assert [cs.revision for cs in await drain(w, 2)] == [1, 2]


async def test_a_revision_larger_than_a_catch_up_page_arrives_whole(kv, hub, monkeypatch):
    """A transaction with more changes than CATCHUP_PAGE is neither cut nor skipped by the history read."""
    monkeypatch.setattr(changes_mod, "CATCHUP_PAGE", 3)
    await kv.put(T, "ns", "before", 0)
    await kv.txn(T, [], [Op("put", "ns", f"t{i}", value=i) for i in range(7)])
    await kv.put(T, "ns", "after", 1)
    w = await hub.watch(ChangeFilter(T, "ns"), after=0)
    got = await drain(w, 3)
    assert [cs.revision for cs in got] == [1, 2, 3]
    assert [c.key for c in got[1].changes] == [f"t{i}" for i in range(7)]
    assert await w.next(0.05) is None


async def test_behind_watchers_share_one_history_read_per_filter(kv, hub, store, monkeypatch):
    for i in range(5):
        await kv.put(T, "ns", f"k{i}", i)
    reads = []
    real = store.log.read

    async def counted(flt, after, limit):
        reads.append((flt, after))
        return await real(flt, after, limit)

    monkeypatch.setattr(store.log, "read", counted)
    ws = [await hub.watch(ChangeFilter(T, "ns"), after=i % 3) for i in range(30)]
    ws += [await hub.watch(ChangeFilter(T, "ns", key="k4"), after=0) for _ in range(10)]
    got = await asyncio.gather(*[drain(w, 5 - i % 3) for i, w in enumerate(ws[:30])], *[drain(w, 1) for w in ws[30:]])
    assert all([cs.revision for cs in g] == list(range(1 + i % 3, 6)) for i, g in enumerate(got[:30]))
    assert all([cs.revision for cs in g] == [5] for g in got[30:])
    assert sorted((f.namespace, f.key or "", after) for f, after in reads) == [("ns", "", 0), ("ns", "k4", 0)]


async def test_a_caught_up_watcher_reports_the_published_position(kv, hub):
    """What a keep-alive's progress id says: every revision up to it was handed out or does not match."""
    await kv.put(T, "ns", "q", 0)
    w = await hub.watch(ChangeFilter(T, "ns", key="q"))
    assert w.position() == 1
    for i in range(4):
        await kv.put(T, "ns", "other", i)
    await hub.feed.settle()  # local commits reach the hub just after their acknowledgement
    assert w.poll() is None and w.position() == 5
    await kv.put(T, "ns", "q", 1)
    assert (await w.next(1)).revision == 6 and w.position() == 6


async def test_many_watchers_one_change_only_the_matching_ones_hear_it(kv, hub):
    keys = [await hub.watch(ChangeFilter(T, "ns", key=f"k{i}")) for i in range(200)]
    prefixes = [await hub.watch(ChangeFilter(T, "ns", prefix=p)) for p in ("", "k", "k1", "k12", "x")]
    wide = await hub.watch(ChangeFilter(T))
    other = await hub.watch(ChangeFilter("t2", "ns"))
    await kv.put(T, "ns", "k12", 1)
    heard = [i for i, w in enumerate(keys) if await w.next(0.01 if i != 12 else 1) is not None]
    assert heard == [12]
    assert [await w.next(1) is not None for w in prefixes[:4]] == [True] * 4
    assert await prefixes[4].next(0.05) is None and await other.next(0.05) is None
    assert (await wide.next(1)).revision == 1


class TakeAll:
    """A sink (what an SSE stream is to its watcher) that takes every change set at once."""

    def __init__(self, w):
        self.got, w.sink = [], self

    def push(self, cs):
        self.got.append(cs.revision)
        return True

    def push_run(self, sets, i, shared):
        self.got += [cs.revision for cs in sets[i:]]
        return True

    def wake(self):
        pass


async def test_fan_out_in_slices_keeps_order_and_never_reports_a_position_ahead(kv, hub, monkeypatch):
    """Watchers are handed a change set a few per loop turn (SLICE); sets published meanwhile join the
    queue and reach the members not reached yet in the same write. Every watcher gets every set once,
    in order, and while its bucket still holds sets a watcher reports what it was handed as its
    position, not the published revision."""
    monkeypatch.setattr(changes_mod, "SLICE", 3)
    ws = [await hub.watch(ChangeFilter(T, "ns")) for _ in range(10)]
    sinks = [TakeAll(w) for w in ws]
    quiet = await hub.watch(ChangeFilter(T, "ns", key="never"))
    samples = 0
    puts = asyncio.gather(*[kv.put(T, "ns", f"k{i}", i) for i in range(20)])
    while not puts.done() or hub.fanning or hub.feed._pending:
        for w in ws:
            assert w.position() == w.last or not w.bucket.queue, "a position ran ahead of what was handed out"
            samples += bool(w.bucket.queue)
        await asyncio.sleep(0)
    await puts
    assert samples, "the slices never overlapped the sampling"
    assert all(s.got == list(range(1, 21)) for s in sinks), [s.got for s in sinks]
    assert [w.position() for w in ws] == [20] * 10 and quiet.position() == 20
