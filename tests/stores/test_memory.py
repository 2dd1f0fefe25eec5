"""The memory engine on both stores: episodes (Statewave §5.3, §5.4), the heuristic compiler (§6.1, §6.2),
supersession (§6.3), ordering (§6.12), one timestamp per request (§3.4) and tenancy (§3.2)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from stigmer.engine.errors import InvalidArgument
from stigmer.engine.memory import EpisodeInput, Memory
from stigmer.engine.memory.compiler import compile_in, text
from stigmer.engine.memory.episodes import micros

T = "t1"
SUBJECT = "user-42"


@pytest.fixture
def memory(store):
    return Memory(store)


def ep(content=None, subject=SUBJECT, payload=None, **members) -> EpisodeInput:
    return EpisodeInput(subject, members.pop("source", "chat"), members.pop("type", "conversation"),
                        payload if payload is not None else {"text": content}, **members)


async def compile_texts(memory, clock, *texts, tenant_id=None):
    """One episode per text, each in its own request a second apart, then one compile; its result."""
    for t in texts:
        await memory.add_episode(T, tenant_id, ep(t))
        clock.advance(1)
    return await memory.compile(T, tenant_id, SUBJECT)


def shape(memories):
    return [(m.kind, m.content, m.status) for m in memories]


# §6.1 episode text


@pytest.mark.parametrize("payload, expected", [
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}, "user: Hi\nassistant: Yo"),
    ({"messages": [{"content": None}, {"role": 1, "content": {"a": [1, True]}}]}, ": \n1: {\"a\":[1,true]}"),
    ({"messages": ["skipped", 3, {"role": "user"}]}, "user: "),
    ({"messages": "not a list", "text": "x"}, ""),
    ({"messages": [], "text": "x"}, ""),  # the presence of a key decides the branch
    ({"text": "plain", "content": "ignored"}, "plain"),
    ({"text": None}, ""),
    ({"content": 12.5}, "12.5"),
    ({"content": "Olá"}, "Olá"),
    ({"other": "x"}, ""),
])
def test_episode_text(payload, expected):
    assert text(payload) == expected


# §6.2 the heuristic compiler: the spec's examples, then one row per rule


@pytest.mark.parametrize("said, facts", [
    ("I'm tired. I'm Bob. I am at the office. i use Linux\nI prefer tea, thanks. My favorite color is teal",
     ["I'm Bob", "I am at the office", "i use Linux", "I prefer tea", "My favorite color is teal"]),
    ("i'm from São Paulo; i love it", ["i'm from São Paulo; i love it"]),  # the lazy group runs to the end
    ("MY NAME IS Ada Lovelace", ["MY NAME IS Ada Lovelace"]),  # only the prefix is case-insensitive
    ("i am ada", []),  # the name must be capitalised
    ("I am José", ["I am Jos"]),  # ASCII-capitalised words only
    ("I live in Porto, near the sea", ["I live in Porto"]),
    ("I am on call. I'm on leave", ["I am on call", "I'm on leave"]),  # all matches of a pattern, left to right
    ("I prefer tea. I work at Acme", ["I work at Acme", "I prefer tea"]),  # pattern order, not text order
    ("I use vim  .", ["I use vim  "]),  # stripped, then the trailing dot removed
    ("I use vim...", ["I use vim"]),
    ("nothing to see", []),
])
async def test_compiler_emits_a_summary_then_the_facts(memory, clock, said, facts):
    result = await compile_texts(memory, clock, said)
    emitted = [(m.kind, m.content, m.summary, m.confidence) for m in result.memories]
    assert emitted[0] == ("episode_summary", said, said, 0.8)
    assert emitted[1:] == [("profile_fact", f, f, 0.6) for f in facts]
    assert result.memories_created == len(result.memories) == 1 + len(facts)


async def test_messages_example_of_the_spec(memory):
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "I'm at Acme Corp, I am from Lyon"},
                {"content": "no role here"}]
    await memory.add_episode(T, None, ep(payload={"messages": messages}))
    result = await memory.compile(T, None, SUBJECT)
    assert [m.content for m in result.memories] == [
        "system: Be brief\nuser: I'm at Acme Corp, I am from Lyon\n: no role here", "I'm at Acme Corp", "I am from Lyon"]


async def test_slices_count_code_points(memory, clock):
    long = "é" * 300 + " I use " + "ü" * 300
    result = await compile_texts(memory, clock, long)
    summary, fact = result.memories
    assert (summary.content, summary.summary) == (long[:500], long[:200])
    assert fact.content == "I use " + "ü" * 300 and fact.summary == fact.content[:200]


async def test_emitted_memories_carry_their_episode_and_the_run_timestamp(memory, clock):
    episode = await memory.add_episode(T, "sw-a", ep("I work at Initech"))
    clock.advance(5)
    result = await memory.compile(T, "sw-a", SUBJECT)
    run = micros(clock.now())
    for m in result.memories:
        assert (m.tenant, m.tenant_id, m.subject_id) == (T, "sw-a", SUBJECT)
        assert (m.valid_from, m.valid_to, m.source_episode_ids) == (episode.created_at, None, [episode.id])
        assert (m.metadata, m.status, m.created_at, m.updated_at) == ({}, "active", run, run)
        assert uuid.UUID(m.id).version == 4 and str(uuid.UUID(m.id)) == m.id
    assert await memory.memories(T, "sw-a", SUBJECT) == result.memories


async def test_text_less_episodes_are_marked_compiled(memory, clock):
    await memory.add_episode(T, None, ep(payload={"messages": []}))
    await memory.add_episode(T, None, ep(payload={"other": 1}))
    clock.advance(1)
    assert (await memory.compile(T, None, SUBJECT)).memories_created == 0
    run = micros(clock.now())
    assert [e.last_compiled_at for e in await memory.episodes(T, None, SUBJECT)] == [run, run]


async def test_recompiling_with_no_new_episodes_creates_nothing(memory, clock):
    first = await compile_texts(memory, clock, "I work at Initech")
    again = await memory.compile(T, None, SUBJECT)
    assert (again.subject_id, again.memories_created, again.memories) == (SUBJECT, 0, [])
    assert await memory.memories(T, None, SUBJECT) == first.memories
    assert (await memory.compile(T, None, "nobody")).memories_created == 0


async def test_a_run_takes_the_oldest_500_uncompiled_episodes(memory, clock):
    for b in range(6):
        await memory.add_episodes(T, None, [ep(f"note {b * 100 + i}") for i in range(100) if b * 100 + i <= 500])
        clock.advance(1)
    first = await memory.compile(T, None, SUBJECT)
    assert [m.content for m in first.memories] == [f"note {i}" for i in range(500)]
    second = await memory.compile(T, None, SUBJECT)
    assert [m.content for m in second.memories] == ["note 500"]


async def test_concurrent_compiles_compile_each_episode_once(memory, open_store, store_kind):
    await memory.add_episodes(T, None, [ep(f"note {i}") for i in range(50)])
    # PostgreSQL: a second replica on the same database; SQLite has one server per data directory
    replicas = [memory, Memory(await open_store()) if store_kind == "postgres" else memory]
    results = await asyncio.gather(*(r.compile(T, None, SUBJECT) for _ in range(4) for r in replicas))
    assert sorted(r.memories_created for r in results) == [0] * 7 + [50]  # Decision 29
    assert len(await memory.memories(T, None, SUBJECT)) == 50


# §6.3 supersession


@pytest.mark.parametrize("said, statuses", [
    (["I work at Initech", "I work at Globex"],  # 3/5 = 0.6: the older fact goes; summaries need 0.8
     [("episode_summary", "I work at Initech", "active"), ("profile_fact", "I work at Initech", "superseded"),
      ("episode_summary", "I work at Globex", "active"), ("profile_fact", "I work at Globex", "active")]),
    (["I work at Initech Corp", "I work at Globex"],  # 3/6 = 0.5: no conflict
     [("episode_summary", "I work at Initech Corp", "active"), ("profile_fact", "I work at Initech Corp", "active"),
      ("episode_summary", "I work at Globex", "active"), ("profile_fact", "I work at Globex", "active")]),
    (["a b c d", "a b c d e"],  # 4/5 = 0.8: other kinds conflict at 0.8
     [("episode_summary", "a b c d", "superseded"), ("episode_summary", "a b c d e", "active")]),
    (["a b c d", "a b c d e f"],  # 4/6 below 0.8
     [("episode_summary", "a b c d", "active"), ("episode_summary", "a b c d e f", "active")]),
    (["I prefer ÉCLAIRS", "i prefer éclairs"],  # Unicode lower-case, whitespace split
     [("episode_summary", "I prefer ÉCLAIRS", "superseded"), ("profile_fact", "I prefer ÉCLAIRS", "superseded"),
      ("episode_summary", "i prefer éclairs", "active"), ("profile_fact", "i prefer éclairs", "active")]),
    (["i'm from São Paulo; i love it"],  # the same content in two kinds never conflicts
     [("episode_summary", "i'm from São Paulo; i love it", "active"),
      ("profile_fact", "i'm from São Paulo; i love it", "active")]),
    (["x", " "],  # a whitespace-only text has an empty token set: never a conflict
     [("episode_summary", "x", "active"), ("episode_summary", " ", "active")]),
])
async def test_supersession_rules(memory, clock, said, statuses):
    result = await compile_texts(memory, clock, *said)
    assert shape(result.memories) == statuses


async def test_older_fact_of_an_earlier_run_is_closed_at_the_newer_fact(memory, clock):
    first = await compile_texts(memory, clock, "I work at Initech")
    clock.advance(10)
    second = await compile_texts(memory, clock, "I work at Globex")
    run = micros(clock.now())
    old = next(m for m in await memory.memories(T, None, SUBJECT, "superseded"))
    new_fact = second.memories[1]
    assert old.id == first.memories[1].id and shape(second.memories)[1] == ("profile_fact", "I work at Globex", "active")
    assert (old.valid_to, old.updated_at, old.created_at) == (new_fact.valid_from, run, first.memories[1].created_at)


async def test_within_one_run_an_earlier_memory_is_older(memory):
    await memory.add_episode(T, None, ep("I work at Initech. I work at Globex"))
    result = await memory.compile(T, None, SUBJECT)
    summary, initech, globex = result.memories
    assert shape(result.memories)[1:] == [("profile_fact", "I work at Initech", "superseded"),
                                          ("profile_fact", "I work at Globex", "active")]
    assert initech.valid_to == globex.valid_from and initech.updated_at == result.memories[0].created_at


async def test_each_memory_is_closed_by_the_first_later_conflicting_one(memory, clock):
    # A conflicts with C only; B with C only: both are closed at C. Then D conflicts with C and closes it.
    said = ["I use red green blue", "I use cyan magenta", "I use red green blue cyan magenta", "I use red green blue cyan"]
    result = await compile_texts(memory, clock, *said)
    facts = [m for m in result.memories if m.kind == "profile_fact"]
    assert [m.status for m in facts] == ["superseded", "active", "superseded", "active"]
    assert facts[0].valid_to == facts[2].valid_from and facts[2].valid_to == facts[3].valid_from


async def test_supersession_stays_inside_the_statewave_tenant_value(memory, clock):
    await compile_texts(memory, clock, "I work at Initech", tenant_id="sw-a")
    await compile_texts(memory, clock, "I work at Initech")  # unscoped: a null-tenant row
    await compile_texts(memory, clock, "I work at Globex", tenant_id="sw-b")
    assert [m.status for m in await memory.memories(T, None, SUBJECT)] == ["active"] * 6
    await memory.add_episode(T, "sw-a", ep("I work at Hooli"))
    await memory.add_episode(T, None, ep("I work at Hooli"))
    result = await memory.compile(T, None, SUBJECT)  # unscoped: compiles both, each tenant value on its own
    assert [(m.tenant_id, m.kind, m.status) for m in result.memories] == [
        ("sw-a", "episode_summary", "active"), ("sw-a", "profile_fact", "active"),
        (None, "episode_summary", "active"), (None, "profile_fact", "active")]
    closed = await memory.memories(T, None, SUBJECT, "superseded")
    assert sorted((m.tenant_id or "", m.kind, m.content) for m in closed) == [  # summaries need 0.8
        ("", "profile_fact", "I work at Initech"), ("sw-a", "profile_fact", "I work at Initech")]
    assert [m.status for m in await memory.memories(T, "sw-b", SUBJECT)] == ["active", "active"]


async def test_supersession_considers_the_newest_500_active_memories(memory, clock):
    old = await compile_texts(memory, clock, "I work at Initech")
    for b in range(5):  # 500 newer summaries, none conflicting
        clock.advance(1)
        await memory.add_episodes(T, None, [ep(f"note {b * 100 + i}") for i in range(100)])
    await memory.compile(T, None, SUBJECT)
    clock.advance(1)
    new = await compile_texts(memory, clock, "I work at Globex")
    assert [m.status for m in new.memories] == ["active", "active"]
    fact = next(m for m in await memory.memories(T, None, SUBJECT) if m.id == old.memories[1].id)
    assert fact.status == "active"  # outside the newest 500: left alone (Decision 42)


async def test_a_failed_compile_mutation_leaves_nothing(store, memory, clock):
    await memory.add_episode(T, None, ep("I work at Initech"))

    def compile_then_fail(tx):
        assert compile_in(tx, None, SUBJECT)
        raise RuntimeError("after the compile, in the same mutation")

    with pytest.raises(RuntimeError):
        await store.submit(T, compile_then_fail)
    assert await memory.memories(T, None, SUBJECT) == []
    assert [e.last_compiled_at for e in await memory.episodes(T, None, SUBJECT)] == [None]
    assert (await memory.compile(T, None, SUBJECT)).memories_created == 2


# episodes: validation, batches, one timestamp per request, order


async def test_episode_is_stored_as_given(memory, clock):
    e = await memory.add_episode(T, None, ep(payload={"messages": [{"role": "user", "content": "Hello"}]},
                                             metadata={"k": 1}, provenance={"p": "x"}, session_id="s1"))
    assert uuid.UUID(e.id).version == 4 and str(uuid.UUID(e.id)) == e.id
    assert (e.created_at, e.last_compiled_at, e.tenant, e.tenant_id) == (micros(clock.now()), None, T, None)
    assert await memory.episodes(T, None, SUBJECT) == [e]
    blank = await memory.add_episode(T, "", ep("x", session_id=""))  # "" is unscoped; an empty session is null
    assert (blank.tenant_id, blank.session_id) == (None, None)


@pytest.mark.parametrize("episode, loc", [
    (ep("x", subject="s" * 257), ["body", "subject_id"]),
    (ep("x", subject=""), ["body", "subject_id"]),
    (ep("x", source=""), ["body", "source"]),
    (ep("x", type="t" * 129), ["body", "type"]),
    (EpisodeInput(SUBJECT, "chat", "c", ["not", "an", "object"]), ["body", "payload"]),
    (ep("x", metadata=[]), ["body", "metadata"]),
    (ep("x", provenance="p"), ["body", "provenance"]),
    (ep("x", session_id="s" * 257), ["body", "session_id"]),
])
async def test_an_invalid_episode_is_refused(memory, episode, loc):
    with pytest.raises(InvalidArgument) as err:
        await memory.add_episode(T, None, episode)
    assert err.value.details["loc"] == loc
    assert await memory.episodes(T, None, SUBJECT) == []


async def test_a_long_statewave_tenant_is_refused(memory):
    with pytest.raises(InvalidArgument) as err:
        await memory.add_episode(T, "x" * 257, ep("x"))
    assert err.value.details["loc"] == ["header", "X-Tenant-ID"]
    assert len((await memory.add_episode(T, "x" * 256, ep("x"))).tenant_id) == 256


async def test_a_batch_shares_one_timestamp_and_keeps_input_order(memory, clock):
    stored = await memory.add_episodes(T, None, [ep(f"m{i}", subject=f"s{i % 2}") for i in range(100)])
    assert [e.payload["text"] for e in stored] == [f"m{i}" for i in range(100)]
    assert {e.created_at for e in stored} == {micros(clock.now())}
    assert [e.payload["text"] for e in await memory.episodes(T, None, "s0")] == [f"m{i}" for i in range(0, 100, 2)]
    again = await memory.add_episodes(T, None, [ep("late", subject="s0")])  # same clock: seq breaks the tie
    assert (await memory.episodes(T, None, "s0"))[-1] == again[0]


@pytest.mark.parametrize("items, loc", [
    ([], ["body", "episodes"]),
    ([ep("x")] * 101, ["body", "episodes"]),
    ([ep("a"), ep("b"), ep("c", type="")], ["body", "episodes", 2, "type"]),
])
async def test_a_bad_batch_leaves_nothing(memory, items, loc):
    with pytest.raises(InvalidArgument) as err:
        await memory.add_episodes(T, None, items)
    assert err.value.details["loc"] == loc
    assert await memory.episodes(T, None, SUBJECT) == []


async def test_one_compile_run_shares_one_timestamp(memory, clock):
    await memory.add_episodes(T, None, [ep("I work at Initech"), ep("I am at home"), ep("I work at Globex")])
    clock.advance(3)
    result = await memory.compile(T, None, SUBJECT)
    run = micros(clock.now())
    assert {(m.created_at, m.updated_at) for m in result.memories} == {(run, run)}
    assert "superseded" in {m.status for m in result.memories}


async def test_memories_read_newest_first_keeping_run_order(memory, clock):
    first = await compile_texts(memory, clock, "I use vim")
    second = await compile_texts(memory, clock, "I prefer tea", "I live in Lyon")
    assert await memory.memories(T, None, SUBJECT) == second.memories + first.memories
    assert await memory.memories(T, None, SUBJECT, "active") == second.memories + first.memories
    assert await memory.memories(T, None, SUBJECT, "superseded") == []
    with pytest.raises(InvalidArgument):
        await memory.memories(T, None, SUBJECT, "gone")


@pytest.mark.parametrize("subject_id", ["", "s" * 257, None])
async def test_compile_needs_a_subject(memory, subject_id):
    with pytest.raises(InvalidArgument) as err:
        await memory.compile(T, None, subject_id)
    assert err.value.details["loc"] == ["body", "subject_id"]


# tenancy


async def test_statewave_scopes_and_stigmer_tenants(memory, clock):
    for stigmer, sw in (("t1", "sw-a"), ("t1", "sw-b"), ("t1", None), ("t2", "sw-a"), ("t2", None)):
        await memory.add_episode(stigmer, sw, ep(f"I use {stigmer} {sw}"))
    said = lambda episodes: sorted(e.payload["text"] for e in episodes)  # noqa: E731
    assert said(await memory.episodes("t1", "sw-a", SUBJECT)) == ["I use t1 sw-a"]
    assert said(await memory.episodes("t1", None, SUBJECT)) == ["I use t1 None", "I use t1 sw-a", "I use t1 sw-b"]
    assert said(await memory.episodes("t2", None, SUBJECT)) == ["I use t2 None", "I use t2 sw-a"]
    assert await memory.episodes("t3", None, SUBJECT) == []

    scoped = await memory.compile("t1", "sw-a", SUBJECT)  # compiles only its own episodes
    assert {m.content for m in scoped.memories} == {"I use t1 sw-a"}
    assert {m.content for m in await memory.memories("t1", "sw-b", SUBJECT)} == set()
    rest = await memory.compile("t1", None, SUBJECT)  # unscoped: the rest of t1, nothing of t2
    assert {(m.tenant_id, m.content) for m in rest.memories} == {("sw-b", "I use t1 sw-b"), (None, "I use t1 None")}
    assert {m.content for m in await memory.memories("t1", None, SUBJECT)} == {
        "I use t1 sw-a", "I use t1 sw-b", "I use t1 None"}
    assert await memory.memories("t2", None, SUBJECT) == []
    assert {m.content for m in (await memory.compile("t2", None, SUBJECT)).memories} == {
        "I use t2 None", "I use t2 sw-a"}
