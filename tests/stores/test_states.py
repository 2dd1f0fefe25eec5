"""States (AgentState §5.1) on both stores: the engine over a real SQLite file and a real PostgreSQL."""

import asyncio
import json

import pytest

from stigmer.engine import access, states as states_module
from stigmer.engine.changes import ChangeHub
from stigmer.engine.errors import Forbidden, InvalidArgument, LeaseConflict, LeaseMismatch, LeaseRequired, NotFound
from stigmer.engine.kv import KV, Op
from stigmer.engine.leases import Leases
from stigmer.engine.ids import new_id
from stigmer.engine.states import STATES, State, StateQuery, States, delete_in, lease_resource, put_in

T = "t1"


@pytest.fixture
def states(store, hub):
    return States(store, hub)


@pytest.fixture
def leases(store, hub):
    return Leases(store, hub)


def ms(clock) -> int:
    return int(clock.now() * 1000)


async def test_put_replace_delete_and_resurrect_keep_created_at(states, store, clock):
    created = ms(clock)
    a = await states.put(T, "k", "w1", {"step": 1}, {"run": "r1"}, ["pipeline", "active", "pipeline"])
    assert a == State("k", "w1", {"step": 1}, {"run": "r1"}, ["active", "pipeline"], a.latest_sequence,
                      created, created, None)
    assert await states.get(T, "k") == a
    clock.advance(1)
    b = await states.put(T, "k", "w2", {"step": 2})  # full replace: metadata and tags go
    assert (b.agent_id, b.data, b.metadata, b.tags) == ("w2", {"step": 2}, None, [])
    assert b.latest_sequence > a.latest_sequence and (b.created_at, b.updated_at) == (created, ms(clock))
    assert await states.get(T, "k") == b
    clock.advance(1)
    gone = await states.delete(T, "k", idempotency_key="idem-1")
    assert (gone.event_type, gone.data, gone.agent_id, gone.metadata, gone.tags, gone.idempotency_key) == (
        "delete", None, "w2", None, [], "idem-1")
    assert gone.sequence > b.latest_sequence and gone.created_at == ms(clock) and len(gone.id) == 21
    assert await states.get(T, "k") is None
    with pytest.raises(NotFound):
        await states.delete(T, "k")
    with pytest.raises(NotFound):
        await states.delete(T, "never")
    clock.advance(1)
    c = await states.put(T, "k", "w3", {"step": 3})
    assert (c.created_at, c.updated_at, c.deleted_at) == (created, ms(clock), None)  # first creation kept
    assert await states.get(T, "k") == c


async def test_each_state_is_mirrored_as_a_key_and_sequences_are_revisions(states, store, hub, kv, clock):
    a = await states.put(T, "m", "w1", {"x": 1}, tags=["t"])
    entry = await store.kv.get(T, STATES, "m")
    assert entry.mod_rev == a.latest_sequence
    assert json.loads(entry.value) == {"state_key": "m", "agent_id": "w1", "data": {"x": 1}, "metadata": None,
                                       "tags": ["t"], "created_at": a.created_at, "updated_at": a.updated_at,
                                       "deleted_at": None}
    await kv.put(T, "other", "k", 1)  # another write of the tenant takes a revision: a gap
    b = await states.put(T, "m", "w1", {"x": 2})
    assert b.latest_sequence == a.latest_sequence + 2
    gone = await states.delete(T, "m")
    assert await store.kv.get(T, STATES, "m") is None
    history = await store.kv.history(T, STATES, "m", None, 10)
    assert [(c.rev, c.type) for c in history] == [(gone.sequence, "delete"), (b.latest_sequence, "put"),
                                                  (a.latest_sequence, "put")]
    info = await store.log.revision(T)
    assert info.current == gone.sequence


async def test_the_states_namespace_is_read_only_to_the_native_api(store, kv):
    p = access.Principal(T, frozenset({access.READ, access.WRITE, access.ADMIN}))
    guarded = access.GuardedKV(kv, p)
    for op in (Op("put", STATES, "k", value={"a": 1}), Op("delete", STATES, "k")):
        with pytest.raises(Forbidden) as e:  # even for an admin key
            await guarded.apply(op)
        assert "/api/v1/states" in e.value.message
    with pytest.raises(Forbidden):
        await guarded.txn([], [Op("put", STATES, "k", value=1)])
    access.check(p, access.READ, STATES, "k")  # reading is allowed


async def test_events_list_every_incarnation_in_order(states, clock):
    a = await states.put(T, "e", "w1", {"n": 1}, tags=["x"], idempotency_key="k1")
    clock.advance(1)
    d = await states.delete(T, "e")
    clock.advance(1)
    b = await states.put(T, "e", "w2", {"n": 2})
    await states.put(T, "other", "w1", {"n": 9})
    events = await states.events(T, "e")
    assert [(e.sequence, e.event_type, e.data, e.agent_id) for e in events] == [
        (a.latest_sequence, "upsert", {"n": 1}, "w1"), (d.sequence, "delete", None, "w1"),
        (b.latest_sequence, "upsert", {"n": 2}, "w2")]
    assert events[0].idempotency_key == "k1" and events[0].tags == ["x"] and events[1].tags == ["x"]
    assert events[1] == d
    assert [e.sequence for e in await states.events(T, "e", after=a.latest_sequence, limit=1)] == [d.sequence]
    assert await states.events(T, "e", after=b.latest_sequence) == []
    assert await states.events(T, "unknown") == []
    assert await states.event(T, str(d.sequence)) == d
    assert await states.event(T, d.id) == d
    assert await states.event(T, "0") is None and await states.event(T, "99999999999999999999") is None
    assert await states.event("t2", d.id) is None
    for bad in ({"after": -1}, {"limit": 0}, {"limit": 501}):
        with pytest.raises(InvalidArgument):
            await states.events(T, "e", **bad)


async def test_historical_get_by_sequence_and_time(states, clock):
    t0 = ms(clock)
    a = await states.put(T, "h", "w1", {"v": 1})
    clock.advance(10)
    t1 = ms(clock)
    b = await states.put(T, "h", "w1", {"v": 2}, {"m": 1})
    clock.advance(10)
    d = await states.delete(T, "h")
    clock.advance(10)
    c = await states.put(T, "h", "w1", {"v": 3})
    got = await states.get(T, "h", at_sequence=a.latest_sequence)
    assert got == State("h", "w1", {"v": 1}, None, [], a.latest_sequence, t0, t0, None)
    assert (await states.get(T, "h", at_sequence=b.latest_sequence)).data == {"v": 2}
    assert (await states.get(T, "h", at_sequence=d.sequence - 1)).data == {"v": 2}
    assert await states.get(T, "h", at_sequence=d.sequence) is None  # a delete: no version then
    assert await states.get(T, "h", at_sequence=a.latest_sequence - 1) is None
    hist = await states.get(T, "h", at_time=t1 + 5)
    assert (hist.data, hist.metadata, hist.created_at, hist.updated_at) == ({"v": 2}, {"m": 1}, t1, t1)
    assert await states.get(T, "h", at_time=t0 - 1) is None
    assert (await states.get(T, "h", at_time=t1 + 5, at_sequence=a.latest_sequence)).data == {"v": 1}  # both hold
    assert (await states.get(T, "h", at_time=ms(clock))).data == {"v": 3}
    live = await states.get(T, "h")
    assert live == c and live.created_at == t0


async def test_member_order_of_data_is_kept_through_store_and_events(states, open_store, clock):
    data = {"zeta": 1, "alpha": {"y": [3, {"q": 1, "b": 2}], "b": None}, "mid": "é/ü", "a": 1.5}
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    put = await states.put(T, "order", "w1", data, {"z": 1, "a": 2})
    assert json.dumps(put.data, separators=(",", ":"), ensure_ascii=False) == text
    for got in [(await states.get(T, "order")).data, (await states.events(T, "order"))[0].data,
                (await states.get(T, "order", at_sequence=put.latest_sequence)).data,
                (await states.query(T, StateQuery()))[0][0].data,
                (await states.event(T, str(put.latest_sequence))).data]:
        assert json.dumps(got, separators=(",", ":"), ensure_ascii=False) == text
    assert list((await states.get(T, "order")).metadata) == ["z", "a"]


async def _fill(states, clock):
    """Five states: s1..s5 written in order, one second apart; s3 deleted at the end."""
    out = {}
    specs = [("s1", "a", {"kind": "x", "n": 1}, ["red"]), ("s2", "b", {"kind": "y", "n": 2}, ["red", "blue"]),
             ("s3", "a", {"kind": "x", "n": 3, "extra": True}, ["blue"]), ("s4", "a", {"kind": "x", "n": 4}, ["red"]),
             ("s5", "b", {"kind": "z", "n": 5, "list": [1, {"v": 1.0}]}, [])]
    for key, agent, data, tags in specs:
        clock.advance(1)
        out[key] = await states.put(T, key, agent, data, tags=tags)
    return out


async def keys_of(states, q):
    page, cursor = await states.query(T, q)
    return [s.state_key for s in page], cursor


async def test_live_query_filters_and_orders(states, clock):
    s = await _fill(states, clock)
    clock.advance(1)
    deleted = await states.delete(T, "s3")
    assert await keys_of(states, StateQuery()) == (["s5", "s4", "s2", "s1"], None)
    assert await keys_of(states, StateQuery(agent_id="a")) == (["s4", "s1"], None)
    assert await keys_of(states, StateQuery(tags=("red",))) == (["s4", "s2", "s1"], None)
    assert await keys_of(states, StateQuery(tags=("red", "blue"))) == (["s2"], None)
    t2, t4 = s["s2"].updated_at, s["s4"].updated_at
    assert await keys_of(states, StateQuery(updated_after=t2, updated_before=t4)) == (["s4", "s2"], None)  # inclusive
    assert await keys_of(states, StateQuery(predicates=(("$.kind", True, "x"),))) == (["s4", "s1"], None)
    assert await keys_of(states, StateQuery(predicates=(("$.n", True, 4.0),))) == (["s4"], None)  # numeric equality
    assert await keys_of(states, StateQuery(predicates=(("$.list[1]", True, {"v": 1}),))) == (["s5"], None)
    assert await keys_of(states, StateQuery(predicates=(("$.list", False, None),))) == (["s4", "s2", "s1"], None)
    assert await keys_of(states, StateQuery(predicates=(("$.kind", True, "x"), ("$.n", True, 1)))) == (["s1"], None)
    assert await keys_of(states, StateQuery(predicates=(("$.n", True, True),))) == ([], None)  # true != 1
    # a resurrected key moves up; its state shows its first creation
    clock.advance(1)
    back = await states.put(T, "s3", "a", {"kind": "x"})
    page, _ = await states.query(T, StateQuery(limit=1))
    assert page == [back] and back.latest_sequence > deleted.sequence and back.created_at == s["s3"].created_at
    with pytest.raises(InvalidArgument) as e:
        await states.query(T, StateQuery(predicates=(("$..x", True, 1),)))
    assert e.value.message == "Unsupported JSON path"
    for bad in ({"limit": 0}, {"limit": 101}, {"cursor": 0}, {"at_sequence": 0}, {"updated_after": -1},
                {"tags": ("has space",)}):
        with pytest.raises(InvalidArgument):
            await states.query(T, StateQuery(**bad))


async def test_historical_query_shows_each_key_at_the_point(states, clock):
    s = await _fill(states, clock)
    at = s["s5"].latest_sequence
    at_time = ms(clock)
    clock.advance(1)
    await states.put(T, "s1", "a", {"kind": "changed"})
    await states.delete(T, "s2")
    await states.put(T, "s6", "b", {"kind": "x"})
    page, cursor = await states.query(T, StateQuery(at_sequence=at))
    assert [x.state_key for x in page] == ["s5", "s4", "s3", "s2", "s1"] and cursor is None
    assert page[-1] == State("s1", "a", {"kind": "x", "n": 1}, None, ["red"], s["s1"].latest_sequence,
                             s["s1"].updated_at, s["s1"].updated_at, None)
    assert await keys_of(states, StateQuery(at_time=at_time)) == (["s5", "s4", "s3", "s2", "s1"], None)
    assert await keys_of(states, StateQuery(at_sequence=s["s3"].latest_sequence)) == (["s3", "s2", "s1"], None)
    assert await keys_of(states, StateQuery(at_sequence=at, predicates=(("$.kind", True, "x"),), agent_id="a",
                                            tags=("red",))) == (["s4", "s1"], None)
    t2 = s["s2"].updated_at
    assert await keys_of(states, StateQuery(at_sequence=at, updated_before=t2)) == (["s2", "s1"], None)
    live = await keys_of(states, StateQuery())
    assert live == (["s6", "s1", "s5", "s4", "s3"], None)
    # at_time and at_sequence together: both bounds hold
    assert await keys_of(states, StateQuery(at_sequence=at, at_time=s["s2"].updated_at)) == (["s2", "s1"], None)
    assert await keys_of(states, StateQuery(at_time=s["s1"].updated_at - 1)) == ([], None)


async def test_pages_are_exact(states, clock):
    written = [await states.put(T, f"p{i:02}", "a" if i % 3 else "b", {"i": i}) for i in range(23)]
    for limit, q in [(5, StateQuery(limit=5)), (4, StateQuery(limit=4, agent_id="b")),
                     (3, StateQuery(limit=3, at_sequence=written[-3].latest_sequence))]:
        expected = [s.state_key for s in reversed(written) if
                    (q.agent_id is None or s.agent_id == q.agent_id) and
                    (q.at_sequence is None or s.latest_sequence <= q.at_sequence)]
        seen, cursor = [], None
        while True:
            page, cursor = await states.query(T, msgspec_replace(q, cursor=cursor))
            seen += [s.state_key for s in page]
            if cursor is None:
                break
            assert len(page) == limit and cursor == page[-1].latest_sequence  # exact: full pages with a cursor
        assert seen == expected
        assert len(expected) % limit == 0 or len(page) == len(expected) % limit


def msgspec_replace(q, **changes):
    import msgspec
    return msgspec.structs.replace(q, **changes)


async def test_query_reads_past_many_rows_that_do_not_match(states, clock, monkeypatch):
    monkeypatch.setattr(states_module, "QUERY_CHUNK", 7)
    for i in range(40):
        await states.put(T, "hot", "a", {"i": i})  # many events of one key: one head
    first = await states.put(T, "wanted1", "b", {})
    for i in range(30):
        await states.put(T, f"noise{i}", "a", {})
    second = await states.put(T, "wanted2", "b", {})
    for i in range(30):
        await states.put(T, f"more{i}", "a", {})
    page, cursor = await states.query(T, StateQuery(agent_id="b", limit=1))
    assert page == [second] and cursor == second.latest_sequence
    page, cursor = await states.query(T, StateQuery(agent_id="b", limit=1, cursor=cursor))
    assert page == [first] and cursor is None
    hot, _ = await states.query(T, StateQuery(predicates=(("$.i", False, None),), limit=100))
    assert len(hot) == 62
    only_hot, _ = await states.query(T, StateQuery(predicates=(("$.i", True, 39),)))
    assert [s.data for s in only_hot] == [{"i": 39}]


async def test_lease_rules(states, leases, clock):
    key = "leased"
    await states.put(T, key, "w", {"v": 0})  # no lease: advisory
    a = await leases.acquire(T, lease_resource(key), "w1", ttl=10)
    with pytest.raises(LeaseRequired) as e:
        await states.put(T, key, "w", {"v": 1})
    assert e.value.message == "Active lease requires lease_id" and e.value.code == "lease_required"
    with pytest.raises(LeaseRequired):
        await states.delete(T, key)
    with pytest.raises(LeaseMismatch) as e:
        await states.put(T, key, "w", {"v": 1}, lease_id="not-the-lease")
    assert e.value.message == "lease_id does not match active lease" and isinstance(e.value, LeaseConflict)
    assert (await states.get(T, key)).data == {"v": 0} and len(await states.events(T, key)) == 1  # nothing written
    ok = await states.put(T, key, "w", {"v": 1}, lease_id=a.lease.id)
    assert ok.data == {"v": 1}
    with pytest.raises(LeaseMismatch):  # a lease of another key does not do
        other = await leases.acquire(T, lease_resource("elsewhere"), "w1")
        await states.put(T, key, "w", {"v": 2}, lease_id=other.lease.id)
    clock.advance(10)  # expired: stops blocking, and its id still writes until superseded
    await states.put(T, key, "w", {"v": 2})
    await states.put(T, key, "w", {"v": 3}, lease_id=a.lease.id)
    b = await leases.acquire(T, lease_resource(key), "w2", ttl=10)
    with pytest.raises(LeaseMismatch):  # superseded
        await states.put(T, key, "w", {"v": 4}, lease_id=a.lease.id)
    await leases.release(T, lease_resource(key), lease_id=b.lease.id)
    await states.put(T, key, "w", {"v": 4})  # none active: allowed without an id
    with pytest.raises(LeaseMismatch):  # superseded forever, even with no active lease
        await states.put(T, key, "w", {"v": 5}, lease_id=a.lease.id)
    c = await leases.acquire(T, lease_resource(key), "w3", ttl=5)
    clock.advance(5)
    with pytest.raises(LeaseMismatch):  # still, after the newer lease expired
        await states.delete(T, key, lease_id=a.lease.id)
    gone = await states.delete(T, key, lease_id=c.lease.id)
    assert gone.event_type == "delete"
    with pytest.raises(LeaseMismatch):  # a key that never had a lease
        await states.put(T, "free", "w", {}, lease_id=a.lease.id)


async def test_leases_accept_the_longest_state_keys(states, leases):
    key = "\U0001F600" * 1024  # 1024 characters, 4096 UTF-8 bytes: beyond a native key
    a = await leases.acquire(T, lease_resource(key), "w1")
    with pytest.raises(LeaseRequired):
        await states.put(T, key, "w", {"v": 1})
    put = await states.put(T, key, "w", {"v": 1}, lease_id=a.lease.id)
    assert (await states.get(T, key)) == put and (await states.events(T, key))[0].state_key == key
    with pytest.raises(InvalidArgument) as e:
        await states.put(T, key + "x", "w", {})
    assert e.value.message == "state_key must be at most 1024 characters"
    with pytest.raises(InvalidArgument):
        await leases.acquire(T, lease_resource(key + "x" * 5000), "w1")


async def test_validation(states):
    for bad in [dict(key=""), dict(key="a\x00b"), dict(agent_id=""), dict(agent_id="x" * 256), dict(data=[1]),
                dict(data=None), dict(metadata=[]), dict(tags=["a b"]), dict(tags=[""]), dict(tags=["x" * 256]),
                dict(tags=["\x07"]), dict(tags=[f"t{i}" for i in range(51)]), dict(lease_id=""),
                dict(idempotency_key="k" * 256)]:
        args = {"key": "k", "agent_id": "w", "data": {}, **bad}
        with pytest.raises(InvalidArgument):
            await states.put(T, args.pop("key"), args.pop("agent_id"), args.pop("data"), **args)
    ok = await states.put(T, "k", "w", {}, tags=["agentstate:thread:0b7c", "z", "A", "é"])
    assert ok.tags == ["A", "agentstate:thread:0b7c", "z", "é"]


async def test_fifty_concurrent_puts_to_one_key_each_see_their_own_version(states):
    results = await asyncio.gather(*(states.put(T, "hot", f"w{i}", {"i": i}) for i in range(50)))
    assert len({r.latest_sequence for r in results}) == 50
    for i, r in enumerate(results):
        assert r.data == {"i": i} and r.agent_id == f"w{i}"  # its own version, never another's (D34)
    events = await states.events(T, "hot", limit=500)
    by_sequence = {e.sequence: e.data for e in events}
    assert all(by_sequence[r.latest_sequence] == r.data for r in results)
    newest = max(results, key=lambda r: r.latest_sequence)
    assert await states.get(T, "hot") == State("hot", newest.agent_id, newest.data, None, [],
                                               newest.latest_sequence, results[0].created_at, newest.updated_at)


async def test_put_in_and_delete_in_compose_inside_another_mutation(states, store):
    def both(tx):
        a = put_in(tx, "c1", "w", {"n": 1}, None, ["x"], None, "idem-a", new_id())
        gone = delete_in(tx, "c1", None, "idem-b", new_id())
        b = put_in(tx, "c2", "w", {"n": 2}, {"m": 1}, [], None, None, new_id())
        return a, gone, b

    a, gone, b = await store.submit(T, both)
    assert a.latest_sequence < gone.sequence < b.latest_sequence  # one revision per write
    assert gone.idempotency_key == "idem-b" and gone.tags == ["x"]
    assert await states.get(T, "c1") is None and await states.get(T, "c2") == b

    def refused_after_writing(tx):
        put_in(tx, "c3", "w", {"n": 3}, None, [], None, None, new_id())
        raise RuntimeError("a later step of the mutation refuses")

    # one group: the failed mutation undoes its state, event and key, and only those
    results = await asyncio.gather(store.submit(T, refused_after_writing),
                                   *(states.put(T, f"ok{i}", "w", {"i": i}) for i in range(5)),
                                   return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and all(isinstance(r, State) for r in results[1:])
    assert await states.get(T, "c3") is None and await states.events(T, "c3") == []
    assert await store.kv.get(T, STATES, "c3") is None
    assert len((await states.query(T, StateQuery()))[0]) == 6


async def test_tenants_are_isolated(states, leases):
    await states.put("t1", "k", "w", {"t": 1})
    b = await states.put("t2", "k", "w", {"t": 2})
    assert (await states.get("t1", "k")).data == {"t": 1} and (await states.get("t2", "k")).data == {"t": 2}
    assert [e.data for e in await states.events("t2", "k")] == [{"t": 2}]
    assert [s.data for s in (await states.query("t2", StateQuery()))[0]] == [{"t": 2}]
    assert await states.event("t2", (await states.events("t1", "k"))[0].id) is None
    assert (await states.event("t2", str(b.latest_sequence))).data == {"t": 2}
    await leases.acquire("t1", lease_resource("k"), "w")
    await states.put("t2", "k", "w", {"t": 3})  # t1's lease does not guard t2's key
    await states.delete("t2", "k")
    assert await states.get("t1", "k") is not None


# the watch


async def _collect(stream, count, timeout=60):
    """Events from `stream` until `count` arrived (fails on a timeout rather than hanging)."""
    got = []
    async with asyncio.timeout(timeout):
        async for batch in stream:
            if batch is None:
                continue
            got += batch
            if len(got) >= count:
                return got
    return got


async def _write_many(states, n, prefix, tenant=T, width=100):
    for start in range(0, n, width):
        await asyncio.gather(*(states.put(tenant, f"{prefix}{i % 37}", "w", {"i": i})
                               for i in range(start, min(start + width, n))))


async def test_watch_replays_a_large_backlog_then_live_events_with_no_gap(states, store):
    await _write_many(states, 3000, "b")
    await states.put("t2", "x", "w", {})  # another tenant's event: never in this stream
    stream = states.watch(T, 0, heartbeat=5)
    first = await stream.__anext__()
    assert 1 <= len(first) <= states_module.WATCH_PAGE
    writers = asyncio.ensure_future(_write_many(states, 600, "live", width=20))  # while the backlog streams
    got = first + await _collect(stream, 3600 - len(first))
    await writers
    await stream.aclose()
    sequences = [e.sequence for e in got]
    assert sequences == sorted(set(sequences)) and len(sequences) == 3600
    every = [e.sequence for e in await store.states.after(T, 0, 10_000)]
    assert sequences == every  # exactly the log, in order
    assert got[-1].data is not None and all(e.state_key[0] in "bl" for e in got)


async def test_watch_resumes_after_a_sequence(states, store):
    await _write_many(states, 30, "r")
    every = [r.sequence for r in await store.states.after(T, 0, 100)]
    middle = every[11]
    stream = states.watch(T, middle)
    got = await _collect(stream, len(every) - 12)
    await states.put(T, "r-live", "w", {})
    got += await _collect(stream, 1)
    await stream.aclose()
    assert [e.sequence for e in got[:-1]] == every[12:] and got[-1].state_key == "r-live"


async def test_a_once_watch_stops_after_at_most_1000_events(states):
    await _write_many(states, 1200, "o")
    got = [batch async for batch in states.watch(T, 0, once=True)]
    events = [e for batch in got for e in batch]
    assert len(events) == 1000 and all(len(b) <= 500 for b in got)
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)
    rest = [e for batch in [b async for b in states.watch(T, events[-1].sequence, once=True)] for e in batch]
    assert len(rest) == 200 and rest[0].sequence > events[-1].sequence
    assert [b async for b in states.watch(T, rest[-1].sequence, once=True)] == []
    assert [b async for b in states.watch("t-empty", 0, once=True)] == []


async def test_an_idle_watch_sends_heartbeats_then_live_events(states):
    stream = states.watch(T, 0, heartbeat=0.05)
    assert await stream.__anext__() is None  # nothing yet: a heartbeat
    put = await states.put(T, "k", "w", {"n": 1})
    batch = await stream.__anext__()
    while batch is None:
        batch = await stream.__anext__()
    assert [e.sequence for e in batch] == [put.latest_sequence]
    await stream.aclose()


async def test_a_stalled_watch_catches_up_even_past_compaction(states, store, clock):
    hub = ChangeHub(store, buffer=4)  # a tiny live buffer: a consumer that pauses falls behind
    slow = States(store, hub)
    stream = slow.watch(T, 0, heartbeat=30)
    await states.put(T, "s", "w", {"n": -1})
    assert len((await stream.__anext__())) == 1  # caught up and waiting on the doorbell
    waiting = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    for i in range(40):  # the consumer is still busy with nothing else: buffer overflows
        await states.put(T, f"s{i}", "w", {"n": i})
    clock.advance(10)
    await store.log.compact(older_than=clock.now())  # the changes a catch-up would read are gone
    got = (await waiting) or []
    got += await _collect(stream, 40 - len(got), timeout=30)
    await stream.aclose()
    assert [e.data["n"] for e in got] == list(range(40))


async def test_watch_ends_when_the_hub_closes(states, hub):
    stream = states.watch(T, 0, heartbeat=30)
    pending = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.01)
    hub.close_all()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)


async def test_a_watch_on_another_replica_sees_the_writes(open_store, store_kind):
    if store_kind != "postgres":
        pytest.skip("replicas share a PostgreSQL database")
    writer_store = await open_store()
    reader_store = await open_store(tick_seconds=0.05)
    writer = States(writer_store, ChangeHub(writer_store))
    reader_hub = ChangeHub(reader_store)
    feed = asyncio.ensure_future(reader_hub.feed.run(0.05))
    try:
        await writer.put(T, "before", "w", {"n": 0})
        stream = States(reader_store, reader_hub).watch(T, 0, heartbeat=30)
        first = await stream.__anext__()
        await asyncio.gather(*(writer.put(T, f"r{i}", "w", {"n": i + 1}) for i in range(20)))
        got = first + await _collect(stream, 21 - len(first), timeout=30)
        await stream.aclose()
        assert sorted(e.data["n"] for e in got) == list(range(21))
        assert [e.sequence for e in got] == sorted(e.sequence for e in got)
    finally:
        feed.cancel()


async def test_states_persist_across_a_restart(open_store, clock):
    s = await open_store()
    first = States(s, ChangeHub(s))
    put = await first.put(T, "durable", "w", {"a": [1, 2]})
    await first.delete(T, "durable")
    await s.close()
    s2 = await open_store()
    again = States(s2, ChangeHub(s2))
    assert await again.get(T, "durable") is None
    assert (await again.get(T, "durable", at_sequence=put.latest_sequence)).data == {"a": [1, 2]}
    resurrected = await again.put(T, "durable", "w", {})
    assert resurrected.created_at == put.created_at and resurrected.latest_sequence > put.latest_sequence


async def test_kv_limits_do_not_apply_to_state_documents(store, hub):
    small = KV(store)  # default native limits: 1 MiB values, 1024-byte keys
    big = {"blob": "x" * (2 * 1024 * 1024)}
    st = States(store, hub)
    put = await st.put(T, "é" * 1024, "w", big)
    assert (await st.get(T, "é" * 1024)).data == big and put.latest_sequence > 0
    assert small.limits.max_value_bytes < 2 * 1024 * 1024
