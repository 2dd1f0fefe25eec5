"""Claims on both stores: the engine over a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json

import msgspec
import pytest

from stigmer.engine import values
from stigmer.engine.changes import ChangeHub
from stigmer.engine.claims import CLAIMS, MISSING, Claims, EvidenceInput as E, Result, verify_in
from stigmer.engine.errors import InvalidArgument, NotFound
from stigmer.engine.kv import KV
from stigmer.engine.types import ChangeFilter

T = "t1"
SHA_HELLO = hashlib.sha256(b"hello world").hexdigest()


class Event(msgspec.Struct):
    event_type: str
    data: object


class Events:
    """An EventLookup over a fixed log (the AgentState state-event log stands here): by sequence when
    the source is a positive integer string, else by event id."""

    def __init__(self, log: dict[str, list[tuple[int, str, Event]]]):
        self.log = log

    async def event(self, tenant: str, source: str):
        for seq, event_id, ev in self.log.get(tenant, []):
            if (source.isdigit() and source[0] != "0" and int(source) == seq) or source == event_id:
                return ev
        return None


UPSERT = Event("upsert", {"b": 2, "a": {"x": [1, "é/"]}})
DELETE = Event("delete", None)
EVENTS = Events({T: [(1, "ev-one", UPSERT), (2, "ev-two", DELETE)]})


@pytest.fixture
def claims(store, kv):
    return Claims(store, kv, EVENTS)


def text(data="hello world", digest=SHA_HELLO, source="summary") -> E:
    return E("text_hash", source, data=data, hash=digest)


async def make(claims, evidence=None, tenant=T, subject=("state", "w1"), statement="ok"):
    return await claims.create(tenant, *subject, statement, [text()] if evidence is None else evidence)


async def test_create_and_get_keep_fifty_items_in_order_with_null_distinct_from_absent(claims, clock):
    items = []
    for i in range(50):
        items.append([text(source=f"t{i}"),
                      E("json_value", f"j{i}", data={"z": 1, "a": [None, i]}, json_path="$.a[0]", expected_value=None),
                      E("state_event", f"{i + 1}", hash=SHA_HELLO.upper()),
                      E("key_value", namespace="app", key=f"k/{i}", expected_value={"n": i})][i % 4])
    c = await claims.create(T, "state", "w1", "fifty", items)
    now = round(clock.now() * 1000)
    assert (c.status, c.created_at, c.updated_at) == ("pending", now, now)
    got = await claims.get(T, c.id)
    assert got == c and len(got.evidence) == 50
    assert [e.source for e in got.evidence[:4]] == ["t0", "j1", "3", "app/k/3"]
    assert len({e.id for e in got.evidence}) == 50 and all(len(e.id) == 21 and e.claim_id == c.id for e in got.evidence)
    j = got.evidence[1]
    assert j.data == {"z": 1, "a": [None, 1]} and list(j.data) == ["z", "a"]  # member order as given
    assert j.expected_value is None  # JSON null is a value
    s = got.evidence[2]
    assert s.hash == SHA_HELLO and s.data is MISSING and s.expected_value is MISSING and s.json_path is None
    k = got.evidence[3]
    assert (k.kind, k.key_ref(), k.json_path, k.expected_value) == ("key_value", ("app", "k/3"), "$", {"n": 3})
    assert await claims.get(T, "unknown") is None and await claims.get(T, "") is None


async def results(claims, evidence, tenant=T):
    c = await make(claims, evidence, tenant)
    run = await claims.verify(tenant, c.id)
    return run, [(r.passed, r.message) for r in run.results]


async def test_text_hash_and_json_value_messages(claims):
    run, got = await results(claims, [
        text(), text(digest="0" * 64),
        E("json_value", "s", data={"a": {"b": [1, 2.0]}}, json_path="$.a.b[1]", expected_value=2),
        E("json_value", "s", data={"a": {"b": 1}, "c": True}, json_path="$", expected_value={"c": True, "a": {"b": 1.0}}),
        E("json_value", "s", data={"a": True}, json_path="$.a", expected_value=1),
        E("json_value", "s", data={"a": None}, json_path="$.a", expected_value=None),
        E("json_value", "s", data={"a": [1]}, json_path="$.a[1]", expected_value=None),
        E("json_value", "s", data=[{"a": 1}], json_path="$.a", expected_value=1),
    ])
    assert got == [(True, "hash matched"), (False, "hash mismatch"), (True, "json value matched"),
                   (True, "json value matched"), (False, "json value mismatch"), (True, "json value matched"),
                   (False, "json path did not resolve"), (False, "json path did not resolve")]
    assert run.status == "failed" and [r.kind for r in run.results][:3] == ["text_hash", "text_hash", "json_value"]
    assert all(r.source == ("summary" if r.kind == "text_hash" else "s") for r in run.results)


async def test_state_event_messages(claims, store, kv):
    compact = json.dumps(UPSERT.data, separators=(",", ":"), ensure_ascii=False)
    assert compact == '{"b":2,"a":{"x":[1,"é/"]}}'
    upsert_hash, delete_hash = hashlib.sha256(compact.encode()).hexdigest(), hashlib.sha256(b"").hexdigest()
    evidence = [
        E("state_event", "1", hash=upsert_hash), E("state_event", "ev-one", hash=upsert_hash.upper()),
        E("state_event", "1", hash=delete_hash), E("state_event", "2", hash=delete_hash),
        E("state_event", "99", hash=upsert_hash), E("state_event", "01", hash=upsert_hash),
        E("state_event", "ev-one", json_path="$.a.x[1]", expected_value="é/"),
        E("state_event", "1", json_path="$.a.y", expected_value=1),
        E("state_event", "1", json_path="$.b", expected_value="2"),
        E("state_event", "ev-two", json_path="$", expected_value=None),
        E("state_event", "1", hash=upsert_hash, json_path="$.b", expected_value=3),  # the hash decides
    ]
    _, got = await results(claims, evidence)
    assert got == [(True, "state event hash matched"), (True, "state event hash matched"),
                   (False, "state event hash mismatch"), (True, "state event hash matched"),
                   (False, "state event not found"), (False, "state event not found"),
                   (True, "state event json value matched"), (False, "json path did not resolve"),
                   (False, "json value mismatch"), (False, "json evidence is missing data, path, or expected value"),
                   (True, "state event hash matched")]
    _, other_tenant = await results(claims, [E("state_event", "1", hash=upsert_hash)], tenant="t2")
    assert other_tenant == [(False, "state event not found")]
    without_log = Claims(store, kv)  # no state-event log wired
    _, got = await results(without_log, [E("state_event", "1", hash=upsert_hash)])
    assert got == [(False, "state event not found")]


async def test_key_value_reads_the_live_key_at_verification(claims, kv, clock):
    c = await make(claims, [E("key_value", namespace="app", key="cfg", json_path="$.mode", expected_value="on"),
                            E("key_value", namespace="app", key="cfg", expected_value={"mode": "on", "n": 1.0})])
    first = await claims.verify(T, c.id)
    assert [r.message for r in first.results] == ["key not found", "key not found"] and first.status == "failed"
    await kv.put(T, "app", "cfg", {"n": 1, "mode": "on"}, ttl=10)
    second = await claims.verify(T, c.id)
    assert [r.message for r in second.results] == ["key value matched", "key value matched"]
    assert second.status == "verified" and [r.source for r in second.results] == ["app/cfg", "app/cfg"]
    await kv.put(T, "app", "cfg", {"mode": "off"}, ttl=10)
    assert [r.message for r in (await claims.verify(T, c.id)).results] == ["json value mismatch", "json value mismatch"]
    await kv.put(T, "app", "cfg", [1], ttl=10)
    assert [r.message for r in (await claims.verify(T, c.id)).results] == ["json path did not resolve",
                                                                           "json value mismatch"]
    clock.advance(10)  # expired: absent, no sweep needed
    assert [r.message for r in (await claims.verify(T, c.id)).results] == ["key not found", "key not found"]
    await kv.put("t2", "app", "cfg", {"mode": "on", "n": 1})  # another tenant's key is not this claim's
    assert (await claims.verify(T, c.id)).status == "failed"


async def test_every_run_is_kept_and_the_claim_has_the_latest_runs_status(claims, kv, clock):
    c = await make(claims, [E("key_value", namespace="app", key="flag", expected_value=True)])
    statuses = []
    for i in range(5):
        if i % 2:
            await kv.put(T, "app", "flag", True)
        else:
            await kv.delete(T, "app", "flag") if i else None
        run = await claims.verify(T, c.id)
        statuses.append(run.status)
        now = await claims.get(T, c.id)
        assert (now.status, now.updated_at) == (run.status, run.created_at)
        if i < 2:
            clock.advance(0.25)
    assert statuses == ["failed", "verified", "failed", "verified", "failed"]
    runs, nxt = await claims.runs(T, c.id, limit=10, order="asc")
    assert nxt is None and [r.status for r in runs] == statuses and len({r.id for r in runs}) == 5
    times = [r.created_at for r in runs]
    assert times == sorted(times) and len(set(times)) == 5  # strictly ordered even on a clock that stood still
    assert times[3] == times[2] + 1 and times[4] == times[3] + 1
    assert times[0] == c.created_at + 1  # the first verify came in the creation's millisecond
    desc, _ = await claims.runs(T, c.id, limit=10)
    assert desc == runs[::-1]
    assert (await claims.get(T, c.id)).status == desc[0].status
    assert all(len(r.results) == 1 and r.results[0].evidence_id == c.evidence[0].id for r in runs)


async def test_a_run_is_verified_only_when_every_item_passed(claims):
    run, got = await results(claims, [text(), text()])
    assert run.status == "verified" and got == [(True, "hash matched")] * 2
    run, _ = await results(claims, [text(), text(data="hello")])
    assert run.status == "failed"


async def test_pages_are_exact_in_both_orders_with_cursors_and_filters(claims, clock):
    made = []
    for i in range(7):
        made.append(await make(claims, subject=("state", f"w{i % 2}")))
        if i % 3 == 2:
            clock.advance(0.001)  # several claims share a millisecond: the id breaks the tie
    ordered = sorted(made, key=lambda c: (c.created_at, c.id))
    for order, expect in (("asc", ordered), ("desc", ordered[::-1])):
        seen, cursor, pages = [], None, 0
        while True:
            page, cursor = await claims.list(T, limit=3, cursor=cursor, order=order)
            pages += 1
            seen += page
            assert all(c.evidence == [] for c in page)
            if cursor is None:
                break
            assert cursor == (page[-1].created_at, page[-1].id)
        assert [c.id for c in seen] == [c.id for c in expect] and pages == 3
    exact, cursor = await claims.list(T, limit=7, order="asc")
    assert len(exact) == 7 and cursor is None  # a full last page: no cursor before an empty page
    _, cursor = await claims.list(T, limit=6, order="asc")
    last = (await claims.list(T, limit=6, cursor=cursor, order="asc"))[0]
    assert cursor is not None and last == [msgspec.structs.replace(ordered[-1], evidence=[])]
    w1, _ = await claims.list(T, limit=100, subject_id="w1", order="asc")
    assert [c.id for c in w1] == [c.id for c in ordered if c.subject_id == "w1"]
    assert (await claims.list(T, limit=100, subject_type="state", subject_id="w0"))[0][0].subject_id == "w0"
    assert (await claims.list(T, limit=100, subject_type="other"))[0] == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"order": "up"}, {"cursor": ("1", "x")}, {"subject_id": 3}):
        with pytest.raises(InvalidArgument) as e:
            await claims.list(T, **{"limit": 10, **bad})
        assert e.value.details["field"] == next(iter(bad))


async def test_run_pages_are_exact(claims, clock):
    c = await make(claims)
    for _ in range(5):
        await claims.verify(T, c.id)
    every, _ = await claims.runs(T, c.id, limit=100, order="asc")
    page, cursor = await claims.runs(T, c.id, limit=2, order="asc")
    rest, last = await claims.runs(T, c.id, limit=3, cursor=cursor, order="asc")
    assert page + rest == every and last is None
    page, cursor = await claims.runs(T, c.id, limit=4)
    assert page == every[:0:-1] and (await claims.runs(T, c.id, limit=4, cursor=cursor))[0] == [every[0]]


async def test_tenants_are_isolated(claims):
    a = await make(claims, tenant="ta")
    await claims.verify("ta", a.id)
    assert await claims.get("tb", a.id) is None
    assert (await claims.list("tb", limit=10))[0] == []
    with pytest.raises(NotFound):
        await claims.verify("tb", a.id)
    with pytest.raises(NotFound):
        await claims.runs("tb", a.id, limit=10)
    assert len((await claims.runs("ta", a.id, limit=10))[0]) == 1


async def test_verify_of_an_unknown_or_vanished_claim_is_not_found(claims, store):
    with pytest.raises(NotFound) as e:
        await claims.verify(T, "no-such-claim")
    assert e.value.message == "claim not found"
    with pytest.raises(NotFound):
        await claims.runs(T, "no-such-claim", limit=10)
    c = await make(claims)
    with pytest.raises(NotFound):  # the mutation re-checks, in its own tenant
        await store.submit("t9", lambda tx: verify_in(tx, c.id, "run-id", "verified", []))
    assert (await claims.runs(T, c.id, limit=10))[0] == []

    def vanish(tx):  # no route deletes a claim; the row goes by hand
        sql = "DELETE FROM claims WHERE tenant = {0} AND id = {0}"
        if hasattr(tx, "cur"):
            tx.write(sql.format("%s"), (tx.tenant, c.id))
        else:
            tx.conn.execute(sql.format("?"), (tx.tenant, c.id))

    await store.submit(T, vanish)
    with pytest.raises(NotFound):
        await claims.verify(T, c.id)
    with pytest.raises(NotFound):  # gone between the lookups and the write: no run
        await store.submit(T, lambda tx: verify_in(tx, c.id, "run-id", "verified", []))


async def test_each_claim_is_mirrored_as_a_key_that_watchers_see(claims, store, kv):
    hub = ChangeHub(store)
    watcher = await hub.watch(ChangeFilter(T, CLAIMS))
    c = await make(claims, [text()])
    doc = values.decode((await kv.get(T, CLAIMS, c.id)).value)
    assert doc == {"id": c.id, "subject_type": "state", "subject_id": "w1", "statement": "ok", "status": "pending",
                   "created_at": c.created_at, "updated_at": c.created_at, "latest_run_id": None}
    run = await claims.verify(T, c.id)
    entry = await kv.get(T, CLAIMS, c.id)
    assert entry.version == 2 and values.decode(entry.value)["status"] == "verified"
    assert values.decode(entry.value)["latest_run_id"] == run.id and entry.expires_at is None
    sets = [await watcher.next(5), await watcher.next(5)]
    assert [[(ch.key, values.decode(ch.value)["status"]) for ch in s.changes] for s in sets] == [
        [(c.id, "pending")], [(c.id, "verified")]]
    watcher.close()


async def test_concurrent_verifies_keep_every_run_and_the_newest_status(claims, kv):
    c = await make(claims, [E("key_value", namespace="app", key="k", expected_value=1)])

    async def flip(i):
        if i % 3 == 0:
            await kv.put(T, "app", "k", i % 2)
        return await claims.verify(T, c.id)

    made = await asyncio.gather(*(flip(i) for i in range(24)), *(make(claims) for _ in range(8)))
    runs, _ = await claims.runs(T, c.id, limit=100, order="asc")
    assert len(runs) == 24 and {r.id for r in runs} == {r.id for r in made[:24]}
    assert len({r.created_at for r in runs}) == 24  # strictly ordered under concurrency too
    assert (await claims.get(T, c.id)).status == runs[-1].status
    assert (await claims.get(T, c.id)).updated_at == runs[-1].created_at
    assert len((await claims.list(T, limit=100))[0]) == 9


async def test_a_failing_create_leaves_nothing(claims, store):
    ok = await make(claims)

    def boom(tx):
        from stigmer.engine.claims import create_in
        create_in(tx, msgspec.structs.replace(ok, id="other-id"))
        raise RuntimeError("after writing")

    with pytest.raises(RuntimeError):
        await store.submit(T, boom)
    assert await claims.get(T, "other-id") is None
    assert [c.id for c in (await claims.list(T, limit=10))[0]] == [ok.id]


@pytest.mark.parametrize(("evidence", "field", "message"), [
    ([], "evidence", None),
    ([text()] * 51, "evidence", None),
    (["x"], "evidence[0]", None),
    ([E("nope", "s")], "evidence[0].kind", None),
    ([text(source="")], "evidence[0].source", "String must contain at least 1 character(s)"),
    ([text(source="s" * 256)], "evidence[0].source", "String must contain at most 255 character(s)"),
    ([text(source=None)], "evidence[0].source", None),
    ([text(), text(data="")], "evidence[1].data", None),
    ([text(data=5)], "evidence[0].data", None),
    ([text(digest="g" * 64)], "evidence[0].hash", "hash must be a SHA-256 hex digest"),
    ([text(digest="a" * 63)], "evidence[0].hash", "hash must be a SHA-256 hex digest"),
    ([E("json_value", "s", data=1, json_path="a", expected_value=1)], "evidence[0].json_path",
     "json_path must be a simple JSON path"),
    ([E("json_value", "s", data=1, json_path="$..a", expected_value=1)], "evidence[0].json_path", None),
    ([E("json_value", "s", json_path="$", expected_value=1)], "evidence[0].data", "data is required"),
    ([E("json_value", "s", data=None, json_path="$")], "evidence[0].expected_value", "expected_value is required"),
    ([E("state_event", "1")], "evidence[0]", "state_event evidence requires hash or json_path with expected_value"),
    ([E("state_event", "1", json_path="$")], "evidence[0]", None),
    ([E("state_event", "1", expected_value=1)], "evidence[0]", None),
    ([E("state_event", "1", hash="x")], "evidence[0].hash", None),
    ([E("key_value", namespace="bad ns", key="k", expected_value=1)], "evidence[0].namespace", None),
    ([E("key_value", namespace="app", key="", expected_value=1)], "evidence[0].key", None),
    ([E("key_value", namespace="app", key="k")], "evidence[0].expected_value", None),
    ([E("key_value", namespace="app", key="k", json_path="$[x]", expected_value=1)], "evidence[0].json_path", None),
])
async def test_invalid_evidence_is_refused_with_its_field(claims, evidence, field, message):
    with pytest.raises(InvalidArgument) as e:
        await make(claims, evidence)
    assert e.value.details["field"] == field
    if message:
        assert e.value.message == message
    assert (await claims.list(T, limit=10))[0] == []


async def test_invalid_claim_members_are_refused(claims):
    for subject, statement, field in [(("", "w"), "s", "subject_type"), (("s" * 101, "w"), "s", "subject_type"),
                                      (("s", "w" * 256), "s", "subject_id"), (("s", "w"), "", "statement"),
                                      (("s", "w"), "x" * 5001, "statement"), (("s", 1), "s", "subject_id"),
                                      (("s", "a\x00b"), "s", "subject_id"), (("s", "\ud800"), "s", "subject_id")]:
        with pytest.raises(InvalidArgument) as e:
            await make(claims, subject=subject, statement=statement)
        assert e.value.details["field"] == field
    edge = await make(claims, [text(data="a\x00b", digest=hashlib.sha256(b"a\x00b").hexdigest())],
                      subject=("s" * 100, "w" * 255), statement="x" * 5000)
    assert (await claims.verify(T, edge.id)).status == "verified"  # text data may hold U+0000


def test_results_are_plain_records():
    assert Result("e", "text_hash", "s", True, "hash matched").passed is True


async def test_claims_and_runs_survive_a_restart(open_store, store_kind):
    s = await open_store()
    first = Claims(s, KV(s), EVENTS)
    c = await make(first)
    run = await first.verify(T, c.id)
    await s.close()
    s2 = await open_store()
    again = Claims(s2, KV(s2), EVENTS)
    assert (await again.get(T, c.id)) == msgspec.structs.replace(c, status="verified", updated_at=run.created_at)
    assert (await again.runs(T, c.id, limit=10))[0] == [run]


async def test_two_replicas_verifying_one_claim_keep_every_run_in_order(open_store, store_kind):
    if store_kind != "postgres":
        pytest.skip("one process owns a SQLite file")
    a, b = await open_store(), await open_store()
    on_a, on_b = Claims(a, KV(a)), Claims(b, KV(b))
    c = await make(on_a, [E("key_value", namespace="app", key="k", expected_value=1)])
    await KV(b).put(T, "app", "k", 1)
    runs = await asyncio.gather(*(side.verify(T, c.id) for side in [on_a, on_b] * 10))
    kept, _ = await on_b.runs(T, c.id, limit=100, order="asc")
    assert {r.id for r in kept} == {r.id for r in runs} and len({r.created_at for r in kept}) == 20
    for side in (on_a, on_b):
        now = await side.get(T, c.id)
        assert (now.status, now.updated_at) == ("verified", kept[-1].created_at)
