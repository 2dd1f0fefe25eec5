"""The webhook outbox on both stores: enqueue with the change, claim with a lease, the retry schedule, the
dead letter, stats and reads per tenant, subject deletes. The receiver here is an httpx transport (outside
us); tests/e2e/test_webhook_delivery.py sends to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from stigmer.engine import webhooks as wh
from stigmer.engine.types import WebhookOutcome
from stigmer.engine.webhooks import Webhooks, backoff, body_of, signature

T, U = "t1", "t2"
URL = "http://receiver.test/hook"
JITTER = 0.25  # the injected U(0, 1): every delay is 0.75 × the base


class Receiver:
    """Answers each POST with the next of `answers` (a status, or an exception to raise), then 200."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, content=b"e" * 300 if answer >= 300 else b"ok")


def outbox(store, clock, receiver=None, **options) -> Webhooks:
    options.setdefault("url", URL)
    return Webhooks(store, clock=clock, rng=lambda: JITTER, transport=httpx.MockTransport(receiver or Receiver()),
                    **options)


async def enqueue(store, hooks, tenant=T, event="thing.happened", data=None, tenant_id="acme"):
    return await store.submit(tenant, lambda tx: hooks.enqueue_in(tx, event, data or {"subject_id": "s1"},
                                                                  tenant_id=tenant_id))


async def test_an_event_is_written_with_its_mutation_and_read_back(store, clock):
    hooks = outbox(store, clock)
    event_id = await enqueue(store, hooks, data={"id": "e1", "subject_id": "user-42", "note": "é"})
    e = await hooks.get(T, event_id)
    assert (e.tenant, e.id, e.event, e.tenant_id, json.loads(e.data), e.subject_id) == (
        T, event_id, "thing.happened", "acme", {"id": "e1", "subject_id": "user-42", "note": "é"}, "user-42")
    assert (e.status, e.attempts, e.max_attempts, e.created_at, e.next_attempt_at) == (
        "pending", 0, 5, clock.now(), clock.now())
    assert (e.last_attempt_at, e.last_error, e.http_status, e.delivered_at, e.claim) == (None,) * 5
    assert len(event_id) == 36 and event_id[14] == "4"  # a uuid4 in canonical form


async def test_a_mutation_that_fails_after_enqueueing_leaves_no_event(store, clock):
    hooks = outbox(store, clock)
    kept = await enqueue(store, hooks)
    ids = []

    def enqueue_then_fail(tx):
        ids.append(hooks.enqueue_in(tx, "thing.happened", {"subject_id": "s1"}, tenant_id=None))
        raise RuntimeError("the change is refused")

    # alone, and grouped with a mutation that commits (the group is undone for the failing one only)
    with pytest.raises(RuntimeError):
        await store.submit(T, enqueue_then_fail)
    results = await asyncio.gather(store.submit(T, enqueue_then_fail), enqueue(store, hooks),
                                   return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], str)
    assert len(ids) >= 2 and [await hooks.get(T, i) for i in ids] == [None] * len(ids)  # a store may rerun fn
    assert (await hooks.stats(T)).pending == 2 and await hooks.get(T, kept) is not None
    assert await hooks.deliver_due() == 2


async def test_without_a_url_nothing_is_written(store, clock):
    hooks = outbox(store, clock, url="")
    assert not hooks.enabled
    assert await enqueue(store, hooks) is None
    assert await hooks.stats(T) == wh.WebhookStats(0, 0, 0, 0, None)
    assert await hooks.deliver_due() == 0


async def test_a_2xx_delivers_once_with_the_body_and_headers(store, clock):
    receiver = Receiver(204)
    hooks = outbox(store, clock, receiver, secret="s3cret")
    event_id = await enqueue(store, hooks, data={"subject_id": "s1", "n": 1})
    clock.advance(2.5)
    assert await hooks.deliver_due() == 1
    (request,) = receiver.requests
    body = request.content
    assert json.loads(body) == {"event": "thing.happened", "timestamp": wh.offset_time(clock.now() - 2.5),
                                "data": {"subject_id": "s1", "n": 1}, "tenant_id": "acme"}
    assert list(json.loads(body)) == ["event", "timestamp", "data", "tenant_id"]
    assert request.headers["content-type"] == "application/json" and request.headers["x-webhook-id"] == event_id
    assert request.headers["x-signature"] == signature("s3cret", body)
    e = await hooks.get(T, event_id)
    assert (e.status, e.attempts, e.http_status, e.delivered_at, e.last_attempt_at, e.next_attempt_at, e.claim) == (
        "delivered", 1, 204, clock.now(), clock.now(), None, None)
    clock.advance(10_000)
    assert await hooks.deliver_due() == 0 and len(receiver.requests) == 1


async def test_an_unsigned_delivery_has_no_signature(store, clock):
    receiver = Receiver()
    hooks = outbox(store, clock, receiver)
    await enqueue(store, hooks)
    await hooks.deliver_due()
    assert "x-signature" not in receiver.requests[0].headers


async def test_failures_follow_the_backoff_schedule_then_the_dead_letter(store, clock):
    receiver = Receiver(500, 503, httpx.ConnectError("connection refused"), 404, 500)
    hooks = outbox(store, clock, receiver)
    event_id = await enqueue(store, hooks)
    expected = [22.5, 90.0, 360.0, 1440.0]  # 30·4^(n−1) × (0.5 + 0.25)
    assert [backoff(n, JITTER) for n in (1, 2, 3, 4)] == expected
    for attempt, delay in enumerate(expected, start=1):
        assert await hooks.deliver_due() == 1
        e = await hooks.get(T, event_id)
        assert (e.status, e.attempts, e.next_attempt_at, e.last_attempt_at) == (
            "pending", attempt, clock.now() + delay, clock.now())
        clock.advance(delay - 0.001)
        assert await hooks.deliver_due() == 0  # not due yet
        clock.advance(0.001)
    assert await hooks.deliver_due() == 1
    e = await hooks.get(T, event_id)
    assert (e.status, e.attempts, e.next_attempt_at, e.http_status) == ("dead_letter", 5, None, 500)
    assert e.last_error == "HTTP 500: " + "e" * 200
    clock.advance(100_000)
    assert await hooks.deliver_due() == 0 and len(receiver.requests) == 5
    assert await hooks.stats(T) == wh.WebhookStats(0, 0, 1, 1, None)


async def test_each_failure_is_recorded(store, clock):
    receiver = Receiver(503, httpx.ConnectError("connection refused"), 301)
    hooks = outbox(store, clock, receiver, max_attempts=3)
    event_id = await enqueue(store, hooks)
    seen = []
    for _ in range(3):
        await hooks.deliver_due()
        e = await hooks.get(T, event_id)
        seen.append((e.status, e.http_status, e.last_error))
        clock.advance(10_000)
    assert seen == [("pending", 503, "HTTP 503: " + "e" * 200),
                    ("pending", None, "ConnectError: connection refused"),
                    ("dead_letter", 301, "HTTP 301: " + "e" * 200)]  # redirects are not followed


async def test_a_claim_is_a_lease_and_only_its_holder_records_the_outcome(open_store, clock):
    first = await open_store()
    other = await open_store() if first.describe()["kind"] == "postgresql" else first  # a second replica
    hooks = outbox(first, clock)
    event_id = await enqueue(first, hooks)
    now = clock.now()
    (claimed,) = await first.webhooks.claim(now, now + 65, "claim-a", 10)
    assert (claimed.id, claimed.claim, claimed.next_attempt_at, claimed.last_attempt_at) == (
        event_id, "claim-a", now + 65, now)
    assert await other.webhooks.claim(now, now + 65, "claim-b", 10) == []  # held: no one else gets it
    clock.advance(65)  # the holder died: its lease ran out
    (again,) = await other.webhooks.claim(clock.now(), clock.now() + 65, "claim-b", 10)
    assert again.id == event_id and again.claim == "claim-b"
    late = WebhookOutcome(event_id, "claim-a", "delivered", 1, None, None, 200, clock.now())
    assert await first.webhooks.settle([late]) == 0  # the first holder's late answer changes nothing
    assert (await hooks.get(T, event_id)).claim == "claim-b"
    assert await other.webhooks.settle([WebhookOutcome(event_id, "claim-b", "delivered", 1, None, None, 200,
                                                       clock.now())]) == 1
    e = await hooks.get(T, event_id)
    assert (e.status, e.claim, e.http_status) == ("delivered", None, 200)


async def test_a_worker_that_died_mid_attempt_is_replaced_after_its_lease(store, clock):
    receiver = Receiver()
    hooks = outbox(store, clock, receiver)
    event_id = await enqueue(store, hooks)
    now = clock.now()
    await store.webhooks.claim(now, now + hooks.timeout + wh.LEASE_MARGIN, "dead-worker", 10)  # and then nothing
    assert await hooks.deliver_due() == 0
    clock.advance(hooks.timeout + wh.LEASE_MARGIN)
    assert await hooks.deliver_due() == 1
    e = await hooks.get(T, event_id)
    assert (e.status, e.attempts, len(receiver.requests)) == ("delivered", 1, 1)


async def test_due_events_are_claimed_oldest_first_and_drained_past_one_batch(store, clock):
    receiver = Receiver()
    hooks = outbox(store, clock, receiver)
    ids = []
    for i in range(wh.BATCH * 2 + 5):
        ids.append(await enqueue(store, hooks, data={"n": i}))
        clock.advance(0.001)
    assert await hooks.deliver_due() == len(ids)
    assert sorted(r.headers["x-webhook-id"] for r in receiver.requests[:wh.BATCH]) == sorted(ids[:wh.BATCH])
    assert sorted(r.headers["x-webhook-id"] for r in receiver.requests) == sorted(ids)
    assert (await hooks.stats(T)).delivered == len(ids)


async def test_stats_and_reads_are_per_tenant(store, clock):
    receiver = Receiver(200, 500)
    hooks = outbox(store, clock, receiver, max_attempts=1)
    delivered = await enqueue(store, hooks, T)
    clock.advance(1)
    dead = await enqueue(store, hooks, T)
    await hooks.deliver_due()
    clock.advance(10)
    pending = await enqueue(store, hooks, T)
    theirs = await enqueue(store, hooks, U)
    clock.advance(5)
    assert await hooks.stats(T) == wh.WebhookStats(1, 1, 1, 3, 5.0)
    assert await hooks.stats(U) == wh.WebhookStats(1, 0, 0, 1, 5.0)
    assert await hooks.stats("nobody") == wh.WebhookStats(0, 0, 0, 0, None)
    statuses = [(await hooks.get(T, i)).status for i in (delivered, dead, pending)]
    assert statuses == ["delivered", "dead_letter", "pending"]
    assert await hooks.get(U, delivered) is None and await hooks.get(T, theirs) is None
    assert await hooks.get(T, "not-an-id") is None


async def test_settled_events_past_the_retention_are_purged_in_batches_and_pending_ones_never(store, clock,
                                                                                              monkeypatch):
    monkeypatch.setattr(wh, "PURGE_BATCH", 1)  # three old settled events take three statements
    hooks = outbox(store, clock, Receiver(200, 500, 200), max_attempts=1, retention_hours=1)
    old = [await enqueue(store, hooks, tenant) for tenant in (T, T, U)]
    await hooks.deliver_due()  # delivered, dead_letter, delivered
    stuck = await enqueue(store, hooks, T)  # pending: not due yet when claimed below, never purged
    clock.advance(3600 + 1)
    fresh = await enqueue(store, hooks, T)
    await store.webhooks.claim(clock.now(), clock.now() + 60, "other", 1)  # `stuck` is held by another worker
    await hooks.deliver_due()  # `fresh` is delivered now: too young to go
    assert await hooks.purge_settled() == 3
    assert [await hooks.get(t, i) for t, i in zip((T, T, U), old)] == [None, None, None]
    assert (await hooks.get(T, stuck)).status == "pending" and (await hooks.get(T, fresh)).status == "delivered"
    assert await hooks.purge_settled() == 0


async def test_the_worker_purges_once_an_hour_and_a_retention_of_zero_keeps_every_event(store, clock):
    hooks = outbox(store, clock, retention_hours=1)
    old = await enqueue(store, hooks)
    await hooks.deliver_due()
    clock.advance(2 * 3600)
    worker = asyncio.create_task(hooks.run())  # its first round purges
    try:
        for _ in range(1000):
            if await hooks.get(T, old) is None:
                break
            await asyncio.sleep(0.01)
    finally:
        worker.cancel()
    assert await hooks.get(T, old) is None
    again = await enqueue(store, hooks)
    await hooks.deliver_due()
    clock.advance(wh.PURGE_SECONDS / 2)
    assert await hooks.purge_if_due() == 0  # the last purge was less than an hour ago
    clock.advance(wh.PURGE_SECONDS / 2 + 1)  # an hour since the purge, and `again` is past the retention
    assert await hooks.purge_if_due() == 1 and await hooks.get(T, again) is None

    keeper = outbox(store, clock, retention_hours=0)
    kept = await enqueue(store, keeper)
    await keeper.deliver_due()
    clock.advance(10 * 365 * 86400)
    assert await keeper.purge_if_due() == 0 and (await keeper.get(T, kept)).status == "delivered"
    with pytest.raises(ValueError):
        outbox(store, clock, retention_hours=-1)


async def test_a_subject_delete_removes_its_events_in_its_scope(store, clock):
    hooks = outbox(store, clock)
    mine = [await enqueue(store, hooks, data={"subject_id": "s1"}),
            await enqueue(store, hooks, data={"count": 2, "subject_ids": ["s1"]}),
            await enqueue(store, hooks, data={"subject_id": "s1"}, tenant_id=None)]
    kept = [await enqueue(store, hooks, data={"count": 2, "subject_ids": ["s1", "s2"]}),
            await enqueue(store, hooks, data={"subject_id": "s2"}),
            await enqueue(store, hooks, data={"subject_id": "s1"}, tenant_id="other"),
            await enqueue(store, hooks, U, data={"subject_id": "s1"})]
    await hooks.deliver_due()  # delivered events go too

    assert await store.submit(T, lambda tx: hooks.delete_subject_in(tx, "s1", "acme")) == 2
    assert [await hooks.get(T, i) for i in mine[:2]] == [None, None]
    assert await store.submit(T, lambda tx: hooks.delete_subject_in(tx, "s1", "acme")) == 0
    assert await store.submit(T, lambda tx: hooks.delete_subject_in(tx, "s1", None)) == 2  # unscoped: any tenant_id
    assert await hooks.get(T, mine[2]) is None and await hooks.get(T, kept[2]) is None
    assert all([await hooks.get(T, i) for i in kept[:2]]) and await hooks.get(U, kept[3]) is not None


async def test_an_enqueue_wakes_the_worker_after_its_commit(store, clock, monkeypatch):
    monkeypatch.setattr(wh, "POLL_SECONDS", 3600.0)  # so only the wake can make it deliver
    done = asyncio.Event()

    def receive(request):
        done.set()
        return httpx.Response(200)

    hooks = outbox(store, clock, receive)
    worker = asyncio.create_task(hooks.run())
    try:
        await asyncio.sleep(0)  # the worker's first look finds nothing and waits
        await enqueue(store, hooks)
        await asyncio.wait_for(done.wait(), 10)
    finally:
        worker.cancel()
        await hooks.aclose()


async def test_after_commit_runs_only_for_mutations_that_commit(store):
    called = []

    def ok(tx):
        tx.after_commit(lambda: called.append("ok"))
        tx.kv.delete("ns", "k")

    def fails(tx):
        tx.after_commit(lambda: called.append("failed"))
        raise RuntimeError("refused")

    results = await asyncio.gather(store.submit(T, ok), store.submit(T, fails), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], RuntimeError)
    assert called == ["ok"]


def test_the_body_keeps_the_bytes_and_the_offset_timestamp():
    e = wh.WebhookEvent("t", "id", "x.y", None, b'{"b":1,"a":"\xc3\xa9"}', None, "pending", 0, 5, 1_767_225_600.0, 0.0)
    assert body_of(e) == ('{"event":"x.y","timestamp":"2026-01-01T00:00:00+00:00","data":{"b":1,"a":"é"},'
                          '"tenant_id":null}').encode()
    assert wh.offset_time(1_767_225_600.123456) == "2026-01-01T00:00:00.123456+00:00"


async def test_the_backlog_counts_pending_events_of_every_tenant(store, clock):
    hooks = outbox(store, clock)
    assert await hooks.backlog() == 0
    await enqueue(store, hooks)
    await enqueue(store, hooks, tenant=U)
    assert await hooks.backlog() == 2
    assert await hooks.deliver_due() == 2
    assert await hooks.backlog() == 0
