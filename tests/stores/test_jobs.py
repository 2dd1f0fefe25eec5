"""The durable job queue on both stores: the engine's queue and worker over a real SQLite file and a real
PostgreSQL (docs/jobs.md)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re

import pytest

from stigmer.engine import jobs as jobs_module, values
from stigmer.engine.errors import InvalidArgument
from stigmer.engine.jobs import INTERRUPTED, Job, Jobs
from stigmer.engine.kv import Op, live, write_in

T = "t1"
LEASE = 30.0


@pytest.fixture
def jobs(store, clock):
    return Jobs(store, clock, lease_seconds=LEASE, max_attempts=3, retention_hours=1)


async def until(check, timeout: float = 10.0):
    """Wait until `await check()` is truthy (the worker's progress is visible only in the store)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return result


def finished(jobs: Jobs, tenant: str, job_id: str):
    async def check():
        job = await jobs.get(tenant, job_id)
        return job if job.status in ("completed", "failed") else None
    return check


@contextlib.asynccontextmanager
async def worker(jobs: Jobs, handlers=None):
    task = asyncio.create_task(jobs.run(handlers))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_submitted_job_is_stored_pending_with_an_8_hex_id(jobs, clock):
    job = await jobs.submit(T, "echo", {"n": 1, "s": "é"})
    assert re.fullmatch(r"[0-9a-f]{8}", job.id)
    got = await jobs.get(T, job.id)
    assert got == Job(T, job.id, "echo", {"n": 1, "s": "é"}, "pending", None, None, 0, 3, clock.now())


async def test_a_handler_result_is_stored_completed(jobs, clock):
    seen = []

    async def echo(job):
        seen.append((job.tenant, job.payload))
        return {"got": job.payload, "list": [1, None]}

    job = await jobs.submit(T, "echo", {"n": 1})
    async with worker(jobs, {"echo": echo}):
        done = await until(finished(jobs, T, job.id))
    assert seen == [(T, {"n": 1})]
    assert (done.status, done.result, done.error, done.attempts) == ("completed", {"got": {"n": 1}, "list": [1, None]}, None, 1)
    assert done.started_at == done.completed_at == clock.now() and done.claim is None and done.claimed_until is None


async def test_a_handler_exception_fails_the_job_with_its_name_and_message(jobs):
    async def boom(job):
        raise KeyError("no such subject")

    async def not_json(job):
        return object()

    a = await jobs.submit(T, "boom", None)
    b = await jobs.submit(T, "not-json", None)
    async with worker(jobs, {"boom": boom, "not-json": not_json}):
        a = await until(finished(jobs, T, a.id))
        b = await until(finished(jobs, T, b.id))
    assert (a.status, a.error, a.result, a.attempts) == ("failed", "KeyError: 'no such subject'", None, 1)
    assert b.status == "failed" and b.error.startswith("TypeError: ")


async def test_submit_in_commits_with_its_mutation_or_not_at_all(jobs, store, kv):
    def change(tx, fail: bool):
        write_in(tx, Op("put", "ns", "k", values.encode("fail" if fail else "kept")), live(tx, "ns", "k"))
        job = jobs.submit_in(tx, "echo", {"after": "k"})
        if fail:
            raise InvalidArgument("the change is refused")
        return job

    kept = await store.submit(T, lambda tx: change(tx, False))
    assert (await jobs.get(T, kept.id)).payload == {"after": "k"}
    with pytest.raises(InvalidArgument):
        await store.submit(T, lambda tx: change(tx, True))
    page, total = await jobs.list(T)
    assert total == 1 and [j.id for j in page] == [kept.id]
    assert values.decode((await kv.get(T, "ns", "k")).value) == "kept"


async def test_a_payload_that_is_not_json_is_refused(jobs):
    with pytest.raises(InvalidArgument):
        await jobs.submit(T, "echo", {"x": object()})
    assert (await jobs.list(T))[1] == 0


async def test_an_id_taken_in_the_tenant_is_drawn_again(jobs, monkeypatch):
    first = await jobs.submit(T, "echo", 1)
    other = await jobs.submit("t2", "echo", 1)
    draws = iter([first.id, first.id, "0000000a"])
    monkeypatch.setattr(jobs_module, "new_job_id", lambda: next(draws))
    again = await jobs.submit(T, "echo", 2)
    assert again.id == "0000000a"
    draws = iter([first.id])  # another tenant's id is free in this one
    assert (await jobs.submit("t3", "echo", 3)).id == first.id
    assert (await jobs.get(T, first.id)).payload == 1 and (await jobs.get("t3", first.id)).payload == 3
    assert (await jobs.get("t2", other.id)).tenant == "t2"


async def test_get_and_list_are_tenant_scoped_filtered_paged_and_newest_first(jobs, clock, monkeypatch):
    for i in range(5):
        await jobs.submit(T, "a" if i % 2 else "b", i)
        clock.advance(1)
    await jobs.submit("t2", "a", "theirs")
    page, total = await jobs.list(T, limit=2)
    assert total == 5 and [j.payload for j in page] == [4, 3]
    page, total = await jobs.list(T, limit=2, offset=4)
    assert total == 5 and [j.payload for j in page] == [0]
    page, total = await jobs.list(T, kind="a")
    assert total == 2 and [j.payload for j in page] == [3, 1]
    assert await jobs.list(T, status="completed") == ([], 0)
    assert [j.payload for j in (await jobs.list(T, status="pending", kind="b"))[0]] == [4, 2, 0]
    page, total = await jobs.list("t2")
    assert total == 1 and page[0].payload == "theirs"
    assert await jobs.list("t3") == ([], 0)
    for bad in ({"status": "done"}, {"limit": 0}, {"offset": -1}):
        with pytest.raises(InvalidArgument):
            await jobs.list(T, **bad)
    # One id in two tenants names two jobs; each tenant sees only its own.
    monkeypatch.setattr(jobs_module, "new_job_id", lambda: "feedbeef")
    await jobs.submit(T, "a", "mine")
    await jobs.submit("t2", "a", "yours")
    assert (await jobs.get(T, "feedbeef")).payload == "mine" and (await jobs.get("t2", "feedbeef")).payload == "yours"
    assert await jobs.get("t3", "feedbeef") is None


async def test_a_job_whose_worker_died_is_claimed_again_after_its_lease(jobs, store, clock):
    job = await jobs.submit(T, "echo", "x")
    # A worker that claimed it and died: its claim is never renewed nor finished.
    [dead] = await store.jobs.claim(["echo"], ["echo"], clock.now(), clock.now() + LEASE, "dead-worker", 10)
    assert (dead.id, dead.status, dead.attempts, dead.claim) == (job.id, "running", 1, "dead-worker")
    assert await store.jobs.claim(["echo"], ["echo"], clock.now(), clock.now() + LEASE, "other", 10) == []
    runs = []

    async def echo(j):
        runs.append(j.attempts)
        return j.payload

    clock.advance(LEASE)
    async with worker(jobs, {"echo": echo}):
        done = await until(finished(jobs, T, job.id))
    assert (done.status, done.result, done.attempts, runs) == ("completed", "x", 2, [2])
    # The dead worker's late outcome is not recorded: the completion stays the second run's.
    assert not await store.jobs.finish(T, job.id, "dead-worker", "failed", None, "late", clock.now())
    assert (await jobs.get(T, job.id)).status == "completed"


async def test_a_job_that_lost_every_attempt_is_failed(jobs, store, clock):
    job = await jobs.submit(T, "echo", "x")
    for attempt in range(3):
        [j] = await store.jobs.claim(["echo"], ["echo"], clock.now(), clock.now() + LEASE, f"w{attempt}", 10)
        assert j.attempts == attempt + 1
        clock.advance(LEASE)
    async def never(j):
        raise AssertionError("a job out of attempts ran")

    async with worker(jobs, {"echo": never}):
        done = await until(finished(jobs, T, job.id))
    assert (done.status, done.attempts, done.error) == ("failed", 3, "its lease ran out 3 times (no attempts left)")


async def test_a_kind_that_fails_on_interrupt_is_failed_not_run_again(jobs, store, clock):
    job = await jobs.submit(T, "compile", "x")
    clock.advance(1)  # claims take the oldest first
    pending = await jobs.submit(T, "compile", "y")
    await store.jobs.claim(["compile"], [], clock.now(), clock.now() + LEASE, "dead-worker", 1)
    clock.advance(LEASE)
    ran = []

    async def compile_(j):
        ran.append(j.payload)
        return len(ran)

    jobs.register("compile", compile_, on_interrupt="fail")
    async with worker(jobs):
        interrupted = await until(finished(jobs, T, job.id))
        later = await until(finished(jobs, T, pending.id))
    assert (interrupted.status, interrupted.error, interrupted.attempts) == ("failed", INTERRUPTED, 1)
    assert (later.status, later.result, ran) == ("completed", 1, ["y"])  # a pending one never started: it runs


async def test_the_lease_is_renewed_while_the_handler_runs(jobs, store, clock, monkeypatch):
    jobs.lease_seconds = 0.06  # renewed every 20 ms of real time
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(j):
        started.set()
        await release.wait()
        return "done"

    job = await jobs.submit(T, "slow", None)
    async with worker(jobs, {"slow": slow}):
        await started.wait()
        first = (await jobs.get(T, job.id)).claimed_until
        clock.advance(10)  # the claim would have run out without renewals
        renewed = await until(lambda: _claimed_after(jobs, job.id, first + 10))
        assert await store.jobs.claim(["slow"], ["slow"], clock.now(), clock.now() + 1, "thief", 10) == []
        release.set()
        done = await until(finished(jobs, T, job.id))
    assert renewed and (done.status, done.result, done.attempts) == ("completed", "done", 1)


async def _claimed_after(jobs, job_id, at):
    j = await jobs.get(T, job_id)
    return j.claimed_until is not None and j.claimed_until >= at


async def test_shutdown_leaves_a_running_job_claimed_and_it_runs_again(jobs, store, clock):
    started = asyncio.Event()
    runs = []

    async def hang(j):
        runs.append(j.attempts)
        started.set()
        await asyncio.Event().wait()

    job = await jobs.submit(T, "hang", None)
    async with worker(jobs, {"hang": hang}):
        await started.wait()
    left = await jobs.get(T, job.id)
    assert (left.status, left.attempts, left.completed_at) == ("running", 1, None)

    async def finish(j):
        runs.append(j.attempts)
        return "ok"

    clock.advance(LEASE)
    async with worker(jobs, {"hang": finish}):
        done = await until(finished(jobs, T, job.id))
    assert (done.status, done.result, runs) == ("completed", "ok", [1, 2])


async def test_retention_deletes_finished_jobs_past_it_only(jobs, store, clock):
    async def echo(j):
        return j.payload

    old = await jobs.submit(T, "echo", "old")
    async with worker(jobs, {"echo": echo}):
        await until(finished(jobs, T, old.id))
    unfinished = await jobs.submit(T, "other", "pending for ever")
    clock.advance(3601)
    fresh = await jobs.submit(T, "echo", "fresh")
    async with worker(jobs, {"echo": echo}):  # a worker purges when it starts, then hourly
        await until(finished(jobs, T, fresh.id))
        await until(lambda: _gone(jobs, old.id))
    assert (await jobs.get(T, unfinished.id)).status == "pending"
    assert (await jobs.get(T, fresh.id)).status == "completed"
    jobs.retention_hours = 0  # keeps for ever
    clock.advance(1000 * 3600)
    async with worker(jobs, {"echo": echo}):
        probe = await jobs.submit(T, "echo", "probe")
        await until(finished(jobs, T, probe.id))
    assert (await jobs.get(T, fresh.id)).status == "completed"  # 1000 hours old, kept
    assert await store.jobs.purge(clock.now() - 3600) == 1  # what a retention would have deleted: it


async def _gone(jobs, job_id):
    return await jobs.get(T, job_id) is None


async def test_a_submit_wakes_the_worker_at_once(jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "POLL_SECONDS", 3600)  # only a wake-up can start the job

    async def echo(j):
        return j.payload

    async with worker(jobs, {"echo": echo}):
        await asyncio.sleep(0)
        job = await jobs.submit(T, "echo", "now")
        assert (await until(finished(jobs, T, job.id), timeout=5)).result == "now"


async def test_concurrent_workers_run_each_of_200_jobs_exactly_once(open_store, store_kind, clock):
    """Three workers (three replicas on PostgreSQL, each with its own connections; on SQLite, three over the
    one store the process owns) race for 200 jobs: each runs exactly once and completes once."""
    stores = [await open_store() for _ in range(3)] if store_kind == "postgres" else [await open_store()] * 3
    workers = [Jobs(s, clock, lease_seconds=LEASE, concurrency=4) for s in stores]
    submitted = [await workers[i % 3].submit(f"t{i % 5}", "count", i) for i in range(200)]
    runs: collections.Counter = collections.Counter()
    by_worker: collections.Counter = collections.Counter()

    def handler(n):
        async def count(job):
            runs[job.tenant, job.id] += 1
            by_worker[n] += 1
            await asyncio.sleep(0)  # let the others claim meanwhile
            return job.payload
        return count

    tasks = [asyncio.create_task(w.run({"count": handler(n)})) for n, w in enumerate(workers)]
    try:
        async def all_done():
            totals = [(await workers[0].list(f"t{t}", status="completed"))[1] for t in range(5)]
            return sum(totals) == 200
        await until(all_done, timeout=60)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(runs.values()) == 200 and set(runs.values()) == {1}
    assert set(runs) == {(j.tenant, j.id) for j in submitted}
    for j in submitted:
        got = await workers[0].get(j.tenant, j.id)
        assert (got.result, got.attempts) == (j.payload, 1)
    if store_kind == "postgres":
        assert len(by_worker) >= 2  # the replicas shared the work


async def test_the_queue_depth_counts_pending_jobs_of_every_tenant(jobs):
    assert await jobs.queue_depth() == 0
    made = [await jobs.submit(tenant, "echo", {}) for tenant in (T, "t2", T)]
    assert await jobs.queue_depth() == 3
    async with worker(jobs, {"echo": lambda job: asyncio.sleep(0)}):
        for job in made:
            await until(finished(jobs, job.tenant, job.id))
    assert await jobs.queue_depth() == 0
