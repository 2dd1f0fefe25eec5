"""Point reads are never older than the last acknowledged write, on both stores (the SQLite store serves
them from its entry cache, which commits hold back key by key; see store/sqlite/cache.py)."""

from __future__ import annotations

import asyncio
import threading

import msgspec

from stigmer.engine.kv import Op
from stigmer.store.sqlite.cache import EntryCache

T = "t1"


async def test_reads_racing_a_stream_of_writes_never_go_back_and_see_every_acknowledged_write(kv):
    await kv.put(T, "ns", "hot", 0)
    done = False
    seen_backwards = []

    async def reader():
        last = 0
        while not done:
            e = await kv.get(T, "ns", "hot")
            version = e.version
            if version < last:
                seen_backwards.append((last, version))
            last = version
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    for i in range(1, 301):
        e = await kv.put(T, "ns", "hot", i)
        got = await kv.get(T, "ns", "hot")
        assert got.version >= e.version and msgspec.json.decode(got.value) >= i
    done = True
    await asyncio.gather(*readers)
    assert seen_backwards == []


async def test_deletes_transactions_failed_mutations_and_absent_keys(kv, store):
    assert await kv.get(T, "ns", "a") is None  # an absent key may be remembered as absent...
    await kv.put(T, "ns", "a", 1)
    assert msgspec.json.decode((await kv.get(T, "ns", "a")).value) == 1  # ...until it is written
    await kv.delete(T, "ns", "a")
    assert await kv.get(T, "ns", "a") is None
    await kv.txn(T, [], [Op("put", "ns", "a", value=2), Op("put", "ns", "b", value=3)])
    assert [msgspec.json.decode(e.value) for e in [await kv.get(T, "ns", "a"), await kv.get(T, "ns", "b")]] == [2, 3]

    def writes_then_fails(tx):  # a mutation that fails after writing leaves no trace, cached or stored
        e = tx.kv.get("ns", "a")
        tx.kv.put(msgspec.structs.replace(e, value=b"99", version=e.version + 1))
        raise RuntimeError("after the write")

    try:
        await store.submit(T, writes_then_fails)
    except RuntimeError:
        pass
    assert (await kv.get(T, "ns", "a")).value == b"2"


def test_a_held_key_is_never_kept_even_when_its_read_raced_the_commit():
    # The race as threads see it: a read of the old value that finishes after the writer held the key.
    cache = EntryCache()
    db = {"v": b"old"}
    k = ("t", "ns", "k")
    read_started, committed = threading.Event(), threading.Event()

    def entry():
        return type("E", (), {"value": db["v"]})()

    def slow_read():
        value = entry()
        read_started.set()
        committed.wait(0.2)  # the writer is blocked on the cache lock meanwhile: it cannot hold yet
        return value

    def writer():
        read_started.wait()
        cache.hold([k])  # waits for the read above to finish and be kept
        db["v"] = b"new"
        cache.release([k])
        committed.set()

    w = threading.Thread(target=writer)
    w.start()
    assert cache.get(k, slow_read).value == b"old"
    w.join()
    assert cache.get(k, entry).value == b"new"  # hold() dropped the old value before the commit
    cache.hold([k])
    assert cache.get(k, entry).value == b"new"
    db["v"] = b"newer"
    assert cache.get(k, entry).value == b"newer"  # held: read through, not kept
    cache.release([k])


def test_the_cache_is_bounded_by_entries_bytes_and_value_size(monkeypatch):
    from stigmer.store.sqlite import cache as cache_module

    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 3)
    monkeypatch.setattr(cache_module, "MAX_BYTES", 10)
    monkeypatch.setattr(cache_module, "MAX_VALUE_BYTES", 6)
    reads = []

    def entry(value: bytes):
        def read():
            reads.append(value)
            return type("E", (), {"value": value})()
        return read

    c = EntryCache()
    c.get(("t", "n", "big"), entry(b"1234567"))
    c.get(("t", "n", "big"), entry(b"1234567"))
    assert len(reads) == 2  # larger than MAX_VALUE_BYTES: never kept
    for k in ("a", "b"):
        c.get(("t", "n", k), entry(b"12345"))
    c.get(("t", "n", "a"), entry(b"12345"))
    assert len(reads) == 4  # a and b kept: 10 bytes
    c.get(("t", "n", "c"), entry(b"1"))  # 11 bytes: starts again with only c
    c.get(("t", "n", "a"), entry(b"12345"))
    c.get(("t", "n", "c"), entry(b"1"))
    assert reads[-1] == b"12345" and len(reads) == 6
    c.release([("t", "n", "a")], {("t", "n", "a"): None})  # what a commit wrote is kept, absence too
    assert c.get(("t", "n", "a"), entry(b"x")) is None and len(reads) == 6
