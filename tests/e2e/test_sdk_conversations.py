"""The SDK's conversation methods on both faces against the real server process."""

from __future__ import annotations

import inspect

import pytest

from stigmer.client import (
    AsyncClient, Client, ConflictError, Conversation, InvalidArgumentError, Message, NotFoundError,
)


def msg(i=0, **members):
    return {"role": ("user", "assistant")[i % 2], "content": f"message {i}", **members}


@pytest.fixture
def client(shared_server):
    with Client(shared_server.url) as c:
        yield c


@pytest.fixture
async def aclient(shared_server):
    async with AsyncClient(shared_server.url) as c:
        yield c


def test_both_faces_have_the_same_conversation_methods():
    names = [n for n in vars(Client) if "conversation" in n or "message" in n]
    assert len(names) == 15
    for name in names:
        sync, async_ = getattr(Client, name), getattr(AsyncClient, name)
        bare = [inspect.signature(f).replace(return_annotation=inspect.Signature.empty) for f in (sync, async_)]
        assert bare[0] == bare[1], name
        assert inspect.iscoroutinefunction(async_) or inspect.isasyncgenfunction(async_), name


def test_sync_conversation_lifecycle(client, ns):
    c = client.create_conversation(external_id=ns, title="T", metadata={"z": 1, "a": 2}, tags=["b", "a"],
                                   messages=[msg(0, token_count=2, metadata={"k": [1, None]}), msg(1)])
    assert isinstance(c, Conversation) and (c.external_id, c.tags, c.message_count, c.token_count) == (
        ns, ["a", "b"], 2, 2)
    assert list(c.metadata) == ["z", "a"] and c.messages[0].metadata == {"k": [1, None]}
    assert c.created_at.tzinfo is not None and isinstance(c.messages[1], Message) and c.messages[1].position == 1
    with pytest.raises(ConflictError):
        client.create_conversation(external_id=ns)
    assert client.get_conversation(c.id) == c
    assert client.get_conversation_by_external_id(ns) == c
    assert client.get_conversation(c.id, messages=False).messages == []
    added = client.append_messages(c.id, [msg(i) for i in range(2, 6)])
    assert [m.position for m in added] == [2, 3, 4, 5]
    page = client.list_messages(c.id, limit=4)
    assert [m.position for m in page.messages] == [0, 1, 2, 3] and page.next_cursor
    assert [m.position for m in client.list_messages(c.id, cursor=page.next_cursor).messages] == [4, 5]
    assert [m.content for m in client.list_messages(c.id, last=2).messages] == ["message 4", "message 5"]
    assert client.pop_message(c.id).content == "message 5"
    u = client.update_conversation(c.id, title=None, metadata={"n": 1})
    assert (u.title, u.metadata, u.external_id, u.message_count) == (None, {"n": 1}, ns, 5)
    assert client.add_conversation_tags(c.id, ["c"]) == ["a", "b", "c"]
    assert client.remove_conversation_tag(c.id, "a") == ["b", "c"] == client.conversation_tags(c.id)
    assert client.clear_messages(c.id) == 5 and client.pop_message(c.id) is None
    listed = client.list_conversations(tag="c", limit=1000)
    assert c.id in [x.id for x in listed.conversations] and all(x.messages == [] for x in listed.conversations)
    assert c.id in [x.id for x in client.export_conversations()]
    client.delete_conversation(c.id)
    for call in (lambda: client.get_conversation(c.id), lambda: client.delete_conversation(c.id),
                 lambda: client.pop_message(c.id), lambda: client.get_conversation_by_external_id(ns)):
        with pytest.raises(NotFoundError):
            call()
    with pytest.raises(InvalidArgumentError) as err:
        client.create_conversation(messages=[msg(0, role="robot")])
    assert err.value.details["field"] == "messages[0].role"


def test_an_external_id_with_slashes_and_spaces(client, ns):
    c = client.create_conversation(external_id=f"{ns}/a b/../é?#", messages=[msg(0)])
    assert client.get_conversation_by_external_id(f"{ns}/a b/../é?#").id == c.id


def test_export_streams_every_conversation_with_messages(client, ns):
    made = [client.create_conversation(tags=[ns[:50]], messages=[msg(i) for i in range(3)]) for _ in range(3)]
    exported = {c.id: c for c in client.export_conversations()}
    for c in made:
        assert exported[c.id].messages == c.messages
    assert len(list(client.export_conversations(limit=2))) == 2
    with pytest.raises(InvalidArgumentError):
        list(client.export_conversations(limit=0))


async def test_async_conversation_lifecycle(aclient, ns):
    c = await aclient.create_conversation(external_id=ns, messages=[msg(0)], tags=["x"], idempotency_key=ns)
    assert await aclient.create_conversation(external_id=ns, messages=[msg(0)], tags=["x"], idempotency_key=ns) == c
    assert (await aclient.get_conversation_by_external_id(ns, messages=False)).message_count == 1
    await aclient.append_messages(c.id, [msg(1), msg(2)])
    assert [m.content for m in (await aclient.list_messages(c.id, last=1)).messages] == ["message 2"]
    assert (await aclient.pop_message(c.id)).content == "message 2"
    assert (await aclient.update_conversation(c.id, title="t")).title == "t"
    assert await aclient.add_conversation_tags(c.id, ["y"]) == ["x", "y"] == await aclient.conversation_tags(c.id)
    assert await aclient.remove_conversation_tag(c.id, "x") == ["y"]
    assert c.id in [x.id for x in (await aclient.list_conversations(tag="y", limit=1000)).conversations]
    assert c.id in [x.id async for x in aclient.export_conversations()]
    assert await aclient.clear_messages(c.id) == 2
    assert (await aclient.get_conversation(c.id)).messages == []
    await aclient.delete_conversation(c.id)
    with pytest.raises(NotFoundError):
        await aclient.get_conversation(c.id)


def test_search_conversations_ranks_pages_and_marks_the_words(client, ns):
    word = f"okapi{ns.replace('-', '')}"
    made = [client.create_conversation(title=f"t{i}", messages=[msg(0, content=f"{'The ' * i}{word.upper()} ran")])
            for i in range(3)]
    first = client.search_conversations(f"{word} ran", limit=2)
    assert len(first.hits) == 2 and first.next_cursor is not None
    rest = client.search_conversations(f"{word} ran", limit=2, cursor=first.next_cursor)
    hits = first.hits + rest.hits
    assert sorted(h.id for h in hits) == sorted(c.id for c in made) and rest.next_cursor is None
    for h in hits:  # the offsets point at the words as the snippet spells them
        assert [h.snippet[a:b].lower() for a, b in h.highlights] == [word, "ran"]
    with pytest.raises(InvalidArgumentError):
        client.search_conversations("   ")


async def test_async_search_conversations(aclient, ns):
    word = f"quoll{ns.replace('-', '')}"
    c = await aclient.create_conversation(messages=[msg(0, content=f"a {word} here")])
    page = await aclient.search_conversations(word)
    assert [h.id for h in page.hits] == [c.id] and page.hits[0].message_count == 1
