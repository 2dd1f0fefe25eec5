"""PostgreSQL-only behaviour, on a real PostgreSQL: replicas on one database, the doorbell, lost
connections, an unreachable server, migrations, key order. The shared store suite covers the rest."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from pg_support import fresh_tables, postgres_url
from stigmer.clock import ManualClock
from stigmer.engine.errors import StorageUnavailable
from stigmer.engine.types import Change, ChangeFilter, Entry

psycopg = pytest.importorskip("psycopg")
from stigmer.store.postgres import PostgresStore  # noqa: E402
from stigmer.store.postgres import store as store_module, writer as writer_module  # noqa: E402
from stigmer.store.postgres.doorbell import CHANNEL, MAX_PAYLOAD, decode, encode  # noqa: E402
from stigmer.store.postgres.migrations import MIGRATIONS, migrate  # noqa: E402


@pytest.fixture
def url(request):
    u = postgres_url(request)
    fresh_tables(u)
    return u


@pytest.fixture
async def replicas(url):
    """Two stores on one database: two replicas in one process."""
    a, b = PostgresStore(url, clock=ManualClock()), PostgresStore(url, clock=ManualClock())
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


class Ears:
    """A commit listener that lets a test wait for what it hears."""

    def __init__(self):
        self.commits: list[Change] = []
        self.rings: list[tuple[str, int]] = []
        self._heard = asyncio.Event()

    def committed(self, changes):
        self.commits.extend(changes)
        self._heard.set()

    def rang(self, tenant, rev):
        self.rings.append((tenant, rev))
        self._heard.set()

    async def ring(self, tenant: str, rev: int, timeout: float = 10.0) -> bool:
        """Whether a ring of `tenant` at `rev` or later arrives within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while not any(t == tenant and r >= rev for t, r in self.rings):
                    self._heard.clear()
                    await self._heard.wait()
        except TimeoutError:
            return False
        return True


def write(ns: str, key: str, make):
    """A read-modify-write mutation: `make(current value or None)` gives the new value."""
    def fn(tx):
        cur = tx.kv.get(ns, key)
        value = make(cur.value if cur else None)
        rev = tx.new_revision()
        e = Entry(tx.tenant, ns, key, value, cur.version + 1 if cur else 1, cur.create_rev if cur else rev, rev,
                  cur.created_at if cur else tx.now, tx.now, None)
        tx.kv.put(e)
        tx.record(Change(tx.tenant, rev, ns, key, "put", value, cur.value if cur else None, e.version, tx.now))
        return e
    return fn


def incr(ns: str = "ns", key: str = "n"):
    return write(ns, key, lambda v: str(int(v) + 1 if v else 1).encode())


async def revs_in_log(store, tenant: str) -> list[int]:
    return sorted({c.rev for c in await store.log.read(ChangeFilter(tenant), 0, 100_000)})


# replicas


async def test_two_replicas_count_exactly_with_gap_free_revisions(replicas):
    a, b = replicas
    n = 150
    results = await asyncio.gather(*(s.submit("t", incr()) for _ in range(n) for s in (a, b)))
    assert sorted(int(e.value) for e in results) == list(range(1, 2 * n + 1))
    assert sorted(e.mod_rev for e in results) == list(range(1, 2 * n + 1))
    assert (await a.kv.get("t", "ns", "n")).value == str(2 * n).encode()
    assert await revs_in_log(b, "t") == list(range(1, 2 * n + 1))
    assert (await b.log.revision("t")).current == 2 * n


async def test_many_tenants_through_both_replicas(replicas):
    a, b = replicas
    tenants = [f"t{i}" for i in range(7)]
    await asyncio.gather(*(s.submit(t, incr()) for _ in range(20) for t in tenants for s in (a, b)))
    assert await a.log.revisions(tenants + ["none"]) == {**dict.fromkeys(tenants, 40), "none": 0}
    for t in tenants:
        assert await revs_in_log(a, t) == list(range(1, 41))


async def test_doorbell_from_one_replica_reaches_the_other(replicas):
    a, b = replicas
    ears_a, ears_b = Ears(), Ears()
    a.set_listener(ears_a)
    b.set_listener(ears_b)
    e = await a.submit("t", incr())
    assert await ears_b.ring("t", e.mod_rev)
    assert [c.rev for c in ears_a.commits] == [e.mod_rev]  # the writer's own replica hears the commit itself
    assert ears_b.commits == []


async def test_doorbell_lines_that_do_not_parse_are_ignored(replicas, url):
    a, b = replicas
    ears = Ears()
    b.set_listener(ears)

    def notify():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "garbage\nt:x\n:5\nt:-1\nok:7\nt:\nt:١\nt:12"))

    await asyncio.to_thread(notify)
    assert await ears.ring("t", 12)
    assert ears.rings == [("ok", 7), ("t", 12)]


def test_doorbell_payloads_stay_under_the_limit():
    revs = {f"tenant-{i:04}": 10**12 + i for i in range(1000)}
    payloads = encode(revs)
    assert len(payloads) > 1 and all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    assert dict(pair for p in payloads for pair in decode(p)) == revs


async def test_a_lost_doorbell_is_covered_by_reading_the_log(replicas):
    a, b = replicas  # b listens to nothing: what a wrote is found by polling revisions, then reading
    for i in range(3):
        await a.submit("t", write("ns", f"k{i}", lambda v: b'"x"'))
    assert await b.log.revisions(["t"]) == {"t": 3}
    assert [c.key for c in await b.log.read(ChangeFilter("t"), 1, 10)] == ["k1", "k2"]
    assert (await b.kv.get("t", "ns", "k2")).value == b'"x"'


async def test_compaction_by_one_replica_is_seen_by_the_other(replicas):
    a, b = replicas
    clock = a.clock
    for _ in range(3):
        await a.submit("t", incr())
    clock.advance(100)
    await a.submit("t", incr())
    assert await b.log.compact(clock.now() - 50) == 3
    assert await a.log.revision("t") == (await b.log.revision("t")) and (await a.log.revision("t")).compacted == 3
    assert await revs_in_log(a, "t") == [4]


# lost connections


def terminate(url: str, application: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s", (application,)).fetchall())


async def test_killed_connections_are_replaced_without_reopening(replicas, url):
    a, b = replicas
    ears = Ears()
    b.set_listener(ears)
    await a.submit("t", incr())
    await a.kv.get("t", "ns", "n")
    outcomes: list[object] = []

    async def traffic():
        for _ in range(100):
            try:
                outcomes.append(await a.submit("t", incr()))
            except StorageUnavailable as exc:  # only a COMMIT in doubt may answer this
                outcomes.append(exc)

    task = asyncio.create_task(traffic())
    await asyncio.sleep(0)
    killed = {name: await asyncio.to_thread(terminate, url, name)
              for name in ("stigmer-write", "stigmer-listen", "stigmer-read")}
    await task
    assert killed == {"stigmer-write": 1, "stigmer-listen": 2, "stigmer-read": 16}  # a's writer for "t"
    assert sum(1 for o in outcomes if isinstance(o, Entry)) >= 98

    # The next writes and reads succeed on the same store objects; b hears doorbells again.
    e = await a.submit("t", incr())
    assert (await a.kv.get("t", "ns", "n")).value == e.value
    assert (await b.kv.get("t", "ns", "n")).value == e.value
    heard = False
    for _ in range(50):  # until b's listener is back: a ring sent while it reconnects is lost by design
        e = await a.submit("t", incr())
        if await ears.ring("t", e.mod_rev, timeout=0.2):
            heard = True
            break
    assert heard
    assert await revs_in_log(b, "t") == list(range(1, e.mod_rev + 1))  # no gap, whatever failed
    assert a.health() is None


async def test_one_failing_mutation_fails_alone(url):
    s = PostgresStore(url, writers=1)
    await s.open()
    try:
        def python_error(tx):
            incr()(tx)  # writes, then fails: only its savepoint goes
            raise RuntimeError("boom")

        def database_error(tx):
            rev = tx.new_revision()
            tx.kv.put(Entry(tx.tenant, "ns", "bad", None, 1, rev, rev, tx.now, tx.now, None))  # NOT NULL
            tx.record(Change(tx.tenant, rev, "ns", "bad", "put", None, None, 1, tx.now))

        jobs = [incr() for _ in range(10)]
        jobs[3], jobs[6] = python_error, database_error
        results = await asyncio.gather(*(s.submit("t", j) for j in jobs), return_exceptions=True)
        assert isinstance(results[3], RuntimeError)
        assert isinstance(results[6], psycopg.errors.NotNullViolation)
        assert sum(isinstance(r, Entry) for r in results) == 8
        assert (await s.kv.get("t", "ns", "n")).value == b"8"
        assert await revs_in_log(s, "t") == list(range(1, 9))
        assert s.health() is None  # a bad statement is not a storage fault
    finally:
        await s.close()


# an unreachable server


async def test_a_closed_port_is_a_clear_error_not_a_hang():
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = PostgresStore(f"postgresql://postgres:secret@127.0.0.1:{port}/nothing")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        await s.open()
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{port}" in info.value.message and "secret" not in info.value.message
    assert "refused" in info.value.details["reason"].lower()


class Proxy:
    """A TCP relay to PostgreSQL that a test can cut (refusing connections, dropping live ones) and mend,
    or arm to drop a client's connection at its next COMMIT: before forwarding it (nothing is kept) or
    after PostgreSQL answered it (the commit is kept, but the client never hears so)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self.commit_cut: str | None = None  # "before" | "after"
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        for w in list(self._links):
            w.transport.abort()

    async def _link(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        answering_commit = asyncio.Event()

        async def upstream():
            while data := await reader.read(65536):
                if self.commit_cut and b"COMMIT\x00" in data:
                    how, self.commit_cut = self.commit_cut, None
                    if how == "before":
                        return  # never forwarded: PostgreSQL sees the client go and rolls back
                    answering_commit.set()
                up_writer.write(data)
                await up_writer.drain()

        async def downstream():
            while data := await up_reader.read(65536):
                if answering_commit.is_set():
                    return  # PostgreSQL committed; its answer never reaches the client
                writer.write(data)
                await writer.drain()

        async def pump(direction):
            try:
                await direction()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()  # the client learns only that the connection is gone
                up_writer.close()
                self._links.difference_update((writer, up_writer))

        await asyncio.gather(pump(upstream), pump(downstream))


async def test_unreachable_database_answers_storage_unavailable_then_recovers(url, monkeypatch):
    monkeypatch.setattr(writer_module, "RECONNECT_DELAYS", (0.01, 0.02))
    monkeypatch.setattr(store_module, "POOL_TIMEOUT", 1.0)
    monkeypatch.setattr(store_module, "POOL_RECONNECT_TIMEOUT", 0.1)
    proxy = Proxy(int(url.rsplit(":", 1)[1].split("/")[0]))
    await proxy.start()
    s = PostgresStore(url.replace(f":{proxy.target_port}/", f":{proxy.port}/"), pool_size=2, writers=1)
    await s.open()
    try:
        await s.submit("t", incr())
        await proxy.cut()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await s.submit("t", incr())
        with pytest.raises(StorageUnavailable):
            await s.kv.get("t", "ns", "n")
        with pytest.raises(StorageUnavailable):
            await s.probe()
        assert time.monotonic() - started < 10
        fault = s.health()
        assert fault is not None and fault.code == "storage_unavailable"

        await proxy.start()  # PostgreSQL is back (same port): no reopening
        e = await s.submit("t", incr())
        assert e.value == b"2" and e.mod_rev == 2
        assert s.health() is None
        assert (await s.kv.get("t", "ns", "n")).value == b"2"
    finally:
        await s.close()
        await proxy.cut()


@pytest.mark.parametrize("kept", [False, True])
async def test_a_connection_lost_during_commit_is_unknown_and_not_retried(url, kept):
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    proxy = Proxy(port)
    await proxy.start()
    s = PostgresStore(url.replace(f":{port}/", f":{proxy.port}/"), writers=1)
    await s.open()
    try:
        await s.submit("t", incr())
        runs = 0

        def counted(tx):
            nonlocal runs
            runs += 1
            return incr()(tx)

        proxy.commit_cut = "after" if kept else "before"
        with pytest.raises(StorageUnavailable, match="may or may not"):
            await s.submit("t", counted)
        assert runs == 1 and proxy.commit_cut is None  # cut at COMMIT, and not run again
        assert s.health().code == "storage_unavailable"

        e = await s.submit("t", incr())  # a fresh connection; the revision comes from the database
        assert (e.value, e.mod_rev) == ((b"3", 3) if kept else (b"2", 2))
        assert await revs_in_log(s, "t") == list(range(1, e.mod_rev + 1))
        assert s.health() is None
    finally:
        await s.close()
        await proxy.cut()


# migrations


async def test_migrations_are_idempotent_and_safe_when_replicas_start_together(url):
    # A schema of its own, not a database: DROP DATABASE forces a checkpoint, seconds on a busy server.
    schema = f"migrate_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    db = f"{url}?options=-csearch_path%3D{schema}"
    try:
        stores = [PostgresStore(db, pool_size=1, writers=1) for _ in range(3)]
        await asyncio.gather(*(s.open() for s in stores))  # all three migrate at once
        for s in stores:
            await s.close()
        again = PostgresStore(db, pool_size=1, writers=1)
        await again.open()
        await again.submit("t", incr())  # the schema works: tables and writes landed in it
        await again.close()
        async with await psycopg.AsyncConnection.connect(db) as conn:
            assert await migrate(conn) == MIGRATIONS[-1][0]
            cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in await cur.fetchall()] == [v for v, _ in MIGRATIONS]
            cur = await conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,))
            tables = sum(script.count("CREATE TABLE") for _, script in MIGRATIONS) + 1  # + schema_migrations
            assert (await cur.fetchone())[0] == tables  # every table of every migration landed in the schema
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# key order, TTL, describe, installation


KEYS = ["a", "B", "ab", "a\U0001f600", "é", "e", "z", "ä", "\ue000", "\uffff", "\U0001f600", "\u00ff", "Z~"]


async def test_scan_orders_non_ascii_keys_by_bytes_like_sqlite(url, tmp_path):
    from stigmer.store.sqlite import SQLiteStore

    pg, lite = PostgresStore(url), SQLiteStore(str(tmp_path / "data"))
    await pg.open()
    await lite.open()
    try:
        orders = []
        for s in (pg, lite):
            for k in KEYS:
                await s.submit("t", write("ns", k, lambda v: b"1"))
            full = [e.key for e in await s.kv.scan("t", "ns", "", None, 100, 0.0)]
            paged = [e.key for e in await s.kv.scan("t", "ns", "", "ab", 3, 0.0)]
            prefixed = [e.key for e in await s.kv.scan("t", "ns", "a", None, 100, 0.0)]
            orders.append((full, paged, prefixed))
        by_bytes = sorted(KEYS, key=lambda k: k.encode())
        assert orders[0] == orders[1]
        assert orders[0][0] == by_bytes
        assert orders[0][2] == ["a", "ab", "a\U0001f600"]
    finally:
        await pg.close()
        await lite.close()


async def test_due_tenants_and_expired_rows(url):
    clock = ManualClock()
    s = PostgresStore(url, clock=clock)
    await s.open()
    try:
        def put_expiring(key, expires_at):
            def fn(tx):
                rev = tx.new_revision()
                tx.kv.put(Entry(tx.tenant, "ns", key, b"1", 1, rev, rev, tx.now, tx.now, expires_at))
                tx.record(Change(tx.tenant, rev, "ns", key, "put", b"1", None, 1, tx.now))
            return fn

        now = clock.now()
        await s.submit("a", put_expiring("late", now + 20))
        await s.submit("a", put_expiring("soon", now + 10))
        await s.submit("b", put_expiring("never", None))
        await s.submit("c", put_expiring("later", now + 30))
        assert await s.kv.due_tenants(now, 10) == []
        clock.advance(25)
        assert await s.kv.due_tenants(clock.now(), 10) == ["a"]
        assert [e.key for e in await s.submit("a", lambda tx: tx.kv.expired(10))] == ["soon", "late"]
        assert [e.key for e in await s.submit("a", lambda tx: tx.kv.expired(1))] == ["soon"]
        assert await s.kv.due_tenants(clock.now() + 10, 1) == ["a"]
    finally:
        await s.close()


def test_describe_never_shows_a_password():
    for url, shown in [
        ("postgresql://u:pw@db:5432/stigmer", "postgresql://u:***@db:5432/stigmer"),
        ("postgresql://u@db/stigmer?password=pw&sslmode=require", "postgresql://u@db/stigmer?password=***&sslmode=require"),
        ("host=db user=u password=pw dbname=stigmer", "host=db user=u password=*** dbname=stigmer"),
        ("postgresql://db/stigmer", "postgresql://db/stigmer"),
    ]:
        d = PostgresStore(url, writers=3, pool_size=4).describe()
        assert d == {"kind": "postgresql", "url": shown, "writers": 3, "pool_size": 4}


def test_importing_without_psycopg_says_what_to_install():
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "try:\n    import stigmer.store.postgres\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "stigmer[postgres]" in out
