"""Conversations on both stores: the engine over a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from stigmer.engine import access, values
from stigmer.engine.changes import ChangeHub
from stigmer.engine.conversations import CONVERSATIONS, Conversations, MessageInput as M, create_in
from stigmer.engine.errors import Conflict, Forbidden, InvalidArgument, NotFound
from stigmer.engine.types import ChangeFilter

T = "t1"


@pytest.fixture
def convs(store):
    return Conversations(store)


def msg(i=0, **members) -> M:
    members.setdefault("role", ("user", "assistant")[i % 2])
    members.setdefault("content", f"message {i}")
    return M(**members)


async def test_create_with_1000_messages_and_50_tags_keeps_all_in_order(convs, clock):
    messages = [msg(i, token_count=i, input_tokens=1, output_tokens=2, cost_microdollars=3 if i % 2 else None,
                    metadata={"z": i, "a": None} if i == 7 else None, model="m" if i == 1 else None)
                for i in range(1000)]
    tags = [f"tag-{i:02d}" for i in reversed(range(50))]
    c = await convs.create(T, external_id="ext-1", title="T", metadata={"k": "v", "a": [1]}, tags=tags,
                           messages=messages)
    now = round(clock.now() * 1000)
    assert (c.message_count, c.token_count, c.total_tokens, c.total_cost_microdollars) == (
        1000, sum(range(1000)), 3000, 1500)
    assert (c.created_at, c.updated_at) == (now, now) and c.tags == sorted(f"tag-{i:02d}" for i in range(50))
    got = await convs.get(T, c.id)
    assert got == c and len(got.messages) == 1000
    assert [m.content for m in got.messages] == [f"message {i}" for i in range(1000)]
    assert [m.position for m in got.messages] == list(range(1000))
    assert all(m.created_at == now and m.conversation_id == c.id and len(m.id) == 21 for m in got.messages)
    assert list(got.messages[7].metadata) == ["z", "a"] and got.messages[7].metadata["a"] is None
    assert got.messages[1].model == "m" and got.messages[0].cost_microdollars is None
    assert list(got.metadata) == ["k", "a"]
    assert (await convs.get(T, c.id, with_messages=False)).messages == []
    assert len((await convs.get(T, c.id, max_messages=10)).messages) == 10


async def test_an_empty_conversation_and_cleared_members(convs):
    c = await convs.create(T)
    assert (c.external_id, c.title, c.metadata, c.tags, c.messages, c.message_count) == (None, None, None, [], [], 0)
    assert await convs.get(T, c.id) == c


async def test_a_failing_create_leaves_nothing(convs, store):
    ok = await convs.create(T, title="ok")
    other = msgspec.structs.replace(ok, id="other-id", tags=["x"], messages=[
        msgspec.structs.replace(m, id=f"m{i}", conversation_id="other-id")
        for i, m in enumerate((await convs.create(T, messages=[msg(0), msg(1)])).messages)])

    def boom(tx):
        create_in(tx, other)
        raise RuntimeError("after writing")

    with pytest.raises(RuntimeError):
        await store.submit(T, boom)
    assert await convs.get(T, "other-id") is None
    assert (await convs.messages(T, ok.id))[0] == []
    assert await convs.all_tags(T) == []
    assert await store.kv.get(T, CONVERSATIONS, "other-id") is None
    assert len((await convs.list(T, limit=10))[0]) == 2


async def test_an_invalid_message_refuses_the_whole_create(convs):
    with pytest.raises(InvalidArgument) as err:
        await convs.create(T, external_id="x", messages=[msg(0), msg(1, role="robot")])
    assert err.value.details["field"] == "messages[1].role"
    assert await convs.by_external_id(T, "x") is None and (await convs.list(T))[0] == []


@pytest.mark.parametrize(("message", "field"), [
    (M("user", ""), "messages[0].content"),
    (M("user", "a\x00b"), "messages[0].content"),
    (M("user", "x", token_count=-1), "messages[0].token_count"),
    (M("user", "x", token_count=None), "messages[0].token_count"),
    (M("user", "x", input_tokens=True), "messages[0].input_tokens"),
    (M("user", "x", model="m" * 101), "messages[0].model"),
    (M("user", "x", observation_type="nope"), "messages[0].observation_type"),
    (M("user", "x", status="ok"), "messages[0].status"),
    (M("user", "x", level="info"), "messages[0].level"),
    (M("user", "x", metadata=[1]), "messages[0].metadata"),
    ("not a message", "messages[0]"),
])
async def test_invalid_messages_are_refused_with_their_field(convs, message, field):
    with pytest.raises(InvalidArgument) as err:
        await convs.create(T, messages=[message])
    assert err.value.details["field"] == field


async def test_message_and_tag_limits(convs):
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await convs.create(T, messages=[msg(i) for i in range(1001)])
    with pytest.raises(InvalidArgument, match="at most 50"):
        await convs.create(T, tags=[f"t{i}" for i in range(51)])
    for bad, text in (("", "tag cannot be empty"), ("x" * 51, "tag cannot exceed 50 characters"),
                      ("a b", "tag can only contain letters, numbers, hyphens, and underscores")):
        with pytest.raises(InvalidArgument, match=text):
            await convs.create(T, tags=[bad])
    c = await convs.create(T)
    with pytest.raises(InvalidArgument, match="at least 1"):
        await convs.append(T, c.id, [])
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await convs.append(T, c.id, [msg(i) for i in range(1001)])
    with pytest.raises(InvalidArgument):
        await convs.create(T, external_id="e" * 1025)


async def test_duplicate_external_id_is_a_conflict_and_writes_nothing(convs):
    a = await convs.create(T, external_id="ext")
    with pytest.raises(Conflict, match="A conversation with this external_id already exists"):
        await convs.create(T, external_id="ext", messages=[msg(0)])
    assert [c.id for c in (await convs.list(T))[0]] == [a.id]
    b = await convs.create(T, external_id="other")
    with pytest.raises(Conflict):
        await convs.update(T, b.id, external_id="ext")
    assert (await convs.update(T, a.id, external_id="ext")).external_id == "ext"  # its own: no conflict
    assert (await convs.create("t2", external_id="ext")).external_id == "ext"  # per tenant


async def test_by_external_id_returns_every_message(convs):
    c = await convs.create(T, external_id="ext/é %", messages=[msg(i) for i in range(1000)])
    await convs.append(T, c.id, [msg(i) for i in range(1000, 1500)])
    got = await convs.by_external_id(T, "ext/é %")
    assert got.id == c.id and len(got.messages) == 1500 and got.message_count == 1500
    assert [m.position for m in got.messages] == list(range(1500))
    assert await convs.by_external_id(T, "x\x00") is None and await convs.by_external_id(T, "\udc80") is None
    assert await convs.by_external_id(T, "ext/é") is None and await convs.by_external_id("t2", "ext/é %") is None
    assert len((await convs.get(T, c.id)).messages) == 1000  # get caps at the first 1000


async def test_twenty_concurrent_appends_lose_no_increment(convs, clock):
    c = await convs.create(T, messages=[msg(0, token_count=1)])

    async def add(i):
        clock.advance(0.001)
        return await convs.append(T, c.id, [msg(i, token_count=2, input_tokens=1, cost_microdollars=5)] * 3)

    made = await asyncio.gather(*(add(i) for i in range(20)))
    got = await convs.get(T, c.id)
    assert (got.message_count, got.token_count, got.total_tokens, got.total_cost_microdollars) == (61, 121, 60, 300)
    assert [m.position for m in got.messages] == list(range(61))
    assert {m.id for batch in made for m in batch} == {m.id for m in got.messages[1:]}
    assert got.updated_at == max(m.created_at for m in got.messages)
    for batch in made:  # one request's messages are contiguous and share one created_at
        positions = [m.position for m in batch]
        assert positions == list(range(positions[0], positions[0] + 3)) and len({m.created_at for m in batch}) == 1


async def test_append_to_an_unknown_conversation_is_not_found_after_validation(convs):
    with pytest.raises(InvalidArgument):
        await convs.append(T, "nope", [msg(0, role="x")])
    with pytest.raises(NotFound, match="Conversation not found"):
        await convs.append(T, "nope", [msg(0)])
    with pytest.raises(NotFound):
        await convs.append(T, "\udc80", [msg(0)])


async def test_list_pages_are_exact_in_both_orders_with_a_tag_filter(convs, clock):
    made = []
    for i in range(23):
        clock.advance(0.001 * (i % 3 == 0))  # some share updated_at: ids break the tie
        made.append(await convs.create(T, tags=["even"] if i % 2 == 0 else ["odd", "x"]))
    await convs.create("t2", tags=["even"])
    by_key = sorted(made, key=lambda c: (c.updated_at, c.id))
    for order, expected in (("asc", by_key), ("desc", by_key[::-1])):
        for tag, want in ((None, expected), ("even", [c for c in expected if "even" in c.tags])):
            seen, cursor = [], None
            while True:
                rows, cursor = await convs.list(T, limit=4, cursor=cursor, order=order, tag=tag)
                assert len(rows) == 4 or cursor is None
                seen.extend(rows)
                if cursor is None:
                    break
            assert [c.id for c in seen] == [c.id for c in want]
            assert seen == [msgspec.structs.replace(c, messages=[]) for c in want]  # with their tags
    rows, cursor = await convs.list(T, limit=23)
    assert len(rows) == 23 and cursor is None
    assert (await convs.list(T, tag="nobody"))[0] == []
    with pytest.raises(InvalidArgument):
        await convs.list(T, tag="bad tag")
    with pytest.raises(InvalidArgument):
        await convs.list(T, order="up")
    with pytest.raises(InvalidArgument):
        await convs.list(T, cursor=("1", "x"))


async def test_update_changes_only_the_members_given_and_moves_updated_at(convs, clock):
    c = await convs.create(T, external_id="e", title="T", metadata={"a": 1}, tags=["t"], messages=[msg(0)])
    clock.advance(1)
    u = await convs.update(T, c.id, title="New")
    assert (u.title, u.metadata, u.external_id, u.tags, u.messages) == ("New", {"a": 1}, "e", ["t"], [])
    assert u.updated_at == c.updated_at + 1000 and u.created_at == c.created_at and u.message_count == 1
    clock.advance(1)
    u = await convs.update(T, c.id, metadata={"b": 2, "a": 0}, external_id=None)
    assert (u.title, list(u.metadata), u.external_id) == ("New", ["b", "a"], None)
    assert await convs.get(T, c.id, with_messages=False) == u
    assert await convs.by_external_id(T, "e") is None
    rows, _ = await convs.list(T, order="desc")
    assert rows[0].id == c.id
    with pytest.raises(NotFound):
        await convs.update(T, "nope", title="x")
    with pytest.raises(InvalidArgument):
        await convs.update(T, c.id, metadata="nope")


async def test_delete_removes_messages_and_tags(convs):
    c = await convs.create(T, tags=["a"], messages=[msg(0)], external_id="e")
    keep = await convs.create(T, tags=["b"])
    await convs.delete(T, c.id)
    assert await convs.get(T, c.id) is None and await convs.by_external_id(T, "e") is None
    assert await convs.all_tags(T) == ["b"]
    with pytest.raises(NotFound):
        await convs.messages(T, c.id)
    with pytest.raises(NotFound):
        await convs.delete(T, c.id)
    assert [x.id for x in (await convs.list(T))[0]] == [keep.id]
    assert (await convs.create(T, external_id="e")).external_id == "e"  # the external id is free again


async def test_bulk_delete_skips_others_ids_and_counts_duplicates_once(convs):
    mine = [await convs.create(T, messages=[msg(0)]) for _ in range(5)]
    theirs = await convs.create("t2")
    n = await convs.bulk_delete(T, [mine[0].id, mine[1].id, mine[1].id, theirs.id, "unknown"])
    assert n == 2
    assert {c.id for c in (await convs.list(T))[0]} == {c.id for c in mine[2:]}
    assert await convs.get("t2", theirs.id) is not None
    assert await convs.bulk_delete(T, []) == 0 and await convs.bulk_delete(T, [mine[0].id]) == 0
    with pytest.raises(InvalidArgument):
        await convs.bulk_delete(T, [1])


async def test_messages_pages_and_an_unknown_after_is_the_first_page(convs):
    c = await convs.create(T, messages=[msg(i) for i in range(10)])
    other = await convs.create(T, messages=[msg(0)])
    seen, after = [], None
    while True:
        rows, after = await convs.messages(T, c.id, after=after, limit=3)
        seen.extend(rows)
        if after is None:
            break
        assert after == rows[-1].id
    assert [m.content for m in seen] == [f"message {i}" for i in range(10)]
    first, _ = await convs.messages(T, c.id, limit=3)
    for unknown in ("nope", other.messages[0].id, "a\x00", "\udc80"):  # D33: not a message of this conversation
        assert (await convs.messages(T, c.id, after=unknown, limit=3))[0] == first
    assert (await convs.messages(T, c.id, after=seen[-1].id))[0] == []
    with pytest.raises(NotFound):
        await convs.messages("t2", c.id)


async def test_tags_add_remove_and_the_tenants_tags(convs, clock):
    c = await convs.create(T, tags=["b"])
    await convs.create(T, tags=["a", "Z"])
    await convs.create("t2", tags=["other"])
    clock.advance(1)
    assert await convs.add_tags(T, c.id, ["d", "b", "c", "c"]) == ["b", "c", "d"]
    assert await convs.tags(T, c.id) == ["b", "c", "d"]
    assert (await convs.get(T, c.id)).updated_at == c.updated_at  # tags do not move updated_at
    assert await convs.remove_tag(T, c.id, "c") == ["b", "d"]
    assert await convs.remove_tag(T, c.id, "absent") == ["b", "d"]
    assert await convs.remove_tag(T, c.id, "no such\x00tag \udc80") == ["b", "d"]
    assert await convs.all_tags(T) == ["Z", "a", "b", "d"]  # code-point order
    assert await convs.add_tags(T, c.id, [f"n{i}" for i in range(50)]) == sorted(["b", "d"] + [f"n{i}" for i in range(50)])
    for call in (convs.tags(T, "nope"), convs.add_tags(T, "nope", ["x"]), convs.remove_tag(T, "nope", "x"),
                 convs.tags("t2", c.id)):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(InvalidArgument):
        await convs.add_tags(T, "nope", [])  # validation first


async def test_tenants_are_isolated(convs):
    a = await convs.create(T, external_id="same", tags=["x"], messages=[msg(0)])
    b = await convs.create("t2", external_id="same", tags=["y"])
    assert await convs.get("t2", a.id) is None and await convs.get(T, b.id) is None
    assert (await convs.by_external_id("t2", "same")).id == b.id
    assert [c.id for c in (await convs.list(T))[0]] == [a.id] and await convs.all_tags("t2") == ["y"]
    with pytest.raises(NotFound):
        await convs.update("t2", a.id, title="x")
    with pytest.raises(NotFound):
        await convs.delete("t2", a.id)
    assert [c.id async for c in convs.export("t2")] == [b.id]
    assert [c.id async for c in convs.export("t2", [a.id, b.id])] == [b.id]


class CountingReads:
    """The store's own conversation reads, counting the pages asked for (delegation, not a stand-in)."""

    def __init__(self, real):
        self.real = real
        self.pages = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    async def list(self, *args):
        self.pages += 1
        return await self.real.list(*args)


async def test_export_of_2000_conversations_streams_page_by_page(convs, store, clock):
    ids = []
    for start in range(0, 2000, 100):  # a hundred at a time: the writer commits them in groups
        clock.advance(0.001)
        ids.extend(c.id for c in await asyncio.gather(*(
            convs.create(T, messages=[msg(i)] * (i % 3)) for i in range(start, start + 100))))
    clock.advance(1)
    for _ in range(2):  # more than one page of messages
        await convs.append(T, ids[5], [msg(0)] * 600)
    counting = CountingReads(store.conversations)
    store.conversations = counting
    try:
        stream = convs.export(T)
        first = await anext(stream)
        assert first.id == ids[5] and len(first.messages) == 1202 and first.message_count == 1202
        assert counting.pages == 1  # yielded before the rest was read
        seen = [first] + [c async for c in stream]
        assert counting.pages == 21
    finally:
        store.conversations = counting.real
    assert len(seen) == 2000 and len({c.id for c in seen}) == 2000
    assert [(c.updated_at, c.id) for c in seen] == sorted(((c.updated_at, c.id) for c in seen), reverse=True)
    assert all(len(c.messages) == c.message_count for c in seen)
    assert sum(c.message_count for c in seen) == sum(i % 3 for i in range(2000)) + 1200
    assert [c.id async for c in convs.export(T, limit=150)] == [c.id for c in seen[:150]]


async def test_export_of_explicit_ids_is_by_updated_at_then_id_descending(convs, clock):
    made = []
    for i in range(6):
        clock.advance(0.001 * (i % 2))
        made.append(await convs.create(T, messages=[msg(i)]))
    wanted = [made[1].id, made[4].id, "unknown", made[0].id, made[4].id]
    got = [c async for c in convs.export(T, wanted)]
    expected = sorted((made[i] for i in (0, 1, 4)), key=lambda c: (c.updated_at, c.id), reverse=True)
    assert [c.id for c in got] == [c.id for c in expected]
    assert all(c.messages and c.messages[0].content.startswith("message") for c in got)


async def test_each_conversation_is_mirrored_as_a_key_that_watchers_see(convs, store, kv, clock):
    hub = ChangeHub(store)
    watcher = await hub.watch(ChangeFilter(T, CONVERSATIONS))
    c = await convs.create(T, title="T", metadata={"k": "v"}, tags=["a"], messages=[msg(0, token_count=4)])
    doc = values.decode((await kv.get(T, CONVERSATIONS, c.id)).value)
    assert doc == {"id": c.id, "external_id": None, "title": "T", "metadata": {"k": "v"}, "tags": ["a"],
                   "message_count": 1, "token_count": 4, "total_tokens": 0, "total_cost_microdollars": 0,
                   "created_at": c.created_at, "updated_at": c.updated_at}
    clock.advance(1)
    await convs.update(T, c.id, title="U")
    await convs.append(T, c.id, [msg(1, token_count=1)])
    await convs.add_tags(T, c.id, ["b"])
    await convs.remove_tag(T, c.id, "absent")  # no change, no event
    await convs.remove_tag(T, c.id, "a")
    await convs.delete(T, c.id)
    assert await kv.get(T, CONVERSATIONS, c.id) is None
    changes = []
    while len(changes) < 6:
        changes.extend((await watcher.next(5)).changes)
    watcher.close()
    assert [(ch.key, ch.type) for ch in changes] == [(c.id, "put")] * 5 + [(c.id, "delete")]
    docs = [values.decode(ch.value) for ch in changes[:5]]
    assert [(d["title"], d["message_count"], d["token_count"], d["tags"]) for d in docs] == [
        ("T", 1, 4, ["a"]), ("U", 1, 4, ["a"]), ("U", 2, 5, ["a"]), ("U", 2, 5, ["a", "b"]), ("U", 2, 5, ["b"])]
    assert docs[2]["updated_at"] == c.updated_at + 1000


async def test_counters_never_pass_64_bits_and_times_never_go_back(convs, clock):
    big = msg(0, token_count=2**53 - 1)
    c = await convs.create(T, messages=[big] * 1000)
    await convs.append(T, c.id, [big] * 24)  # 1024 of the largest: 2**63 - 1024, the most a counter may hold
    with pytest.raises(InvalidArgument, match="exceed"):
        await convs.append(T, c.id, [big])
    assert (await convs.get(T, c.id, with_messages=False)).token_count == (2**53 - 1) * 1024
    clock.advance(-5)  # the clock stepped back
    m = (await convs.append(T, c.id, [msg(1)]))[0]
    assert m.created_at == c.updated_at and (await convs.update(T, c.id, title="x")).updated_at == c.updated_at


def test_native_writes_to_the_mirror_are_forbidden(client):
    svc = client.app.state.services
    c = client.portal.call(lambda: svc.conversations.create("default", title="T"))
    mirror = client.get(f"/v1/kv/_conversations/{c.id}")
    assert mirror.status_code == 200 and mirror.json()["value"]["title"] == "T"
    for attempt in (client.put(f"/v1/kv/_conversations/{c.id}", json={"title": "U"}),
                    client.delete(f"/v1/kv/_conversations/{c.id}"),
                    client.post("/v1/txn", json={"ops": [{"op": "put", "namespace": "_conversations", "key": "x",
                                                          "value": 1}]})):
        assert attempt.status_code == 403 and attempt.json()["error"]["code"] == "forbidden", attempt.text


def test_the_mirror_namespace_is_read_only_to_every_credential():
    admin = access.Principal(T, frozenset({"admin"}))
    with pytest.raises(Forbidden):
        access.check(admin, access.WRITE, CONVERSATIONS, "any")
    access.check(admin, access.READ, CONVERSATIONS, "any")
    access.check(admin, access.WATCH, CONVERSATIONS)


async def test_conversations_survive_a_restart(open_store):
    s = await open_store()
    c = await Conversations(s).create(T, external_id="e", tags=["t"], messages=[msg(i) for i in range(3)])
    await s.close()
    second = Conversations(await open_store())
    assert await second.get(T, c.id) == c


async def test_pop_removes_the_last_message_and_its_counts(convs, clock):
    c = await convs.create(T, messages=[msg(0, token_count=3, input_tokens=1, output_tokens=2, cost_microdollars=7),
                                        msg(1, token_count=5, input_tokens=4, cost_microdollars=None)])
    clock.advance(1)
    popped = await convs.pop_message(T, c.id)
    assert (popped.content, popped.position, popped.token_count, popped.input_tokens) == ("message 1", 1, 5, 4)
    got = await convs.get(T, c.id)
    assert (got.message_count, got.token_count, got.total_tokens, got.total_cost_microdollars) == (1, 3, 3, 7)
    assert [m.content for m in got.messages] == ["message 0"] and got.updated_at == c.updated_at + 1000
    added = await convs.append(T, c.id, [msg(2)])  # the position freed is used again: positions stay 0..n-1
    assert added[0].position == 1 and [m.position for m in (await convs.get(T, c.id)).messages] == [0, 1]
    assert (await convs.pop_message(T, c.id)).id == added[0].id
    assert (await convs.pop_message(T, c.id)).content == "message 0"
    clock.advance(1)
    assert await convs.pop_message(T, c.id) is None  # empty: nothing to pop, nothing changes
    empty = await convs.get(T, c.id)
    assert (empty.message_count, empty.token_count, empty.total_tokens, empty.total_cost_microdollars) == (0, 0, 0, 0)
    assert empty.updated_at == c.updated_at + 1000 and empty.messages == []
    for unknown in ("nope", "\udc80"):
        with pytest.raises(NotFound):
            await convs.pop_message(T, unknown)
    with pytest.raises(NotFound):
        await convs.pop_message("t2", c.id)


async def test_clear_removes_every_message_and_keeps_the_conversation(convs, clock):
    c = await convs.create(T, external_id="e", title="T", tags=["a"],
                           messages=[msg(i, token_count=1, output_tokens=2, cost_microdollars=3) for i in range(1000)])
    await convs.append(T, c.id, [msg(i, token_count=1) for i in range(500)])
    other = await convs.create(T, messages=[msg(0)])
    clock.advance(1)
    assert await convs.clear_messages(T, c.id) == 1500
    got = await convs.get(T, c.id)
    assert (got.message_count, got.token_count, got.total_tokens, got.total_cost_microdollars) == (0, 0, 0, 0)
    assert (got.title, got.tags, got.external_id, got.messages) == ("T", ["a"], "e", [])
    assert got.updated_at == c.updated_at + 1000
    assert (await convs.messages(T, c.id))[0] == [] and len((await convs.get(T, other.id)).messages) == 1
    assert await convs.clear_messages(T, c.id) == 0
    assert (await convs.append(T, c.id, [msg(7)]))[0].position == 0
    with pytest.raises(NotFound):
        await convs.clear_messages("t2", c.id)


async def test_pop_and_clear_reach_the_mirror_and_its_watchers(convs, store, kv):
    hub = ChangeHub(store)
    c = await convs.create(T, messages=[msg(0, token_count=2), msg(1, token_count=3)])
    watcher = await hub.watch(ChangeFilter(T, CONVERSATIONS))
    await convs.pop_message(T, c.id)
    await convs.clear_messages(T, c.id)
    await convs.pop_message(T, c.id)  # nothing to pop: no event
    await convs.clear_messages(T, c.id)  # nothing to clear: no event
    await convs.update(T, c.id, title="end")
    changes = []
    while len(changes) < 3:
        changes.extend((await watcher.next(5)).changes)
    watcher.close()
    docs = [values.decode(ch.value) for ch in changes]
    assert [(d["message_count"], d["token_count"], d["title"]) for d in docs] == [(1, 2, None), (0, 0, None),
                                                                                 (0, 0, "end")]
    assert values.decode((await kv.get(T, CONVERSATIONS, c.id)).value)["message_count"] == 0


async def test_the_last_messages_in_order(convs):
    c = await convs.create(T, messages=[msg(i) for i in range(10)])
    rows, nxt = await convs.messages(T, c.id, last=3)
    assert [m.content for m in rows] == ["message 7", "message 8", "message 9"] and nxt is None
    rows, nxt = await convs.messages(T, c.id, last=5, limit=2)
    assert [m.position for m in rows] == [5, 6] and nxt == rows[-1].id
    assert [m.position for m in (await convs.messages(T, c.id, after=nxt, limit=5))[0]] == [7, 8, 9]
    assert len((await convs.messages(T, c.id, last=50))[0]) == 10 and (await convs.messages(T, c.id, last=0))[0] == []
    with pytest.raises(InvalidArgument):
        await convs.messages(T, c.id, last=-1)
    with pytest.raises(InvalidArgument):
        await convs.messages(T, c.id, last=1, after=rows[0].id)
    with pytest.raises(NotFound):
        await convs.messages("t2", c.id, last=1)


async def test_by_external_id_without_messages(convs):
    c = await convs.create(T, external_id="e", messages=[msg(0)])
    got = await convs.by_external_id(T, "e", with_messages=False)
    assert got.id == c.id and got.messages == [] and got.message_count == 1


async def test_search_follows_pop_and_clear(convs, store):
    from stigmer.engine.conversation_search import ConversationSearch

    search = ConversationSearch(store)
    c = await convs.create(T, messages=[msg(0, content="alpha common"), msg(1, content="zebra common")])

    async def found(q):
        return [h.id for h in (await search.search(T, q))[0]]

    assert await found("zebra") == [c.id]
    await convs.pop_message(T, c.id)
    assert await found("zebra") == [] and await found("alpha") == [c.id]
    await convs.append(T, c.id, [msg(2, content="zebra again")])  # the freed position holds a new message
    assert await found("zebra again") == [c.id]
    await convs.clear_messages(T, c.id)
    assert await found("common") == [] and await found("zebra") == []
