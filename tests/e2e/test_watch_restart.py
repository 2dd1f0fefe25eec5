"""A watch carries on across a server restart: no change set lost, none repeated."""

from __future__ import annotations

import asyncio
import threading
import time

from stigmer.client import AsyncClient, Client, Retry

FAST = Retry(retries=0, backoff=0.05, max_backoff=0.5)


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _write(url: str, ns: str, keys: range) -> list[int]:
    with Client(url) as c:
        return [c.put(ns, f"k{i}", i).mod_revision for i in keys]


def _check(got: list[tuple[int, str, object]], revs: list[int]) -> None:
    assert [r for r, _, _ in got] == revs, "a change set was lost, repeated or reordered"
    assert [(k, v) for _, k, v in got] == [(f"k{i}", i) for i in range(len(revs))]


def test_sync_watch_survives_graceful_restart(server, ns):
    got: list[tuple[int, str, object]] = []
    total = 30
    errors: list[BaseException] = []

    with Client(server.url) as c:
        start = c.revision().revision + 1

    def consume():
        try:
            with Client(server.url, retry=FAST) as c:
                for cs in c.watch(ns, from_revision=start):
                    got.extend((cs.revision, ch.key, ch.value) for ch in cs.changes)
                    if len(got) >= total:
                        return
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    revs = _write(server.url, ns, range(10))
    _wait_for(lambda: len(got) >= 10, 10, "the first 10 changes")
    server.stop()
    server.start()
    revs += _write(server.url, ns, range(10, 20))  # written while the watcher may still be reconnecting
    _wait_for(lambda: len(got) >= 20, 15, "the changes after the restart")
    revs += _write(server.url, ns, range(20, 30))
    t.join(15)
    assert not t.is_alive() and not errors, errors
    _check(got, revs)


async def test_async_watch_survives_kill_and_restart(server, ns):
    async with AsyncClient(server.url) as writer:
        first = await writer.put(ns, "k0", 0)
        revs = [first.mod_revision] + [(await writer.put(ns, f"k{i}", i)).mod_revision for i in range(1, 5)]
    got: list[tuple[int, str, object]] = []
    seen_five = asyncio.Event()

    async def consume():
        async with AsyncClient(server.url, retry=FAST) as c:
            async for cs in c.watch(ns, from_revision=first.mod_revision):
                got.extend((cs.revision, ch.key, ch.value) for ch in cs.changes)
                if len(got) == 5:
                    seen_five.set()
                if len(got) >= 15:
                    return

    task = asyncio.create_task(consume())
    await asyncio.wait_for(seen_five.wait(), 10)
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(0.3)  # the watcher keeps retrying against a dead port meanwhile
    await asyncio.to_thread(server.start)
    async with AsyncClient(server.url) as writer:
        revs += [(await writer.put(ns, f"k{i}", i)).mod_revision for i in range(5, 15)]
    await asyncio.wait_for(task, 20)
    _check(got, revs)
