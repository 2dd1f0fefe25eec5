"""Webhook delivery over real HTTP to a receiver written here (http.server in a thread): signatures checked
by the receiver, retries on the test clock, timeouts, refused connections, the app's worker, and no double
delivery by concurrent workers, in one process and in three replica processes on one PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stigmer.clock import ManualClock
from stigmer.engine import webhooks as wh
from stigmer.engine.webhooks import Webhooks
from stigmer.store.sqlite import SQLiteStore
from local_http import JSONHandler, LocalServer, free_port, running
from pg_support import ON_POSTGRES, database_for, fresh_tables, postgres_url

SECRET = "whsec-test-0001"
SRC = str(Path(__file__).resolve().parents[2] / "src")


class Receiver(LocalServer):
    """Answers POSTs with the statuses in `script` in turn ("hang": no answer until released), then 200;
    keeps every request and counts each X-Webhook-Id."""

    request_queue_size = 256  # many workers connect at once

    def __init__(self, script=(), delay: float = 0.0):
        super().__init__(_Handler)
        self.script = list(script)
        self.delay = delay
        self.requests: list[tuple[dict, bytes]] = []
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def wait_for(self, n: int, timeout: float = 30.0) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.requests) >= n, timeout)


class _Handler(JSONHandler):
    server: Receiver

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.server.lock:
            self.server.requests.append((dict(self.headers), body))
            self.server.seen[self.headers["x-webhook-id"]] += 1
            answer = self.server.script.pop(0) if self.server.script else 200
            self.server.lock.notify_all()
        if answer == "hang":
            self.server.release.wait(30)
            return
        if self.server.delay:
            self.server.release.wait(self.server.delay)
        reply = b"boom" if answer >= 300 else b""
        self.send_response(answer)
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def receiving(script=(), delay: float = 0.0) -> contextlib.AbstractContextManager[Receiver]:
    return running(Receiver(script, delay))


def verified(headers: dict, body: bytes, secret: str) -> bool:
    """What a receiver does: recompute the HMAC of the raw body and compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Signature", ""), expected)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
async def open_store(tmp_path, clock, request):
    """Handles on this run's store (the PostgreSQL run: each handle is another replica of one database)."""
    opened = []
    url = None
    if ON_POSTGRES:
        url = postgres_url(request)
        fresh_tables(url)

    async def make():
        if url is None:
            if opened:
                return opened[0]  # one process owns a SQLite file
            s = SQLiteStore(str(tmp_path / "data"), clock=clock)
        else:
            from stigmer.store.postgres import PostgresStore
            s = PostgresStore(url, clock=clock)
        await s.open()
        opened.append(s)
        return s

    yield make
    for s in opened:
        await s.close()


@pytest.fixture
async def store(open_store):
    return await open_store()


async def enqueue(store, hooks, n: int = 1, tenant: str = "t1") -> list[str]:
    def write(tx):
        return [hooks.enqueue_in(tx, "episode.created", {"id": f"e{i}", "subject_id": "user-42"}, tenant_id="acme")
                for i in range(n)]

    return await store.submit(tenant, write)


async def test_a_signed_delivery_carries_the_body_and_headers(store, clock):
    with receiving() as receiver:
        hooks = Webhooks(store, receiver.url, SECRET, clock=clock)
        (event_id,) = await enqueue(store, hooks)
        assert await hooks.deliver_due() == 1
        await hooks.aclose()
    ((headers, body),) = receiver.requests
    assert verified(headers, body, SECRET) and not verified(headers, body, "another secret")
    assert headers["Content-Type"] == "application/json" and headers["X-Webhook-Id"] == event_id
    assert json.loads(body) == {"event": "episode.created", "timestamp": wh.offset_time(clock.now()),
                                "data": {"id": "e0", "subject_id": "user-42"}, "tenant_id": "acme"}
    e = await hooks.get("t1", event_id)
    assert (e.status, e.attempts, e.http_status, e.delivered_at) == ("delivered", 1, 200, clock.now())


async def test_a_500_then_a_200_is_delivered_on_the_retry(store, clock):
    with receiving([500]) as receiver:
        hooks = Webhooks(store, receiver.url, SECRET, clock=clock, rng=lambda: 0.5)
        (event_id,) = await enqueue(store, hooks)
        assert await hooks.deliver_due() == 1
        e = await hooks.get("t1", event_id)
        assert (e.status, e.attempts, e.http_status, e.last_error) == ("pending", 1, 500, "HTTP 500: boom")
        assert e.next_attempt_at == clock.now() + 30.0
        clock.advance(29.0)
        assert await hooks.deliver_due() == 0 and len(receiver.requests) == 1
        clock.advance(1.0)
        assert await hooks.deliver_due() == 1
        await hooks.aclose()
    first, second = receiver.requests
    assert first == second and verified(*second, SECRET)  # the same bytes and id: a receiver can drop a repeat
    e = await hooks.get("t1", event_id)
    assert (e.status, e.attempts, e.http_status, e.delivered_at) == ("delivered", 2, 200, clock.now())


async def test_a_receiver_that_hangs_is_cut_at_the_timeout(store, clock):
    with receiving(["hang"]) as receiver:
        hooks = Webhooks(store, receiver.url, timeout=0.5, clock=clock)
        (event_id,) = await enqueue(store, hooks)
        assert await hooks.deliver_due() == 1
        await hooks.aclose()
    e = await hooks.get("t1", event_id)
    assert (e.status, e.attempts, e.http_status, e.last_error) == (
        "pending", 1, None, "TimeoutError: no answer within 0.5 s")


async def test_a_refused_connection_is_recorded(store, clock):
    hooks = Webhooks(store, f"http://127.0.0.1:{free_port()}/hook", clock=clock, max_attempts=1)  # nothing listens
    (event_id,) = await enqueue(store, hooks)
    assert await hooks.deliver_due() == 1
    await hooks.aclose()
    e = await hooks.get("t1", event_id)
    assert (e.status, e.http_status) == ("dead_letter", None) and e.last_error.startswith("ConnectError: ")


async def test_the_app_runs_a_worker_only_with_a_url(make_client):
    assert not make_client().app.state.services.webhooks.enabled
    with receiving() as receiver:
        c = make_client(webhook_url=receiver.url, webhook_secret=SECRET)
        svc = c.app.state.services

        async def write():
            return await enqueue(svc.store, svc.webhooks)

        (event_id,) = c.portal.call(write)
        assert receiver.wait_for(1)  # the worker was woken by the commit, or polled within a second
    ((headers, body),) = receiver.requests
    assert headers["X-Webhook-Id"] == event_id and verified(headers, body, SECRET)


async def test_concurrent_workers_deliver_each_event_exactly_once(open_store, clock):
    stores = [await open_store() for _ in range(3)]
    with receiving(delay=0.002) as receiver:
        workers = [Webhooks(s, receiver.url, clock=clock) for s in stores]
        ids = [i for t in range(3) for i in await enqueue(stores[t], workers[0], 100, tenant=f"t{t}")]
        made = await asyncio.gather(*(w.deliver_due() for w in workers))
        for w in workers:
            await w.aclose()
    assert sum(made) == 300 and sorted(receiver.seen) == sorted(ids)
    assert set(receiver.seen.values()) == {1}
    assert [(await workers[0].stats(f"t{t}")).delivered for t in range(3)] == [100, 100, 100]


WORKER = """
import asyncio, sys
from stigmer.engine.webhooks import Webhooks
from stigmer.store.postgres import PostgresStore

async def main(db, url):
    store = PostgresStore(db)
    await store.open()
    hooks = Webhooks(store, url)
    print("ready", flush=True)
    sys.stdin.readline()
    made = await hooks.deliver_due()
    await hooks.aclose()
    await store.close()
    print(made, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
async def test_three_replica_processes_on_one_postgresql_deliver_each_event_once(tmp_path):
    db = database_for(str(tmp_path))  # a database of its own (skips, or fails in CI, without PostgreSQL)
    from stigmer.store.postgres import PostgresStore

    store = PostgresStore(db)
    await store.open()
    env = {**os.environ, "PYTHONPATH": SRC}
    with receiving(delay=0.005) as receiver:
        hooks = Webhooks(store, receiver.url)
        ids = [i for t in range(3) for i in await enqueue(store, hooks, 100, tenant=f"t{t}")]
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, db, receiver.url], env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(3)]
        try:
            assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3
            for p in procs:  # all three start claiming at once
                p.stdin.write("go\n")
                p.stdin.flush()
            made = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
        finally:
            for p in procs:
                p.kill()
    stats = [await hooks.stats(f"t{t}") for t in range(3)]
    await store.close()
    assert sum(made) == 300 and sum(1 for m in made if m) >= 2, made  # they shared the work
    assert sorted(receiver.seen) == sorted(ids) and set(receiver.seen.values()) == {1}
    assert [s.delivered for s in stats] == [100, 100, 100]


def test_serve_refuses_a_webhook_url_that_is_not_http(tmp_path):
    from click.testing import CliRunner

    from stigmer.cli import main

    r = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)], env={"STIGMER_WEBHOOK_URL": "ftp://x/hook"})
    assert r.exit_code == 2 and "must be an http:// or https:// URL" in r.output
