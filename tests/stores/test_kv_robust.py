"""Engine rules at the edges: JSON equality in compares, overflow, TTL bounds, revision bounds, future watches.
Real SQLite store (conftest's `store`, `kv`, `hub`)."""

import pytest

from stigmer.engine.errors import CompareFailed, FutureRevision, InvalidArgument, PatchFailed, ValueTooLarge
from stigmer.engine.kv import MAX_REVISION, MAX_TTL_SECONDS, Compare, Op
from stigmer.engine.types import Change, ChangeFilter, Entry

T = "t1"


@pytest.mark.parametrize("stored, expected", [(True, 1), (False, 0), (False, 0.0), ({"a": [True]}, {"a": [1]}),
                                              (0, False), (None, 0)])
async def test_txn_compare_never_equates_booleans_and_numbers(kv, stored, expected):
    await kv.put(T, "ns", "k", stored)
    with pytest.raises(CompareFailed):
        await kv.txn(T, [Compare("ns", "k", value=expected)], [Op("put", "ns", "k", value="changed")])
    assert (await kv.get(T, "ns", "k")).value != b'"changed"'


@pytest.mark.parametrize("stored, expected", [(1, 1.0), (2.0, 2), ({"a": 1, "b": 2}, {"b": 2.0, "a": 1}),
                                              ([1, {"x": True}], [1.0, {"x": True}])])
async def test_txn_compare_follows_the_json_data_model(kv, stored, expected):
    await kv.put(T, "ns", "k", stored)
    r = await kv.txn(T, [Compare("ns", "k", value=expected)], [Op("put", "ns", "k", value="changed")])
    assert r.revision == 2 and (await kv.get(T, "ns", "k")).value == b'"changed"'


async def test_patch_test_op_never_equates_booleans_and_numbers(kv):
    await kv.put(T, "ns", "k", {"flag": True})
    with pytest.raises(PatchFailed, match="test failed at /flag: value differs"):
        await kv.apply(T, Op("patch", "ns", "k", patch=[{"op": "test", "path": "/flag", "value": 1},
                                                       {"op": "replace", "path": "/flag", "value": False}]))
    assert (await kv.get(T, "ns", "k")).value == b'{"flag":true}'


@pytest.mark.parametrize("amount", [10**400, -(10**400), 2**1024], ids=["1e400", "-1e400", "2^1024"])
async def test_incr_by_a_huge_integer_is_invalid_argument(kv, store, amount):
    await kv.put(T, "ns", "n", 1)
    with pytest.raises(InvalidArgument, match="finite"):
        await kv.incr(T, "ns", "n", amount)
    with pytest.raises(InvalidArgument, match="finite"):
        await kv.incr(T, "ns", "obj", amount, path=["a"])
    assert (await kv.get(T, "ns", "n")).value == b"1" and (await store.log.revision(T)).current == 1
    assert (await kv.incr(T, "ns", "n", 1)).value == b"2"  # the writer carries on


async def test_copy_doubling_patch_is_refused_and_writes_nothing(kv, store):
    await kv.put(T, "ns", "k", {"a": "x" * 50})
    ops = [{"op": "copy", "from": "", "path": f"/{i}"} for i in range(30)]
    with pytest.raises(ValueTooLarge):  # kv fixture: 4096-byte values
        await kv.apply(T, Op("patch", "ns", "k", patch=ops))
    assert (await store.log.revision(T)).current == 1


async def test_patch_shape_is_checked_before_the_writer(kv, store):
    await kv.put(T, "ns", "k", {})
    with pytest.raises(InvalidArgument, match="patch op 1: add needs a value"):
        await kv.apply(T, Op("patch", "ns", "k", patch=[{"op": "remove", "path": "/x"}, {"op": "add", "path": "/y"}]))


@pytest.mark.parametrize("ttl", [MAX_TTL_SECONDS + 1, 10**400, 1e300, float("inf"), float("nan"), 0, -1, True],
                         ids=["max+1", "1e400", "1e300", "inf", "nan", "0", "-1", "true"])
async def test_ttl_beyond_the_maximum_or_not_finite_is_refused(kv, store, ttl):
    with pytest.raises(InvalidArgument) as e:
        await kv.put(T, "ns", "k", 1, ttl=ttl)
    assert e.value.details["field"] == "ttl"
    with pytest.raises(InvalidArgument):
        await kv.txn(T, [], [Op("put", "ns", "k", value=1, ttl=ttl)])
    assert (await store.log.revision(T)).current == 0


async def test_ttl_at_the_maximum_is_accepted(kv):
    e = await kv.put(T, "ns", "k", 1, ttl=MAX_TTL_SECONDS)
    assert e.expires_at - e.updated_at == pytest.approx(MAX_TTL_SECONDS)
    assert await kv.get(T, "ns", "k") is not None


async def test_an_entry_stored_with_an_absurd_expiry_is_still_readable(kv, store):
    def plant(tx):  # as an older server could have written it
        rev = tx.new_revision()
        tx.kv.put(Entry(T, "ns", "far", b"1", 1, rev, rev, tx.now, tx.now, 1e300))
        tx.record(Change(T, rev, "ns", "far", "put", b"1", None, 1, tx.now))
    await store.submit(T, plant)
    assert (await kv.get(T, "ns", "far")).expires_at == 1e300
    rows, _ = await kv.list(T, "ns")
    assert [r.key for r in rows] == ["far"]
    assert (await kv.put(T, "ns", "far", 2)).expires_at is None  # overwriting clears it


@pytest.mark.parametrize("rev", [2**63, 2**70, -1, 1.5, True, "3"], ids=["2^63", "2^70", "-1", "1.5", "true", "str"])
async def test_revisions_outside_int64_are_refused_at_the_engine(kv, hub, rev):
    await kv.put(T, "ns", "k", 1)
    with pytest.raises(InvalidArgument):
        await kv.history(T, "ns", "k", before=rev)
    # a watch from beyond int64 is beyond the current revision, as any future one (CntrlNode: `compacted`)
    with pytest.raises(FutureRevision if isinstance(rev, int) and not isinstance(rev, bool) and rev > 0
                       else InvalidArgument):
        await hub.watch(ChangeFilter(T), rev)
    assert hub.watcher_count == 0


async def test_history_accepts_the_largest_revision(kv):
    await kv.put(T, "ns", "k", 1)
    assert [c.rev for c in await kv.history(T, "ns", "k", before=MAX_REVISION)] == [1]


async def test_a_watch_beyond_the_current_revision_is_refused(kv, hub):
    await kv.put(T, "ns", "k", 1)
    with pytest.raises(FutureRevision) as e:
        await hub.watch(ChangeFilter(T), 2)
    assert (e.value.requested_revision, e.value.current_revision) == (2, 1)
    assert e.value.code == "future_revision" and hub.watcher_count == 0
    w = await hub.watch(ChangeFilter(T), 1)  # the current revision itself: wait for what comes next
    assert w.poll() is None
    await kv.put(T, "ns", "k", 2)
    assert (await w.next(5)).revision == 2
    w.close()
