import asyncio
import sqlite3
import time

import pytest

from stigmer.engine.kv import KV
from stigmer.store.base import ChangeFilter
from stigmer.store.sqlite import SQLiteStore
from stigmer.store.sqlite.migrations import MIGRATIONS


async def test_data_revisions_and_compaction_point_survive_reopen(tmp_path):
    s = SQLiteStore(str(tmp_path))
    await s.open()
    kv = KV(s)
    for i in range(3):
        await kv.put("t", "ns", f"k{i}", {"i": i})
    await s.compact(older_than=time.time() + 1)
    await s.close()

    s2 = SQLiteStore(str(tmp_path))
    await s2.open()
    try:
        assert s2.revision("t").current == 3 and s2.revision("t").compacted == 3
        assert KV(s2).get("t", "ns", "k2").value == b'{"i":2}'
        e = await KV(s2).put("t", "ns", "k3", 3)
        assert e.mod_rev == 4  # the revision carries on, never restarts
    finally:
        await s2.close()


async def test_schema_is_versioned_and_pragmas_are_durable(tmp_path, store):
    conn = sqlite3.connect(store.path)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [v for v, _ in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._write_conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_one_failing_mutation_does_not_fail_its_group(store):
    kv = KV(store)

    def boom(tx):
        tx.put(tx.get("t", "ns", "a"))  # writes, then fails: its savepoint must be rolled back
        raise RuntimeError("boom")

    await kv.put("t", "ns", "a", 1)
    results = await asyncio.gather(
        kv.put("t", "ns", "x", 1), store.submit(boom), kv.put("t", "ns", "y", 2), return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert kv.get("t", "ns", "x") is not None and kv.get("t", "ns", "y") is not None
    assert store.revision("t").current == 3  # no gap left by the failed mutation
    revs = [c.rev for c in await store.changes(ChangeFilter("t"), 0, 10)]
    assert revs == [1, 2, 3]


async def test_reads_see_acknowledged_writes(store):
    kv = KV(store)
    for i in range(200):
        await kv.put("t", "ns", "k", i)
        assert kv.get("t", "ns", "k").value == str(i).encode()


@pytest.mark.parametrize("prefix", ["a", "é", "a\U0001f600"])
async def test_prefix_scan_bounds(store, prefix):
    kv = KV(store)
    keys = [prefix, prefix + "x", prefix + "\U0001f600", prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    for k in keys:
        await kv.put("t", "ns", k, 1)
    rows, _ = await kv.list("t", "ns", prefix=prefix)
    assert sorted(r.key for r in rows) == sorted(keys[:3])
