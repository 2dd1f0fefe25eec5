"""StigmerStore against the real server process: the contract of LangGraph's reference stores (InMemoryStore,
PostgresStore) as their documentation gives it: get / put / delete, search with filters and a query,
namespaces, TTL with refresh on read, one batch's semantics, both faces, and tenant isolation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("langgraph.store.base", reason="the `langgraph` extra is not installed")

from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchItem  # noqa: E402

from pg_support import ON_POSTGRES, database_for  # noqa: E402
from stigmer.client import AsyncClient, Client  # noqa: E402
from stigmer.integrations.langgraph import StigmerStore  # noqa: E402
from stigmer.integrations.langgraph.store import item_key  # noqa: E402


@pytest.fixture
def client(shared_server):
    with Client(shared_server.url) as c:
        yield c


@pytest.fixture
def store(client, ns):
    return StigmerStore(client, namespace=ns)


def test_put_get_update_delete(store):
    assert store.get(("users", "1"), "prefs") is None
    store.put(("users", "1"), "prefs", {"theme": "dark", "n": 1})
    first = store.get(("users", "1"), "prefs")
    assert (first.namespace, first.key, first.value) == (("users", "1"), "prefs", {"theme": "dark", "n": 1})
    assert first.created_at == first.updated_at and first.created_at.tzinfo is not None
    store.put(("users", "1"), "prefs", {"theme": "light"})  # a put replaces the whole value
    second = store.get(("users", "1"), "prefs")
    assert second.value == {"theme": "light"}
    assert second.created_at == first.created_at and second.updated_at > first.updated_at  # PostgresStore's rule
    store.delete(("users", "1"), "prefs")
    assert store.get(("users", "1"), "prefs") is None
    store.delete(("users", "1"), "prefs")  # deleting what is not there is no error
    store.put(("users", "1"), "prefs", {"again": True})
    assert store.get(("users", "1"), "prefs").created_at > first.created_at  # a new item after a delete


def test_labels_and_keys_of_any_text_round_trip_without_colliding(store):
    odd = [("a/b", "c"), ("a", "b/c"), ("a:b", "%2F"), ("é", "空 白"), ("a", "b")]
    for i, namespace in enumerate(odd):
        store.put(namespace, f"k/{i}:x%", {"i": i})
    for i, namespace in enumerate(odd):
        got = store.get(namespace, f"k/{i}:x%")
        assert (got.namespace, got.key, got.value) == (namespace, f"k/{i}:x%", {"i": i})
    assert sorted(store.list_namespaces()) == sorted(odd)
    assert [i.value["i"] for i in store.search(("a",), limit=10)] == [4, 1]  # not ("a/b",) nor ("a:b",)
    for bad in [(), ("a.b",), ("",), ("langgraph", "x")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "k", {"v": 1})


def test_search_scopes_by_namespace_prefix_and_pages_newest_first(store):
    for i in range(5):
        store.put(("docs", "u1"), f"d{i}", {"i": i})
    store.put(("docs", "u2"), "other", {"i": 99})
    store.put(("docsx",), "near", {"i": -1})
    got = store.search(("docs", "u1"), limit=10)
    assert all(isinstance(i, SearchItem) and i.score is None for i in got)
    assert [i.key for i in got] == ["d4", "d3", "d2", "d1", "d0"]  # by updated_at, newest first
    assert [i.key for i in store.search(("docs", "u1"), limit=2, offset=1)] == ["d3", "d2"]
    assert len(store.search(("docs",), limit=100)) == 6
    assert len(store.search((), limit=100)) == 7
    assert store.search(("nothing",)) == []
    assert len(store.search(("docs",))) == 6  # the default limit is 10


def test_search_filters_as_the_reference_stores(store):
    rows = {"a": {"kind": "note", "score": 5, "tags": ["x", "y"], "meta": {"lang": "en", "v": 2}},
            "b": {"kind": "note", "score": 9.5, "tags": ["x"], "meta": {"lang": "fr"}},
            "c": {"kind": "task", "score": "7", "meta": {"lang": "en", "v": 3}},
            "d": {"kind": "task"}}
    for key, value in rows.items():
        store.put(("f",), key, value)

    def keys(filter):
        return sorted(i.key for i in store.search(("f",), filter=filter, limit=100))

    assert keys({"kind": "note"}) == ["a", "b"]
    assert keys({"kind": "note", "score": 5}) == ["a"]
    assert keys({"meta": {"lang": "en"}}) == ["a", "c"]  # nested: member by member
    assert keys({"tags": ["x"]}) == ["b"]  # lists: equal element by element
    assert keys({"score": {"$gt": 5}}) == ["b", "c"]  # numeric comparisons ("7" is a number to compare)
    assert keys({"score": {"$gte": 5, "$lt": 9}}) == ["a", "c"]
    assert keys({"score": {"$lte": 5}}) == ["a"]
    assert keys({"kind": {"$ne": "note"}}) == ["c", "d"]
    assert keys({"kind": {"$eq": "task"}, "score": {"$gt": 0}}) == ["c"]
    assert keys({"missing": None}) == ["a", "b", "c", "d"]  # an absent member is None
    assert keys({"kind": "nope"}) == []
    with pytest.raises(ValueError):
        store.search(("f",), filter={"score": {"$near": 1}})


def test_query_ranks_by_the_words_found(store):
    store.put(("mem",), "1", {"text": "The user likes dark chocolate"})
    store.put(("mem",), "2", {"text": "Dark mode is preferred", "extra": {"note": "chocolate cake"}})
    store.put(("mem",), "3", {"text": "Nothing related"})
    got = store.search(("mem",), query="dark chocolate")
    assert [(i.key, i.score) for i in got] == [("2", 1.0), ("1", 1.0)] or \
        [(i.key, i.score) for i in got] == [("1", 1.0), ("2", 1.0)]
    got = store.search(("mem",), query="chocolate likes")
    assert [(i.key, i.score) for i in got] == [("1", 1.0), ("2", 0.5)]
    assert store.search(("mem",), query="absent words") == []
    assert [i.key for i in store.search(("mem",), query="DARK", filter={"text": "Dark mode is preferred"})] == ["2"]


def test_list_namespaces_prefix_suffix_depth_and_pages(store):
    for namespace in [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("x", "b", "c"), ("x",)]:
        store.put(namespace, "k", {"v": 1})
    assert store.list_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("x",), ("x", "b", "c")]
    assert store.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "e")]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("x", "b", "c")]
    assert store.list_namespaces(prefix=("*", "b")) == [("a", "b", "c"), ("a", "b", "d"), ("x", "b", "c")]
    assert store.list_namespaces(prefix=("a",), suffix=("d",)) == [("a", "b", "d")]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "e"), ("x",), ("x", "b")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("x",)]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "e")]
    store.delete(("x",), "k")
    assert ("x",) not in store.list_namespaces()


def test_one_batch_reads_before_its_puts_and_the_last_put_wins(store):
    store.put(("b",), "k", {"v": 0})
    results = store.batch([GetOp(("b",), "k"), PutOp(("b",), "k", {"v": 1}), PutOp(("b",), "k", {"v": 2}),
                           GetOp(("b",), "k"), PutOp(("b",), "gone", None)])
    assert [r.value["v"] if r else r for r in results] == [0, None, None, 0, None]
    assert store.get(("b",), "k").value == {"v": 2}


def expiry(client, ns, namespace, key):
    return client.get(ns, item_key(namespace, key)).expires_at


def wait_for_expire(client, ns, key):
    """Until the server reports the key's `expire` change (an event, no sleep)."""
    for change_set in client.watch(namespace=ns, key=key, from_revision=1):
        if any(ch.type == "expire" for ch in change_set.changes):
            return


def test_ttl_expires_items_through_the_server(client, ns):
    store = StigmerStore(client, namespace=ns)
    store.put(("t",), "short", {"v": 1}, ttl=0.005)  # minutes: 0.3 s
    store.put(("t",), "kept", {"v": 2})
    assert expiry(client, ns, ("t",), "kept") is None
    wait_for_expire(client, ns, item_key(("t",), "short"))
    assert store.get(("t",), "short") is None
    assert [i.key for i in store.search(("t",))] == ["kept"]


def test_default_ttl_and_refresh_on_read(client, ns):
    store = StigmerStore(client, namespace=ns, ttl={"default_ttl": 10, "refresh_on_read": True})
    store.put(("t",), "k", {"v": 1})
    store.put(("t",), "forever", {"v": 2}, ttl=None)
    assert expiry(client, ns, ("t",), "forever") is None
    first = expiry(client, ns, ("t",), "k")
    assert first is not None
    store.get(("t",), "k", refresh_ttl=False)
    assert expiry(client, ns, ("t",), "k") == first
    before = store.get(("t",), "k", refresh_ttl=False)
    store.get(("t",), "k")  # refresh_on_read: the TTL starts again
    second = expiry(client, ns, ("t",), "k")
    assert second > first
    after = store.get(("t",), "k")
    assert (after.created_at, after.updated_at, after.value) == (before.created_at, before.updated_at, before.value)
    store.search(("t",))
    assert expiry(client, ns, ("t",), "k") > second
    assert store.get(("t",), "k").value == {"v": 1}
    no_refresh = StigmerStore(client, namespace=ns, ttl={"default_ttl": 10, "refresh_on_read": False})
    third = expiry(client, ns, ("t",), "k")
    no_refresh.get(("t",), "k")
    assert expiry(client, ns, ("t",), "k") == third


async def test_async_face_matches_the_sync_one(shared_server, client, ns):
    sync_store = StigmerStore(client, namespace=ns)
    async with AsyncClient(shared_server.url) as ac:
        store = StigmerStore(async_client=ac, namespace=ns)
        await store.aput(("a", "1"), "k", {"v": 1, "text": "hello world"})
        got = await store.aget(("a", "1"), "k")
        assert got == sync_store.get(("a", "1"), "k")
        assert [i.key for i in await store.asearch(("a",), query="hello", filter={"v": {"$gte": 1}})] == ["k"]
        assert await store.alist_namespaces(prefix=("a",)) == [("a", "1")]
        await store.adelete(("a", "1"), "k")
        assert sync_store.get(("a", "1"), "k") is None
        with pytest.raises(TypeError):
            store.get(("a", "1"), "k")  # no Client: the sync face says so
    threaded = StigmerStore(client, namespace=ns)  # only a Client: the async face runs it in a thread
    await threaded.aput(("b",), "k", {"v": 2})
    assert (await threaded.aget(("b",), "k")).value == {"v": 2}


def keys_create(data, tenant):
    place = ["--database-url", database_for(str(data))] if ON_POSTGRES else ["--data-dir", str(data)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")}
    p = subprocess.run([sys.executable, "-m", "stigmer.cli", "keys", "create", *place, "--tenant", tenant,
                        "--scope", "read,write", "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["secret"]


def test_two_tenants_never_see_each_others_items(tmp_path, start_server):
    data = tmp_path / "tenants"
    first, second = keys_create(data, "team-a"), keys_create(data, "team-b")
    s = start_server(data)
    with Client(s.url, api_key=first) as a, Client(s.url, api_key=second) as b:
        sa, sb = StigmerStore(a), StigmerStore(b)
        sa.put(("users", "1"), "prefs", {"owner": "a"})
        sb.put(("users", "1"), "prefs", {"owner": "b"})
        assert sa.get(("users", "1"), "prefs").value == {"owner": "a"}
        assert sb.get(("users", "1"), "prefs").value == {"owner": "b"}
        sb.put(("only-b",), "k", {"v": 1})
        assert sa.list_namespaces() == [("users", "1")]
        assert [i.value for i in sa.search(())] == [{"owner": "a"}]
        sa.delete(("users", "1"), "prefs")
        assert sb.get(("users", "1"), "prefs").value == {"owner": "b"}


async def test_concurrent_puts_of_one_item_keep_one_value_and_its_first_created_at(shared_server, ns):
    import asyncio

    async with AsyncClient(shared_server.url) as ac:
        store = StigmerStore(async_client=ac, namespace=ns)
        await store.aput(("c",), "k", {"n": -1})
        created = (await store.aget(("c",), "k")).created_at
        await asyncio.gather(*[store.aput(("c",), "k", {"n": i}) for i in range(10)],
                             *[store.aput(("c",), f"k{i}", {"n": i}) for i in range(10)])
        got = await store.aget(("c",), "k")
        assert got.value["n"] in range(10) and got.created_at == created
        assert len(await store.asearch(("c",), limit=100)) == 11
