"""What only the embedded store has: its schema file and its durability settings."""

import sqlite3

from stigmer.store.sqlite.migrations import MIGRATIONS


async def test_schema_is_versioned_and_pragmas_are_durable(store):
    conn = sqlite3.connect(store.path)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [v for v, _ in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._write_conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_a_mutation_failing_after_its_own_sql_is_undone_alone_and_the_group_runs_again(store):
    import asyncio
    import threading

    from stigmer.engine.kv import KV

    kv = KV(store)
    await kv.put("t", "ns", "a", 0)
    gate = threading.Event()
    runs = {"x": 0}

    def wait_for_the_rest(tx):  # keeps the writer busy until every other mutation is queued: one group follows
        gate.wait(5)

    def own_sql_then_fails(tx):
        tx.conn.execute("INSERT INTO tenants (id, created_at) VALUES ('ghost', 1.0)")
        raise RuntimeError("after its own SQL")

    def counted_put(tx):
        runs["x"] += 1
        e = tx.kv.get("ns", "a")
        rev = tx.new_revision()
        tx.kv.put(type(e)(e.tenant, e.namespace, "x", b"1", 1, rev, rev, tx.now, tx.now, None))

    first = store.submit("t", wait_for_the_rest)
    rest = [store.submit("t", counted_put), store.submit("t", own_sql_then_fails), kv.put("t", "ns", "y", 2)]
    gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert isinstance(results[2], RuntimeError)
    assert runs["x"] == 2  # run once, then once more in the savepoint rerun; only the last counts
    assert (await kv.get("t", "ns", "x")).value == b"1" and (await kv.get("t", "ns", "y")).value == b"2"
    assert store._write_conn.execute("SELECT count(*) FROM tenants WHERE id = 'ghost'").fetchone()[0] == 0
    assert (await store.log.revision("t")).current == 3
