"""The blocking SDK against the real server: every method, typed results, the error tree."""

from __future__ import annotations

import datetime
import threading

import pytest

from stigmer.client import (
    ChangeSet, Client, Compare, CompareFailedError, Deleted, Entry, InvalidArgumentError, NotFoundError, Op,
    PatchFailedError, Retry, StigmerError, TypeMismatchError, VersionConflictError,
)


@pytest.fixture
def client(shared_server):
    with Client(shared_server.url) as c:
        yield c


def test_put_get_delete(client, ns):
    e = client.put(ns, "a/b c", {"x": 1})
    assert isinstance(e, Entry) and (e.version, e.value, e.key) == (1, {"x": 1}, "a/b c")
    assert isinstance(e.created_at, datetime.datetime) and e.expires_at is None
    got = client.get(ns, "a/b c")
    assert got.value == {"x": 1} and got.mod_revision == e.mod_revision and got.etag == e.etag
    e2 = client.put(ns, "a/b c", [1, "two"])
    assert e2.version == 2 and e2.create_revision == e.create_revision and e2.mod_revision > e.mod_revision
    d = client.delete(ns, "a/b c")
    assert isinstance(d, Deleted) and d.deleted and d.version == 2 and d.revision > e2.mod_revision
    with pytest.raises(NotFoundError) as info:
        client.get(ns, "a/b c")
    assert info.value.status == 404 and info.value.code == "not_found" and info.value.request_id
    assert info.value.details == {"namespace": ns, "key": "a/b c"}
    with pytest.raises(NotFoundError):
        client.delete(ns, "a/b c")


def test_odd_keys_round_trip(client, ns):
    keys = ["x/../y", "./z", "q?a=1#f", "per%cent", "sp ace/ü/日本", "trail/"]
    for k in keys:
        client.put(ns, k, k)
    for k in keys:
        assert client.get(ns, k).value == k
    assert sorted(e.key for e in client.list(ns)) == sorted(keys)


def test_put_ttl_and_conditions(client, ns):
    e = client.put(ns, "k", 1, ttl=60)
    assert e.expires_at is not None and e.expires_at > e.updated_at
    with pytest.raises(VersionConflictError) as info:
        client.put(ns, "k", 2, if_version=7)
    assert info.value.current_version == 1 and info.value.expected_version == 7 and info.value.status == 409
    assert client.put(ns, "k", 2, if_version=1).version == 2
    with pytest.raises(VersionConflictError):
        client.put(ns, "k", 3, create_only=True)
    assert client.put(ns, "new", 3, create_only=True).version == 1
    with pytest.raises(VersionConflictError):
        client.delete(ns, "k", if_version=1)
    assert client.delete(ns, "k", if_version=2).version == 2


def test_incr_merge_append_patch(client, ns):
    assert client.incr(ns, "n").value == 1
    assert client.incr(ns, "n", 41).value == 42
    assert client.incr(ns, "n", -0.5).value == 41.5
    assert client.incr(ns, "obj", 2, field="hits").value == {"hits": 2}
    assert client.incr(ns, "obj", 3, path=["deep", "x"]).value == {"hits": 2, "deep": {"x": 3}}
    m = client.merge(ns, "obj", {"deep": {"y": 1}, "z": True}, deep=True)
    assert m.value == {"hits": 2, "deep": {"x": 3, "y": 1}, "z": True}
    assert client.merge(ns, "obj", {"deep": {"w": 0}}).value["deep"] == {"w": 0}
    for i in range(4):
        a = client.append(ns, "log", i, max_items=3)
    assert a.value == [1, 2, 3]
    p = client.patch(ns, "obj", [{"op": "test", "path": "/z", "value": True}, {"op": "remove", "path": "/z"},
                                 {"op": "add", "path": "/list", "value": []}])
    assert p.value == {"hits": 2, "deep": {"w": 0}, "list": []}
    with pytest.raises(PatchFailedError):
        client.patch(ns, "obj", [{"op": "test", "path": "/hits", "value": 99}])
    with pytest.raises(TypeMismatchError) as info:
        client.incr(ns, "log")
    assert info.value.status == 409
    with pytest.raises(VersionConflictError):
        client.incr(ns, "n", if_version=1)
    assert client.incr(ns, "n", 1, ttl=30).expires_at is not None


def test_batch_get_and_list(client, ns):
    for i in range(7):
        client.put(ns, f"item/{i}", i)
    client.put(ns, "other", "o")
    got = client.batch_get(ns, ["item/3", "missing", "other"])
    assert [e.value if e else None for e in got] == [3, None, "o"]
    page = client.list_page(ns, prefix="item/", limit=3)
    assert [e.key for e in page.entries] == ["item/0", "item/1", "item/2"] and page.next_cursor
    page2 = client.list_page(ns, prefix="item/", limit=3, cursor=page.next_cursor)
    assert [e.key for e in page2.entries] == ["item/3", "item/4", "item/5"]
    after = client.list_page(ns, prefix="item/", start_after="item/45")
    assert [e.key for e in after.entries] == ["item/5", "item/6"]
    everything = list(client.list(ns, prefix="item/", page_size=2))
    assert [e.value for e in everything] == list(range(7))
    keys_only = list(client.list(ns, values=False))
    assert len(keys_only) == 8 and all(e.value is None for e in keys_only)
    with pytest.raises(InvalidArgumentError):
        client.list_page(ns, limit=0)


def test_history(client, ns):
    for i in range(5):
        client.put(ns, "h", i)
    client.delete(ns, "h")
    first = client.history(ns, "h", limit=4)
    assert [c.type for c in first.history] == ["delete", "put", "put", "put"]
    assert [c.value for c in first.history[1:]] == [4, 3, 2] and first.next_before is not None
    rest = client.history(ns, "h", before=first.next_before, limit=4)
    assert [c.value for c in rest.history] == [1, 0] and rest.next_before is None


def test_txn(client, ns):
    client.put(ns, "a", 1)
    r = client.txn([Compare(ns, "a", version=1), Compare(ns, "b", exists=False)],
                   [Op("put", ns, "b", value={"v": 1}), Op("incr", ns, "a", amount=10),
                    {"op": "append", "namespace": ns, "key": "c", "value": "x"}])
    assert r.revision > 0 and [x.value for x in r.results] == [{"v": 1}, 11, ["x"]]
    assert all(x.mod_revision == r.revision for x in r.results)
    with pytest.raises(CompareFailedError) as info:
        client.txn([Compare(ns, "a", value=1)], [Op("delete", ns, "a")])
    assert info.value.index == 0
    d = client.txn([], [Op("delete", ns, "a"), Op("merge", ns, "b", value={"w": 2}, version=1)])
    assert isinstance(d.results[0], Deleted) and d.results[1].value == {"v": 1, "w": 2}
    assert client.get(ns, "b").mod_revision == d.revision
    with pytest.raises(NotFoundError):
        client.get(ns, "a")


def test_revision_and_poll(client, ns):
    before = client.revision()
    assert before.compacted_revision == 0
    client.put(ns, "p", 1)
    client.put(ns, "p", 2)
    got = client.poll(index=before.revision, namespace=ns, wait=5)
    assert [cs.changes[0].value for cs in got.events] == [1, 2] and got.revision >= before.revision + 2
    empty = client.poll(index=got.revision, namespace=ns, key="p", wait=0)
    assert empty.events == []
    with_prev = client.poll(index=before.revision, namespace=ns, key="p", wait=0, prev_value=True)
    assert [(c.value, c.prev_value) for cs in with_prev.events for c in cs.changes] == [(1, None), (2, 1)]


def test_watch_replays_then_streams_live(client, ns, shared_server):
    start = client.put(ns, "w/1", "a").mod_revision
    client.put(ns, "skip", "not under the prefix")
    client.put(ns, "w/2", "b")
    got: list[ChangeSet] = []
    done = threading.Event()

    def consume():
        with Client(shared_server.url) as c:
            for cs in c.watch(ns, prefix="w/", from_revision=start):
                got.append(cs)
                if len(got) == 4:
                    break
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    client.put(ns, "w/3", "c")
    client.delete(ns, "w/1")
    assert done.wait(20), got
    assert [(cs.changes[0].type, cs.changes[0].key) for cs in got] == [
        ("put", "w/1"), ("put", "w/2"), ("put", "w/3"), ("delete", "w/1")]
    revs = [cs.revision for cs in got]
    assert revs == sorted(set(revs)) and revs[0] == start


def test_errors_share_one_tree(client, ns):
    with pytest.raises(StigmerError) as info:
        client.put("bad namespace!", "k", 1)
    assert isinstance(info.value, InvalidArgumentError) and info.value.code == "invalid_argument"
    with pytest.raises(InvalidArgumentError):
        next(iter(client.watch(prefix="x")))


def test_unreachable_server_is_a_connection_error(ns):
    import socket

    from stigmer.client import ConnectionFailedError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", retry=Retry(retries=1, backoff=0.01)) as c:
        with pytest.raises(ConnectionFailedError) as info:
            c.get(ns, "k")
    assert info.value.code == "unavailable" and isinstance(info.value, StigmerError)
