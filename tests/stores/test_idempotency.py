"""Idempotency records and the idempotency engine on both stores (a real SQLite file, a real PostgreSQL)."""

import asyncio

import pytest

from stigmer.engine import idempotency as idem_mod, kv as kv_mod
from stigmer.engine.errors import IdempotencyConflict, IdempotencyInProgress, InvalidArgument
from stigmer.engine.idempotency import Idempotency, Replay, check_in, fingerprint, purge_expired, record_in, reserve_in
from stigmer.engine.kv import Op

T = "t1"
FP = fingerprint("PUT", "/x", b'{"a":1}')
OTHER = fingerprint("PUT", "/x", b'{"a":2}')


def counted_incr(scope: str, key: str, fp: bytes, retention: float = 100.0):
    """A mutation that increments `n` once per (key, fingerprint): the AgentState way (check, write, record)."""
    def run(tx):
        replay = check_in(tx, scope, key, fp)
        if replay is not None:
            return replay
        e = kv_mod.write_in(tx, Op("incr", "ns", "n", amount=1), kv_mod.live(tx, "ns", "n"))
        answer = Replay(200, b'{"n":%d}' % int(e.value), (("X-Stigmer-Revision", str(e.mod_rev)),))
        record_in(tx, scope, key, fp, answer.status, answer.body, answer.headers, retention=retention)
        return answer
    return run


async def counter(kv) -> int:
    e = await kv.get(T, "ns", "n")
    return 0 if e is None else int(e.value)


async def test_check_in_replays_what_record_in_stored_and_refuses_another_body(store, kv):
    first = await store.submit(T, counted_incr("agentstate", "k1", FP))
    again = await store.submit(T, counted_incr("agentstate", "k1", FP))
    assert again == first == Replay(200, b'{"n":1}', (("X-Stigmer-Revision", first.headers[0][1]),))
    assert await counter(kv) == 1  # the replay wrote nothing
    with pytest.raises(IdempotencyConflict) as e:
        await store.submit(T, counted_incr("agentstate", "k1", OTHER))
    assert e.value.code == "idempotency_conflict"
    # keys are per tenant and per scope
    assert (await store.submit("t2", counted_incr("agentstate", "k1", OTHER))).body == b'{"n":1}'
    assert (await store.submit(T, counted_incr("native", "k1", OTHER))).body == b'{"n":2}'
    stored = await store.idempotency.get(T, "agentstate", "k1")
    assert (stored.state, stored.status, stored.fingerprint, stored.headers) == ("done", 200, FP, first.headers)


async def test_a_record_commits_only_with_its_mutation(store, kv):
    def fails_after_recording(tx):
        record_in(tx, "agentstate", "k", FP, 200, b"{}")
        kv_mod.write_in(tx, Op("incr", "ns", "n", amount=1), None)
        raise InvalidArgument("refused after writing")

    with pytest.raises(InvalidArgument):
        await store.submit(T, fails_after_recording)
    assert await store.idempotency.get(T, "agentstate", "k") is None
    assert await kv.get(T, "ns", "n") is None


async def test_concurrent_duplicates_in_transaction_execute_once(store, kv):
    answers = await asyncio.gather(*[store.submit(T, counted_incr("agentstate", "same", FP)) for _ in range(20)])
    assert len(set(answers)) == 1 and answers[0].body == b'{"n":1}'
    assert await counter(kv) == 1


async def test_a_record_expires_after_its_retention_and_is_purged(store, kv, clock):
    await store.submit(T, counted_incr("agentstate", "k", FP, retention=10))
    await store.submit(T, counted_incr("agentstate", "young", FP, retention=30))
    await store.submit("t2", counted_incr("agentstate", "k", FP, retention=10))
    clock.advance(9.9)
    with pytest.raises(IdempotencyConflict):  # still live
        await store.submit(T, counted_incr("agentstate", "k", OTHER, retention=10))
    assert await purge_expired(store) == 0
    clock.advance(0.1)
    # expired: the same key counts as new, even with another body, before any purge
    assert (await store.submit(T, counted_incr("agentstate", "k", OTHER, retention=10))).body == b'{"n":3}'
    clock.advance(10)
    assert await purge_expired(store, limit=1) == 2  # both tenants' expired records, a batch at a time
    assert await store.idempotency.get(T, "agentstate", "k") is None
    assert await store.idempotency.get("t2", "agentstate", "k") is None
    assert (await store.idempotency.get(T, "agentstate", "young")).state == "done"
    assert await purge_expired(store) == 0


@pytest.fixture
def idem(store):
    return Idempotency(store, retention=100)


def handler_counting(kv, calls: list, status: int = 200, gate: asyncio.Event | None = None):
    async def handle() -> Replay:
        calls.append(1)
        if gate is not None:
            await gate.wait()
        e = await kv.incr(T, "ns", "n", 1)
        return Replay(status, b'{"n":%d}' % int(e.value), (("ETag", f'"{e.version}"'),))
    return handle


async def test_run_executes_once_and_replays_the_first_answer(idem, kv):
    calls: list = []
    first = await idem.run(T, "native", "k", FP, handler_counting(kv, calls))
    again = await idem.run(T, "native", "k", FP, handler_counting(kv, calls))
    assert first == again == Replay(200, b'{"n":1}', (("ETag", '"1"'),)) and len(calls) == 1
    with pytest.raises(IdempotencyConflict):
        await idem.run(T, "native", "k", OTHER, handler_counting(kv, calls))
    assert len(calls) == 1 and await counter(kv) == 1
    with pytest.raises(InvalidArgument):
        await idem.run(T, "native", "k" * 256, FP, handler_counting(kv, calls))


async def test_a_refused_or_failed_request_does_not_consume_the_key(idem, kv):
    calls: list = []
    refused = await idem.run(T, "native", "k", FP, handler_counting(kv, calls, status=409))
    assert refused.status == 409 and await idem.get(T, "native", "k") is None

    async def boom() -> Replay:
        calls.append(1)
        raise InvalidArgument("bad")

    with pytest.raises(InvalidArgument):
        await idem.run(T, "native", "k", FP, boom)
    assert await idem.get(T, "native", "k") is None
    ok = await idem.run(T, "native", "k", OTHER, handler_counting(kv, calls))  # free for another body
    assert ok.status == 200 and len(calls) == 3


async def test_twenty_concurrent_duplicates_execute_once_with_one_answer(idem, kv):
    calls: list = []
    gate = asyncio.Event()
    runs = [asyncio.ensure_future(idem.run(T, "native", "k", FP, handler_counting(kv, calls, gate=gate)))
            for _ in range(20)]
    while not calls:  # the first holds the key inside its handler; the others find it pending
        await asyncio.sleep(0)
    gate.set()
    answers = await asyncio.gather(*runs)
    assert len(calls) == 1 and await counter(kv) == 1
    assert len(set(answers)) == 1 and answers[0].body == b'{"n":1}'


async def test_duplicates_across_replicas_execute_once(open_store, store_kind, kv):
    if store_kind == "sqlite":
        pytest.skip("one process owns a SQLite file: replicas are a PostgreSQL matter")
    other = await open_store()
    engines = [Idempotency(kv.store, retention=100), Idempotency(other, retention=100)]
    calls: list = []
    answers = await asyncio.gather(*[engines[i % 2].run(T, "native", "k", FP, handler_counting(kv, calls))
                                     for i in range(20)])
    assert len(calls) == 1 and await counter(kv) == 1 and len(set(answers)) == 1


async def test_a_waiting_duplicate_gives_up_after_the_bounded_wait(idem, kv, store, monkeypatch):
    await store.submit(T, lambda tx: reserve_in(tx, "native", "k", FP, "someone-else", 1000))
    monkeypatch.setattr(idem_mod, "WAIT_SECONDS", 0.05)
    calls: list = []
    with pytest.raises(IdempotencyInProgress) as e:
        await idem.run(T, "native", "k", FP, handler_counting(kv, calls))
    assert e.value.code == "idempotency_in_progress" and not calls
    with pytest.raises(IdempotencyConflict):  # another body is refused at once, pending or not
        await idem.run(T, "native", "k", OTHER, handler_counting(kv, calls))
    with pytest.raises(IdempotencyInProgress):  # the in-transaction face says the same
        await store.submit(T, counted_incr("native", "k", FP))


async def test_an_abandoned_reservation_is_reclaimed_after_60_seconds(idem, kv, store, clock, monkeypatch):
    await store.submit(T, lambda tx: reserve_in(tx, "native", "k", FP, "crashed", 1000))
    monkeypatch.setattr(idem_mod, "WAIT_SECONDS", 0.05)
    calls: list = []
    clock.advance(59.9)
    with pytest.raises(IdempotencyInProgress):
        await idem.run(T, "native", "k", FP, handler_counting(kv, calls))
    clock.advance(0.1)
    answer = await idem.run(T, "native", "k", FP, handler_counting(kv, calls))
    assert answer.status == 200 and len(calls) == 1
    assert (await idem.get(T, "native", "k")).state == "done"


async def test_a_waiter_reclaims_when_the_holder_goes_quiet(idem, kv, store, clock):
    await store.submit(T, lambda tx: reserve_in(tx, "native", "k", FP, "crashed", 1000))
    calls: list = []
    waiting = asyncio.ensure_future(idem.run(T, "native", "k", FP, handler_counting(kv, calls)))
    while not idem._waiting:  # it found the key held and waits for it
        await asyncio.sleep(0)
    assert not waiting.done() and not calls
    clock.advance(60)
    assert (await waiting).status == 200 and len(calls) == 1


async def test_a_caller_that_leaves_does_not_lose_the_answer(idem, kv):
    calls: list = []
    gate = asyncio.Event()
    first = asyncio.ensure_future(idem.run(T, "native", "k", FP, handler_counting(kv, calls, gate=gate)))
    while not calls:
        await asyncio.sleep(0)
    first.cancel()
    duplicate = asyncio.ensure_future(idem.run(T, "native", "k", FP, handler_counting(kv, calls)))
    gate.set()
    assert (await duplicate).body == b'{"n":1}' and len(calls) == 1  # the first's write ran on and was stored
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_running_request_keeps_its_reservation_past_60_seconds(idem, kv, store, clock, monkeypatch):
    monkeypatch.setattr(idem_mod, "RENEW_SECONDS", 0.001)
    monkeypatch.setattr(idem_mod, "WAIT_SECONDS", 0.05)
    calls: list = []
    gate = asyncio.Event()
    slow = asyncio.ensure_future(idem.run(T, "native", "k", FP, handler_counting(kv, calls, gate=gate)))
    while not calls:
        await asyncio.sleep(0)
    clock.advance(61)
    async with asyncio.timeout(5):
        while (await idem.get(T, "native", "k")).created_at != clock.now():  # renewed since the clock moved
            await asyncio.sleep(0.001)
    with pytest.raises(IdempotencyInProgress):  # alive: not reclaimed, and the duplicate does not run
        await idem.run(T, "native", "k", FP, handler_counting(kv, calls))
    gate.set()
    assert (await slow).status == 200 and len(calls) == 1
    assert (await idem.run(T, "native", "k", FP, handler_counting(kv, calls))) == await slow
