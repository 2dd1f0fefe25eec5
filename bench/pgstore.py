"""Quick figures for the PostgreSQL store (not a test): 64 concurrent writers and readers, and the floor.

  .venv/bin/python bench/pgstore.py [--url postgresql://postgres@127.0.0.1:5432/postgres] [--seconds 5]

- put/s: single-key read-then-write mutations (get, new revision, upsert, change row) through
  `store.submit`, 64 tasks at once, one tenant and then 8 tenants;
- get/s: `store.kv.get`, 64 tasks at once;
- floor/s: a raw psycopg async loop, 64 tasks on an 8-connection pool, each an upsert in its own
  transaction (and the same for point reads).
Also compares the writer's pipeline mode with plain round trips, batched point reads with one
statement per read, and (raw, without the store) a group's statements with and without savepoints.
Creates database `stigmer_bench` next to the URL's and drops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

from stigmer.engine.types import Change, Entry
from stigmer.store.postgres import PostgresStore
from stigmer.store.postgres import kv as kv_module, writer as writer_module

CONCURRENCY = 64


def put(ns: str, key: str, value: bytes):
    def fn(tx):
        cur = tx.kv.get(ns, key)
        rev = tx.new_revision()
        e = Entry(tx.tenant, ns, key, value, cur.version + 1 if cur else 1, cur.create_rev if cur else rev, rev,
                  cur.created_at if cur else tx.now, tx.now, None)
        tx.kv.put(e)
        tx.record(Change(tx.tenant, rev, ns, key, "put", value, cur.value if cur else None, e.version, tx.now))
        return e
    return fn


async def timed(seconds: float, one) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < stop:
            await one(i, n)
            n += 1
        done += n

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    return done / (time.perf_counter() - start)


async def store_figures(url: str, seconds: float, tenants: int) -> tuple[float, float]:
    store = PostgresStore(url)
    await store.open()
    try:
        value = b'{"n":1,"text":"a small JSON value"}'
        puts = await timed(seconds, lambda i, n: store.submit(f"t{i % tenants}", put("ns", f"k{i}-{n % 100}", value)))
        gets = await timed(seconds, lambda i, n: store.kv.get(f"t{i % tenants}", "ns", f"k{i}-{n % 100}"))
        return puts, gets
    finally:
        await store.close()


async def floor(url: str, seconds: float) -> tuple[float, float]:
    async with AsyncConnectionPool(url, min_size=8, max_size=8, open=False) as pool:
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS floor (k TEXT PRIMARY KEY, v BYTEA, n BIGINT)")

        async def one(i: int, n: int) -> None:
            async with pool.connection() as conn:
                await conn.execute("INSERT INTO floor VALUES (%s, %s, 1) ON CONFLICT (k) DO UPDATE"
                                   " SET v = EXCLUDED.v, n = floor.n + 1", (f"k{i}-{n % 100}", b'{"n":1}'))

        async def read(i: int, n: int) -> None:
            async with pool.connection() as conn:
                await (await conn.execute("SELECT v FROM floor WHERE k = %s", (f"k{i}-{n % 100}",))).fetchall()

        return await timed(seconds, one), await timed(seconds, read)


def raw_group(conn: psycopg.Connection, pipeline: bool, savepoints: bool, n: int = 64) -> None:
    """What the writer sends for one group of `n` read-then-write mutations, without the store around it."""
    stamp = time.time_ns()

    def body() -> None:
        cur = conn.cursor(binary=True)
        rows = []
        for i in range(n):
            if savepoints:
                cur.execute("SAVEPOINT m")
            cur.execute(writer_module._GET, ("raw", "ns", f"k{i}")).fetchone()
            cur.execute(writer_module._PUT, ("raw", "ns", f"k{i}", b"1", 1, 1, 1, 0.0, 0.0, None))
            if savepoints:
                cur.execute("RELEASE SAVEPOINT m")
            rows.append(("raw", stamp + i, 1, "ns", f"k{i}", "put", b"1", None, 1, 0.0))
        cur.execute(writer_module._RECORD, [list(column) for column in zip(*rows)])

    if pipeline:
        with conn.pipeline():
            body()
    else:
        body()
    conn.commit()


def backend_cpu(pid: int) -> float:
    """CPU seconds a local PostgreSQL backend has used (wall time is unreliable on a shared machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_groups(url: str, groups: int = 40) -> dict[str, float]:
    """CPU microseconds (client + server) per mutation of raw groups: pipeline mode and savepoints on and off."""
    out = {}
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid
        for pipeline in (True, False):
            for savepoints in (False, True):
                client, server = time.thread_time(), backend_cpu(pid)
                for _ in range(groups):
                    raw_group(conn, pipeline, savepoints)
                cpu = time.thread_time() - client + backend_cpu(pid) - server
                out[f"raw group of 64: pipeline={pipeline!s:5} savepoints={savepoints!s:5} (CPU us/op)"] = \
                    1e6 * cpu / (64 * groups)
    return out


def summary(name: str, runs: list[float]) -> str:
    runs = sorted(runs)
    if "CPU" in name:
        return f"median {runs[len(runs) // 2]:7.0f}    least {runs[0]:7.0f}"
    return f"median {runs[len(runs) // 2]:7.0f}/s  best {runs[-1]:7.0f}/s"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3, help="runs of each row, interleaved (the machine is shared)")
    args = parser.parse_args()
    base = args.url
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS stigmer_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE stigmer_bench")
    url = base.rsplit("/", 1)[0] + "/stigmer_bench"
    rows: dict[str, list[float]] = {}
    try:
        for _ in range(args.runs):
            for pipeline, batch in ((True, True), (False, False)):
                writer_module.USE_PIPELINE = pipeline
                kv_module.BATCH_GETS = batch
                for tenants in (1, 8):
                    puts, gets = await store_figures(url, args.seconds, tenants)
                    rows.setdefault(f"put  pipeline={pipeline!s:5}        tenants={tenants}", []).append(puts)
                    rows.setdefault(f"get  batched={batch!s:5}         tenants={tenants}", []).append(gets)
            ups, reads = await floor(url, args.seconds)
            rows.setdefault("floor: raw upsert, own transaction", []).append(ups)
            rows.setdefault("floor: raw point read", []).append(reads)
            for name, rate in raw_groups(url).items():
                rows.setdefault(name, []).append(rate)
        for name, runs in rows.items():
            print(f"{name:42} {summary(name, runs)}")
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS stigmer_bench WITH (FORCE)")


if __name__ == "__main__":
    try:
        import uvloop  # what `stigmer serve` runs on
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
