"""The floor for the PostgreSQL store: raw psycopg at the benchmark's concurrency, no HTTP, no engine.

  python pg_floor.py URL get|put SECONDS CONNS

`put` upserts one row per transaction (autocommit) over 10,000 keys, the shape of a durable key write;
`get` reads 100 hot keys by primary key. Prints one JSON line: requests per second and latencies.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_floor (k TEXT COLLATE "C" PRIMARY KEY, v BYTEA NOT NULL, version BIGINT NOT NULL);
"""
UPSERT = ("INSERT INTO bench_floor (k, v, version) VALUES (%s, %s, 1)"
          " ON CONFLICT (k) DO UPDATE SET v = excluded.v, version = bench_floor.version + 1 RETURNING version")
GET = "SELECT v, version FROM bench_floor WHERE k = %s"


async def worker(url: str, mode: str, deadline: float, lat: list[float]) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rng = random.Random()
        while (start := time.perf_counter()) < deadline:
            if mode == "put":
                k = f"w{rng.randrange(10_000)}"
                await (await conn.execute(UPSERT, (k, b'{"n":1,"agent":"bench","ok":true}'), prepare=True)).fetchone()
            else:
                await (await conn.execute(GET, (f"hot{rng.randrange(100)}",), prepare=True)).fetchone()
            lat.append(time.perf_counter() - start)


async def main(url: str, mode: str, seconds: float, conns: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(SCHEMA)
        for k in range(100):
            await conn.execute(UPSERT, (f"hot{k}", b'{"n":1}'))
    lat: list[float] = []
    t0 = time.perf_counter()
    await asyncio.gather(*[worker(url, mode, t0 + seconds, lat) for _ in range(conns)])
    wall = time.perf_counter() - t0
    lat.sort()
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3)  # noqa: E731
    print(json.dumps({"rps": len(lat) / wall, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "requests": len(lat),
                      "errors_total": 0}))


if __name__ == "__main__":
    url, mode, seconds, conns = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    asyncio.run(main(url, mode, seconds, conns))
