"""Three real `stigmer serve` processes on one PostgreSQL database: any replica serves any request, and a
watch on one replica sees every write made through the others, in order, with no gap and no repeat.

Needs PostgreSQL (127.0.0.1:5432 by default); without one these tests skip with the reason printed, and
fail instead under TEST_REQUIRE_POSTGRES (CI sets it when PostgreSQL answers).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from pg_support import postgres_url
from stigmer.client import AsyncClient, Retry
from stigmer.client.errors import ServerError, StigmerError, VersionConflictError

NO_RETRY = Retry(retries=0)


async def _watch(url: str, ns: str, start: int, want: int, got: list[tuple[int, str]], ready: asyncio.Event) -> None:
    async with AsyncClient(url, retry=Retry(retries=0, backoff=0.05, max_backoff=0.5)) as c:
        async for cs in c.watch(ns, from_revision=start):
            got.extend((cs.revision, ch.key) for ch in cs.changes)
            ready.set()
            if len(got) >= want:
                return


async def _start_point(url: str) -> int:
    async with AsyncClient(url) as c:
        return (await c.revision()).revision + 1


async def test_a_watch_on_one_replica_sees_every_write_through_the_others_in_order(replicas, ns):
    a, b, c = replicas
    start = await _start_point(b.url)
    per_writer, got = 150, []
    watcher = asyncio.create_task(_watch(b.url, ns, start, 2 * per_writer, got, asyncio.Event()))

    async def write(url: str, tag: str) -> list[int]:
        async with AsyncClient(url) as client:
            async def one(i: int) -> int:
                return (await client.put(ns, f"{tag}{i}", i)).mod_revision
            return await asyncio.gather(*[one(i) for i in range(per_writer)])

    acked = await asyncio.gather(write(a.url, "a"), write(c.url, "c"))
    await asyncio.wait_for(watcher, 30)
    revisions = sorted(r for revs in acked for r in revs)
    assert [r for r, _ in got] == revisions, "the watch lost, repeated or reordered a change"
    assert len(set(revisions)) == 2 * per_writer  # every write took its own revision, across replicas


async def test_compare_and_set_has_one_winner_across_replicas(replicas, ns):
    async with AsyncClient(replicas[0].url) as first:
        await first.put(ns, "cas", 0)
    clients = [AsyncClient(r.url, retry=NO_RETRY) for r in replicas]
    try:
        outcomes = await asyncio.gather(
            *[clients[i % 3].put(ns, "cas", i, if_version=1) for i in range(30)], return_exceptions=True)
    finally:
        for client in clients:
            await client.aclose()
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, VersionConflictError) for o in outcomes if isinstance(o, BaseException)), outcomes
    async with AsyncClient(replicas[1].url) as other:
        assert (await other.get(ns, "cas")).version == 2


async def test_increments_through_every_replica_are_all_counted(replicas, ns):
    clients = [AsyncClient(r.url, retry=NO_RETRY) for r in replicas]
    try:
        results = await asyncio.gather(*[clients[i % 3].incr(ns, "n", 1) for i in range(50)])
    finally:
        for client in clients:
            await client.aclose()
    assert sorted(e.value for e in results) == list(range(1, 51))
    for r in replicas:
        async with AsyncClient(r.url) as client:
            assert (await client.get(ns, "n")).value == 50


async def test_kill_9_of_a_writing_replica_loses_no_acknowledged_write(replicas, ns):
    a, b, c = replicas
    start = await _start_point(b.url)
    acked: dict[str, int] = {}
    got: list[tuple[int, str]] = []
    first_seen = asyncio.Event()
    later = 40
    stop = asyncio.Event()
    well_into_it = asyncio.Event()

    async def keep_writing(worker: int) -> None:
        async with AsyncClient(a.url, retry=NO_RETRY) as client:
            for i in itertools.count():
                if stop.is_set():
                    return
                key = f"w{worker}-{i}"
                try:
                    acked[key] = (await client.put(ns, key, i)).mod_revision
                    if len(acked) >= 200:
                        well_into_it.set()
                except StigmerError:  # the replica died under this request: not acknowledged
                    return

    writers = [asyncio.create_task(keep_writing(w)) for w in range(8)]
    await asyncio.wait_for(well_into_it.wait(), 30)
    watcher = asyncio.create_task(_watch(b.url, ns, start, 10**9, got, first_seen))
    a.kill()
    stop.set()
    await asyncio.gather(*writers)

    async with AsyncClient(c.url) as client:  # the survivors carry on; C's writes reach B's watcher
        after = [(await client.put(ns, f"after{i}", i)).mod_revision for i in range(later)]
        for key, rev in acked.items():
            entry = await client.get(ns, key)
            assert entry.mod_revision == rev, key  # every acknowledged write is there, as acknowledged
    while not got or got[-1][0] < after[-1]:
        await asyncio.wait_for(first_seen.wait(), 10)
        first_seen.clear()
    watcher.cancel()
    revs = [r for r, _ in got]
    assert revs == sorted(set(revs)), "the watch repeated or reordered a change"
    assert set(acked.values()) | set(after) <= set(revs), "the watch lost an acknowledged write"
    a.start()  # back for the tests that follow


async def test_connections_killed_in_postgresql_are_recovered_without_a_restart(replicas, ns):
    import psycopg

    a, b, c = replicas
    dbname = replicas[0].env["STIGMER_DATABASE_URL"].rsplit("/", 1)[1]
    start = await _start_point(b.url)
    got: list[tuple[int, str]] = []
    seen = asyncio.Event()
    watcher = asyncio.create_task(_watch(b.url, ns, start, 3 * 5, got, seen))
    async with AsyncClient(a.url) as client:
        await client.put(ns, "before", 0)
    await asyncio.wait_for(seen.wait(), 10)  # the stream is up

    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                               " WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()[0]
    assert killed >= 3 * 2  # every replica lost its writer and its listener, at least

    acked = []
    for r in replicas:  # each replica writes again without being restarted
        async with AsyncClient(r.url, retry=NO_RETRY) as client:
            for i in range(5 if r is not a else 4):
                for attempt in range(20):
                    try:
                        acked.append((await client.put(ns, f"{r.port}-{i}", i)).mod_revision)
                        break
                    except ServerError:  # 503 while a broken connection is replaced: allowed, not lost
                        await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"replica {r.url} never recovered its database connection")
    await asyncio.wait_for(watcher, 30)
    revs = [r for r, _ in got]
    assert revs == sorted(set(revs)) and set(acked) <= set(revs)
