"""Storage faults on a real SQLite store: full (page cap, then a real tiny filesystem), read-only, recovery."""

import asyncio
import os
import sqlite3
import subprocess
import threading

import pytest

from stigmer.api import health
from stigmer.engine.errors import StorageFull, StorageUnavailable
from stigmer.engine.kv import KV
from stigmer.engine.types import Change, Entry
from stigmer.store.sqlite import SQLiteStore
from stigmer.store.sqlite.faults import storage_error

T = "t"
BIG = "x" * 200_000


def _put(key: str, data: bytes):
    """A mutation writing one entry, as the engine would (the store contract's WriteTxn)."""
    def run(tx):
        rev = tx.new_revision()
        tx.kv.put(Entry(T, "ns", key, data, 1, rev, rev, tx.now, tx.now, None))
        tx.record(Change(T, rev, "ns", key, "put", data, None, 1, tx.now))
        return rev
    return run


async def _cap_pages(store: SQLiteStore, extra: int) -> None:
    def cap(tx):
        pages = tx.conn.execute("PRAGMA page_count").fetchone()[0]
        tx.conn.execute(f"PRAGMA max_page_count = {pages + extra}")
    await store.submit_internal(cap)


async def test_full_database_answers_storage_full_and_the_writer_recovers(store):
    kv = KV(store)
    await kv.put(T, "ns", "keep", {"v": 1})
    await _cap_pages(store, 0)
    with pytest.raises(StorageFull) as e:
        await kv.put(T, "ns", "big", BIG)
    assert e.value.code == "storage_full" and "full" in e.value.details["reason"]
    fault = store.health()
    assert fault.code == "storage_full" and fault.reason == "database or disk is full"
    assert not store._write_conn.in_transaction  # rolled back, usable
    assert (await kv.get(T, "ns", "keep")).value == b'{"v":1}' and await kv.get(T, "ns", "big") is None
    assert (await store.log.revision(T)).current == 1  # the failed write took no revision

    await _cap_pages(store, 10_000)  # space comes back; a commit that writes nothing clears nothing
    assert store.health() is not None
    e2 = await kv.put(T, "ns", "big", BIG)
    assert e2.mod_rev == 2 and store.health() is None
    assert [c.rev for c in await kv.history(T, "ns", "big")] == [2]


async def test_one_large_write_does_not_fail_small_ones_of_its_group(store):
    await store.submit(T, _put("seed", b"1"))
    await _cap_pages(store, 3)  # room for small rows, not for 200 kB
    gate = threading.Event()
    blocker = store.submit(T, lambda tx: gate.wait(10))  # holds the writer so the next two share a group
    big = store.submit(T, _put("big", b'"' + BIG.encode() + b'"'))
    small = store.submit(T, _put("small", b"2"))
    gate.set()
    results = await asyncio.gather(blocker, big, small, return_exceptions=True)
    assert isinstance(results[1], StorageFull) and results[2] == 2
    assert (await store.kv.get(T, "ns", "small")).value == b"2" and await store.kv.get(T, "ns", "big") is None
    assert store.health() is None  # the small write committed after the failure


async def test_read_only_database_answers_storage_unavailable_then_recovers(store):
    kv = KV(store)
    await kv.put(T, "ns", "a", 1)
    store._write_conn.execute("PRAGMA query_only = ON")  # the writer is idle: nothing in flight
    with pytest.raises(StorageUnavailable) as e:
        await kv.put(T, "ns", "a", 2)
    assert "readonly" in e.value.details["reason"] and store.health().code == "storage_unavailable"
    with pytest.raises(StorageUnavailable):
        await store.probe()
    assert (await kv.get(T, "ns", "a")).value == b"1"  # reads still work
    store._write_conn.execute("PRAGMA query_only = OFF")
    await store.probe()
    assert store.health() is None
    assert (await kv.put(T, "ns", "a", 3)).version == 2


def test_sqlite_errors_are_translated_by_code(tmp_path):
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as e:
        ro.execute("INSERT INTO t VALUES (1)")
    assert isinstance(storage_error(e.value), StorageUnavailable)
    with pytest.raises(sqlite3.OperationalError) as e:
        sqlite3.connect(f"file:{tmp_path}/missing/x.db?mode=ro", uri=True)
    assert isinstance(storage_error(e.value), StorageUnavailable)  # SQLITE_CANTOPEN
    with pytest.raises(sqlite3.OperationalError) as e:
        conn.execute("SELECT nope FROM t")
    assert storage_error(e.value) is None  # a bad query is not a storage fault
    assert storage_error(ValueError("x")) is None
    ro.close()
    conn.close()


def test_app_answers_507_and_503_and_readyz_follows_the_fault(make_client, monkeypatch):
    monkeypatch.setattr(health, "PROBE_INTERVAL", 3600)  # no probe: readiness shows the recorded fault
    c = make_client()
    store = c.app.state.services.store
    assert c.put("/v1/kv/ns/a", json={"v": 1}).status_code in (200, 201)
    assert c.get("/readyz").status_code == 200

    c.portal.call(_cap_pages, store, 0)
    r = c.put("/v1/kv/ns/big", json=BIG)
    assert r.status_code == 507 and r.json()["error"]["code"] == "storage_full"
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    assert r.json()["checks"][0]["detail"] == "storage_full: database or disk is full"

    store._write_conn.execute("PRAGMA max_page_count = 1000000")
    store._write_conn.execute("PRAGMA query_only = ON")
    r = c.put("/v1/kv/ns/a", json={"v": 2})
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert "readonly" in c.get("/readyz").json()["checks"][0]["detail"]

    store._write_conn.execute("PRAGMA query_only = OFF")
    monkeypatch.setattr(health, "PROBE_INTERVAL", 0)
    r = c.get("/readyz")  # its probe write succeeds: ready again without any client write
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert c.get("/v1/kv/ns/a").json()["value"] == {"v": 1}
    assert c.put("/v1/kv/ns/big", json=BIG).status_code in (200, 201)


# A real full filesystem: a 4 MiB tmpfs (needs root / CAP_SYS_ADMIN; skipped otherwise).

@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "fs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        reason = f"cannot mount a tmpfs: {(r.stderr or r.stdout).strip()}"
        print(reason)
        pytest.skip(reason)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                continue
    finally:
        os.close(fd)


async def test_real_full_filesystem_loses_nothing_acknowledged(small_fs):
    data_dir = str(small_fs / "data")
    s = SQLiteStore(data_dir)
    await s.open()
    kv = KV(s)
    acked: dict[str, bytes] = {}
    try:
        for i in range(10):
            acked[f"k{i}"] = (await kv.put(T, "ns", f"k{i}", {"i": i, "pad": "p" * 2000})).value
        _fill(small_fs / "junk")
        full = None
        for i in range(200):  # the WAL may still have room for a few writes
            try:
                acked[f"f{i}"] = (await kv.put(T, "ns", f"f{i}", {"i": i, "pad": "q" * 20_000})).value
            except StorageFull as exc:
                full = exc
                break
        assert full is not None, "the filesystem never filled"
        assert s.health().code == "storage_full"
        assert not s._write_conn.in_transaction
        for k, v in acked.items():
            assert (await kv.get(T, "ns", k)).value == v

        os.remove(small_fs / "junk")
        acked["after"] = (await kv.put(T, "ns", "after", {"pad": "r" * 20_000})).value
        assert s.health() is None
    finally:
        await s.close()

    s2 = SQLiteStore(data_dir)  # everything acknowledged is durable
    await s2.open()
    try:
        for k, v in acked.items():
            assert (await s2.kv.get(T, "ns", k)).value == v, k
        assert (await s2.log.revision(T)).current == len(acked)
    finally:
        await s2.close()
