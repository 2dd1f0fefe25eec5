"""Leases through the SDK against real server processes: the blocking and asyncio clients on one server,
and 100 contenders over 3 PostgreSQL replicas checked from a recorded history."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stigmer.client import (
    AsyncClient, Client, FenceStaleError, Lease, LeaseConflictError, LeaseExpiredError, NotFoundError, Retry,
)


@pytest.fixture
def client(shared_server):
    with Client(shared_server.url) as c:
        yield c


def test_acquire_renew_release_and_fenced_writes(client, ns):
    res = f"{ns}/job"
    lease = client.acquire_lease(res, "w1", ttl=30)
    assert isinstance(lease, Lease) and lease.fencing_token == 1 and lease.active and lease.fence == f"{res}:1"
    with pytest.raises(LeaseConflictError) as info:
        client.acquire_lease(res, "w2")
    assert info.value.status == 409 and info.value.details["holder"] == "w1"
    renewed = client.renew_lease(res, lease.lease_id, ttl=60)
    assert renewed.expires_at > lease.expires_at and client.get_lease(res).renewed_at == renewed.renewed_at
    e = client.put(ns, "out", 1, fence=lease)
    assert e.version == 1 and client.incr(ns, "n", fence=lease.fence).value == 1
    assert client.txn(ops=[{"op": "put", "namespace": ns, "key": "t", "value": 1}], fence=lease).revision > 0
    released = client.release_lease(res, lease.lease_id)
    assert not released.active and released.released_at is not None
    with pytest.raises(NotFoundError):
        client.release_lease(res, fencing_token=1)
    second = client.acquire_lease(res, "w2", ttl=30)
    assert second.fencing_token == 2
    for write in (lambda: client.put(ns, "out", 2, fence=lease), lambda: client.delete(ns, "out", fence=lease),
                  lambda: client.merge(ns, "m", {"a": 1}, fence=lease)):
        with pytest.raises(FenceStaleError) as info:
            write()
        assert info.value.details["reason"] == "superseded" and info.value.details["current_token"] == 2
    assert client.get(ns, "out").value == 1
    with pytest.raises(NotFoundError):  # superseded: not found, never "expired"
        client.renew_lease(res, lease.lease_id)
    with pytest.raises(NotFoundError):
        client.get_lease(f"{ns}/never")
    assert client.get("_leases", res).value["fencing_token"] == 2


def test_a_short_lease_expires_and_renewing_it_says_so(client, ns):
    res = f"{ns}/short"
    lease = client.acquire_lease(res, "w1", ttl=0.2)
    deadline = time.monotonic() + 10
    while client.get_lease(res).active:  # the real clock: the server's sweeper emits the expiry
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(LeaseExpiredError):
        client.renew_lease(res, lease.lease_id)
    assert client.acquire_lease(res, "w2").fencing_token == 2


def test_a_blocking_acquire_is_handed_the_lease_on_release(client, shared_server, ns):
    res = f"{ns}/handover"
    first = client.acquire_lease(res, "w1", ttl=30)
    got: list[Lease] = []
    waiting = threading.Event()

    def wait_for_it():
        with Client(shared_server.url) as other:
            waiting.set()
            got.append(other.acquire_lease(res, "w2", ttl=30, wait=20))

    t = threading.Thread(target=wait_for_it)
    t.start()
    waiting.wait(5)
    deadline = time.monotonic() + 10
    while True:  # the waiter is queued once a caller that will not wait is refused for the queue's sake
        try:
            client.acquire_lease(res, "probe")
        except LeaseConflictError as exc:
            if "queued" in exc.details:
                break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    client.release_lease(res, first.lease_id)
    t.join(20)
    assert got and got[0].holder == "w2" and got[0].fencing_token == 2


async def test_the_async_client(shared_server, ns):
    async with AsyncClient(shared_server.url) as c:
        lease = await c.acquire_lease(f"{ns}/a", "w1", ttl=30)
        assert (await c.put(ns, "x", 1, fence=lease)).version == 1
        assert (await c.renew_lease(f"{ns}/a", fencing_token=lease.fencing_token)).active
        await c.release_lease(f"{ns}/a", lease.lease_id)
        with pytest.raises(FenceStaleError):
            await c.put(ns, "x", 2, fence=lease)
        assert not (await c.get_lease(f"{ns}/a")).active


async def test_a_hundred_contenders_over_three_replicas_never_share_the_lease(replicas, ns):
    """Each contender waits for the lease on its replica, writes under its fence, and releases. The
    recorded history (server timestamps and tokens) must show tokens 1..100 in acquisition order and no
    two holding intervals overlapping."""
    res, n = f"{ns}/exclusive", 100
    clients = [AsyncClient(r.url, retry=Retry(retries=0), timeout=60) for r in replicas]
    history: list[tuple[Lease, Lease, float, float]] = []  # acquired, released, client-side hold interval

    async def contend(i: int) -> None:
        c = clients[i % 3]
        lease = await c.acquire_lease(res, f"c{i}", ttl=30, wait=30)
        held_from = time.monotonic()
        await c.incr(ns, "writes", fence=lease)
        await c.append(ns, "log", lease.fencing_token, fence=lease)
        held_to = time.monotonic()
        released = await c.release_lease(res, lease.lease_id)
        history.append((lease, released, held_from, held_to))

    try:
        await asyncio.gather(*[contend(i) for i in range(n)])
        final = await clients[0].get(ns, "writes")
        log = (await clients[1].get(ns, "log")).value
    finally:
        for c in clients:
            await c.aclose()
    by_token = sorted(history, key=lambda h: h[0].fencing_token)
    assert [h[0].fencing_token for h in by_token] == list(range(1, n + 1))
    assert len({h[0].holder for h in history}) == n
    for (a, a_released, a_from, a_to), (b, _, b_from, _) in zip(by_token, by_token[1:]):
        assert a.created_at <= b.created_at and a_released.released_at <= b.created_at, (a, a_released, b)
        assert a_to <= b_from, "two contenders held the lease at once (seen by the clients)"
    assert final.value == n and log == list(range(1, n + 1))  # every fenced write, in token order


def _queued_behind(client, res) -> bool:
    try:
        client.acquire_lease(res, "probe")
    except LeaseConflictError as exc:
        return "queued" in exc.details
    raise AssertionError("the lease was free")


def test_a_waiter_whose_client_leaves_is_dropped_from_the_queue_and_never_granted(client, shared_server, ns):
    import socket
    from urllib.parse import urlsplit

    res = f"{ns}/left"
    first = client.acquire_lease(res, "w1", ttl=30)
    url = urlsplit(shared_server.url)
    body = b'{"holder":"gone","ttl":30,"wait":20}'
    s = socket.create_connection((url.hostname, url.port))
    s.sendall(b"POST /v1/leases/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (res.encode(), url.netloc.encode(), len(body), body))
    deadline = time.monotonic() + 10
    while not _queued_behind(client, res):  # the raw client is queued
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s.close()
    deadline = time.monotonic() + 10
    while _queued_behind(client, res):  # the server notices the disconnect and drops the waiter
        assert time.monotonic() < deadline
        time.sleep(0.01)
    client.release_lease(res, first.lease_id)
    second = client.acquire_lease(res, "w3")  # not granted to the client that left
    assert second.holder == "w3" and second.fencing_token == 2
