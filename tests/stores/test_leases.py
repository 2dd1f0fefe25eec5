"""Leases and fencing on both stores: the engine over a real SQLite file and a real PostgreSQL."""

import asyncio

import pytest

from stigmer.engine import maintenance
from stigmer.engine.changes import ChangeHub
from stigmer.engine.errors import FenceStale, InvalidArgument, LeaseConflict, LeaseExpired, NotFound
from stigmer.engine.fencing import Fence
from stigmer.engine.kv import Op
from stigmer.engine.leases import LEASES, Leases, LeaseLimits
from stigmer.engine.types import ChangeFilter

T = "t1"


@pytest.fixture
def leases(store, hub):
    return Leases(store, hub, LeaseLimits(max_wait=10))


async def test_acquire_issues_growing_tokens_and_blocks_while_active(leases, clock):
    a = await leases.acquire(T, "job", "w1", ttl=30)
    assert (a.lease.token, a.lease.holder, a.lease.expires_at) == (1, "w1", clock.now() + 30)
    with pytest.raises(LeaseConflict) as e:
        await leases.acquire(T, "job", "w2", ttl=30)
    assert e.value.details["holder"] == "w1" and e.value.details["fencing_token"] == 1
    await leases.release(T, "job", lease_id=a.lease.id)
    b = await leases.acquire(T, "job", "w2", ttl=30)
    assert b.lease.token == 2 and b.lease.id != a.lease.id
    clock.advance(30)  # expired: stops blocking at once, no sweep needed
    c = await leases.acquire(T, "job", "w3")
    assert c.lease.token == 3
    assert (await leases.acquire(T, "other", "w1")).lease.token == 1  # tokens are per resource
    assert (await leases.acquire("t2", "job", "w1")).lease.token == 1  # and per tenant


async def test_tokens_survive_a_restart(open_store, clock):
    s = await open_store()
    first = Leases(s, ChangeHub(s))
    await first.acquire(T, "job", "w1", ttl=5)
    clock.advance(5)
    await first.acquire(T, "job", "w1", ttl=5)
    await s.close()
    s2 = await open_store()
    with pytest.raises(LeaseConflict):  # the lease taken before the restart still holds
        await Leases(s2, ChangeHub(s2)).acquire(T, "job", "w2")
    clock.advance(5)
    assert (await Leases(s2, ChangeHub(s2)).acquire(T, "job", "w2")).lease.token == 3


async def test_renew_and_release_name_the_newest_lease(leases, clock):
    a = await leases.acquire(T, "job", "w1", ttl=10)
    clock.advance(8)
    r = await leases.renew(T, "job", lease_id=a.lease.id, ttl=10)
    assert r.lease.expires_at == clock.now() + 10 and r.lease.renewed_at == clock.now()  # from now
    assert (await leases.renew(T, "job", token=1, ttl=5)).lease.expires_at == clock.now() + 5
    with pytest.raises(NotFound):
        await leases.renew(T, "job", lease_id="not-it")
    with pytest.raises(NotFound):
        await leases.renew(T, "job", token=2)
    clock.advance(5)
    with pytest.raises(LeaseExpired):  # expired, not superseded
        await leases.renew(T, "job", lease_id=a.lease.id)
    b = await leases.acquire(T, "job", "w2", ttl=10)
    for call in (leases.renew(T, "job", lease_id=a.lease.id), leases.release(T, "job", lease_id=a.lease.id)):
        with pytest.raises(NotFound):  # superseded: not found, forever
            await call
    await leases.release(T, "job", token=b.lease.token)
    with pytest.raises(NotFound):  # already released
        await leases.release(T, "job", token=b.lease.token)
    got = await leases.get(T, "job")
    assert got.token == 2 and got.released_at == clock.now() and not leases.active(got)
    assert await leases.get(T, "never") is None


async def test_releasing_an_expired_lease_succeeds(leases, clock):
    a = await leases.acquire(T, "job", "w1", ttl=1)
    clock.advance(2)
    assert (await leases.release(T, "job", lease_id=a.lease.id)).lease.released_at == clock.now()


async def test_validation_refuses_before_the_writer(leases, store):
    for bad in (dict(holder=""), dict(holder="x" * 256), dict(holder="w", ttl=0), dict(holder="w", ttl=3601),
                dict(holder="w", wait=11), dict(holder="w", wait=-1), dict(holder="w", ttl=float("nan"))):
        with pytest.raises(InvalidArgument):
            await leases.acquire(T, "job", **bad)
    with pytest.raises(InvalidArgument):
        await leases.acquire(T, "", "w")
    with pytest.raises(InvalidArgument):
        await leases.renew(T, "job")  # neither id nor token
    assert (await store.log.revision(T)).current == 0


async def test_of_twenty_concurrent_acquisitions_exactly_one_wins(leases):
    outcomes = await asyncio.gather(*[leases.acquire(T, "job", f"w{i}", ttl=30) for i in range(20)],
                                    return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1 and winners[0].lease.token == 1
    assert all(isinstance(o, LeaseConflict) for o in outcomes if isinstance(o, BaseException))


async def test_a_write_with_a_stale_fencing_token_is_refused(leases, kv, store, clock):
    a = await leases.acquire(T, "job", "w1", ttl=10)
    fence_a = Fence("job", a.lease.token)
    await kv.apply(T, Op("put", "app", "out", value=1, fence=fence_a))
    clock.advance(10)  # a's lease expired: its token fences nothing
    with pytest.raises(FenceStale) as e:
        await kv.apply(T, Op("put", "app", "out", value=2, fence=fence_a))
    assert e.value.details["reason"] == "expired"
    b = await leases.acquire(T, "job", "w2", ttl=10)
    before = (await store.log.revision(T)).current
    for op in (Op("put", "app", "out", value=3, fence=fence_a), Op("delete", "app", "out", fence=fence_a),
               Op("incr", "app", "n", fence=fence_a)):
        with pytest.raises(FenceStale) as e:
            await kv.apply(T, op)
        assert e.value.details["reason"] == "superseded" and e.value.details["current_token"] == 2
    with pytest.raises(FenceStale):
        await kv.txn(T, [], [Op("put", "app", "x", value=1), Op("put", "app", "out", value=4, fence=fence_a)])
    with pytest.raises(FenceStale) as e:
        await kv.apply(T, Op("put", "app", "out", value=5, fence=Fence("job", 7)))
    assert e.value.details["reason"] == "not_issued"
    assert (await store.log.revision(T)).current == before  # refused writes write nothing
    assert (await kv.get(T, "app", "out")).value == b"1" and await kv.get(T, "app", "x") is None
    fence_b = Fence("job", b.lease.token)
    assert (await kv.apply(T, Op("put", "app", "out", value=6, fence=fence_b))).version == 2
    await kv.txn(T, [], [Op("put", "app", "x", value=1, fence=fence_b)])
    await leases.release(T, "job", lease_id=b.lease.id)
    with pytest.raises(FenceStale) as e:
        await kv.apply(T, Op("put", "app", "out", value=7, fence=fence_b))
    assert e.value.details["reason"] == "released"


async def test_lease_events_reach_watchers_through_the_change_feed(leases, hub, kv, store, clock):
    w = await hub.watch(ChangeFilter(T, LEASES, key="job"), after=0)
    a = await leases.acquire(T, "job", "w1", ttl=10)
    await leases.renew(T, "job", lease_id=a.lease.id, ttl=20)
    await leases.release(T, "job", lease_id=a.lease.id)
    b = await leases.acquire(T, "job", "w2", ttl=5)
    clock.advance(5)
    assert await maintenance.sweep_once(store) == 1  # the sweeper emits the expiry
    c = await leases.acquire(T, "job", "w3", ttl=5)
    clock.advance(6)
    await leases.acquire(T, "job", "w4", ttl=5)  # an unswept expiry is recorded first, on the spot
    seen = []
    while len(seen) < 8:
        cs = await asyncio.wait_for(w.next(5), 5)
        seen += [(ch.type, ch.value and ch.value.decode()) for ch in cs.changes]
    w.close()
    assert [t for t, _ in seen] == ["put", "put", "delete", "put", "expire", "put", "expire", "put"]
    assert '"fencing_token":1' in seen[0][1] and '"holder":"w2"' in seen[3][1] and '"fencing_token":3' in seen[5][1]
    assert b.lease.token == 2 and c.lease.token == 3
    mirror = await kv.get(T, LEASES, "job")
    assert mirror is not None and b'"holder":"w4"' in mirror.value


async def test_queued_acquirers_get_the_lease_in_arrival_order(leases):
    first = await leases.acquire(T, "job", "holder", ttl=30)
    order: list[str] = []
    queued = asyncio.Event()

    async def wait_for_it(name: str):
        got = await leases.acquire(T, "job", name, ttl=30, wait=10)
        order.append(name)
        return got

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(wait_for_it(f"q{i}")))
        while len(leases._queues.get((T, "job"), ())) < i + 1:  # arrival order is the order we start them in
            await asyncio.sleep(0)
    queued.set()
    with pytest.raises(LeaseConflict):  # a caller that will not wait does not jump the queue
        await leases.acquire(T, "job", "impatient")
    current = first.lease
    for i in range(5):
        await leases.release(T, "job", lease_id=current.id)
        got = await asyncio.wait_for(tasks[i], 10)
        assert got.lease.holder == f"q{i}" and got.lease.token == i + 2
        current = got.lease
    assert order == [f"q{i}" for i in range(5)]
    assert leases._queues == {}


async def test_a_blocking_acquire_gets_an_expiring_lease_and_gives_up_in_time(leases, store, clock):
    await leases.acquire(T, "job", "w1", ttl=10)
    waiter = asyncio.create_task(leases.acquire(T, "job", "w2", ttl=10, wait=10))
    while not leases._queues:
        await asyncio.sleep(0)
    clock.advance(10)
    await maintenance.sweep_once(store)  # the expire change wakes the waiter
    assert (await asyncio.wait_for(waiter, 10)).lease.token == 2
    with pytest.raises(LeaseConflict):
        await Leases(store, leases.hub, LeaseLimits(max_wait=0.2)).acquire(T, "job", "w3", wait=0.2)
