"""The LLM compiler (Statewave §6.4, Decision 48) on both stores, against the real chat-completions server of
tests/chat_server.py (real HTTP): the model's memories mapped by episode_index, kinds restricted, per-batch
fallback to the heuristic, batching and concurrency as the server saw them, no episode compiled twice,
supersession, and the heuristic when no endpoint is configured."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from chat_server import compiled_content, running_chat_server
from stigmer.config import Settings
from stigmer.engine.memory import EpisodeInput, Memory
from stigmer.engine.memory.compiler import emitted
from stigmer.engine.memory.episodes import micros
from stigmer.engine.memory.llm_compiler import COMPILE_PROMPT, CONCURRENCY, LLMCompiler, compiler_of
from stigmer.support.llm import LLM

T = "t1"
SUBJECT = "user-42"
MODEL = "compiler-model"


@pytest.fixture(scope="module")
def chat():
    with running_chat_server() as server:
        yield server


@pytest.fixture
async def make_memory(chat, store):
    """Memory over `store` (or another handle) with an LLM compiler at the chat server's `/good`."""
    made: list[LLM] = []
    chat.requests.clear()
    chat.max_in_flight, chat.hold_until = 0, None

    def make(on=None, timeout: float = 10.0, path: str = "/good") -> Memory:
        made.append(LLM(chat.url + path, "", "title-model", timeout))
        return Memory(on or store, compiler=LLMCompiler(made[-1], MODEL))

    yield make
    for llm in made:
        await llm.aclose()


def ep(text, subject=SUBJECT) -> EpisodeInput:
    return EpisodeInput(subject, "chat", "conversation", {"text": text} if isinstance(text, str) else text)


def compile_requests(chat) -> list[list[str]]:
    """The texts of each compile request the server received (in arrival order)."""
    out = []
    for r in chat.requests:
        system, user = r["body"]["messages"]
        if system["content"] == COMPILE_PROMPT:
            episodes = json.loads(user["content"])["episodes"]
            assert [e["episode_index"] for e in episodes] == list(range(len(episodes)))
            out.append([e["text"] for e in episodes])
    return out


def long_text(i: int, marker: str = "") -> str:
    """About 3,500 chars: two never share a 6,000-char batch."""
    return f"episode {i} {marker} " + "word " * 690


async def test_a_batch_answered_maps_the_models_memories_to_episodes_and_tenants(make_memory, chat, clock):
    memory = make_memory()
    await memory.add_episode(T, "team-a", ep("I work at Initech [kind:procedure]"))
    clock.advance(1)
    await memory.add_episode(T, "team-b", ep({"other": "no text"}))  # text-less: marked compiled, not sent
    await memory.add_episode(T, "team-b", ep("likes green tea"))
    clock.advance(1)
    await memory.add_episode(T, None, ep("[kind:weird] an odd one"))
    clock.advance(5)
    episodes = await memory.episodes(T, None, SUBJECT)
    result = await memory.compile(T, None, SUBJECT)  # unscoped: every tenant's episodes, each memory its own
    assert compile_requests(chat) == [["I work at Initech [kind:procedure]", "likes green tea", "[kind:weird] an odd one"]]
    assert chat.requests[-1]["body"]["model"] == MODEL
    with_text = [episodes[0], episodes[2], episodes[3]]
    assert [(m.kind, m.content, m.summary, m.confidence) for m in result.memories] == [
        ("procedure", "I work at Initech", "I work at Initech", 0.9),
        ("profile_fact", "likes green tea", "likes green tea", 0.9),
        ("episode_summary", "an odd one", "an odd one", 0.9)]  # an unknown kind
    assert [m.source_episode_ids for m in result.memories] == [[e.id] for e in with_text]  # answered in reverse
    assert [m.tenant_id for m in result.memories] == ["team-a", "team-b", None]
    assert [m.valid_from for m in result.memories] == [e.created_at for e in with_text]
    now = micros(clock.now())
    assert {(m.created_at, m.updated_at, m.status, m.valid_to) for m in result.memories} == {(now, now, "active", None)}
    assert (await memory.compile(T, None, SUBJECT)).memories_created == 0  # all four were marked compiled
    assert len(compile_requests(chat)) == 1


@pytest.mark.parametrize("marker", ["[fail:500]", "[fail:badjson]", "[fail:prose]", "[fail:object]", "[fail:index]"])
async def test_a_failed_batch_is_compiled_by_the_heuristic_the_others_by_the_model(make_memory, chat, marker):
    memory = make_memory()
    texts = [long_text(0), long_text(1, marker), long_text(2)]
    await memory.add_episodes(T, None, [ep(t) for t in texts])
    result = await memory.compile(T, None, SUBJECT)
    assert sorted(compile_requests(chat)) == [[t] for t in texts]  # one batch each
    assert [(m.kind, m.content, m.summary, m.confidence) for m in result.memories] == [
        ("profile_fact", compiled_content(texts[0]), compiled_content(texts[0])[:50], 0.9),
        *emitted(texts[1]),  # §6.2 of the failed batch's episode
        ("profile_fact", compiled_content(texts[2]), compiled_content(texts[2])[:50], 0.9)]


async def test_a_fenced_answer_is_accepted(make_memory, chat):
    memory = make_memory()
    await memory.add_episode(T, None, ep("[fence] likes tea"))
    assert [(m.kind, m.content) for m in (await memory.compile(T, None, SUBJECT)).memories] == [
        ("profile_fact", "likes tea")]


async def test_a_batch_that_times_out_is_compiled_by_the_heuristic(make_memory, chat):
    memory = make_memory(timeout=2.0)  # the slow batch waits 3 s
    texts = [long_text(0), long_text(1, "[fail:slow]")]
    await memory.add_episodes(T, None, [ep(t) for t in texts])
    result = await memory.compile(T, None, SUBJECT)
    assert [m.kind for m in result.memories] == ["profile_fact", "episode_summary"]
    assert result.memories[1].content == texts[1][:500]


async def test_no_endpoint_answering_compiles_every_batch_by_the_heuristic(make_memory, chat):
    memory = make_memory(path="/error")
    await memory.add_episodes(T, None, [ep("I'm Bob. i use Linux"), ep(long_text(1))])
    result = await memory.compile(T, None, SUBJECT)
    assert [(m.kind, m.content) for m in result.memories] == [
        (k, c) for t in ("I'm Bob. i use Linux", long_text(1)) for k, c, _, _ in emitted(t)]


async def test_texts_are_cut_to_4000_chars_and_packed_in_batches_of_6000(make_memory, chat):
    memory = make_memory()
    lengths = [5000, 2000, 1, 4000, 1999, 1]  # sent: 4000+2000 | 1+4000+1999 | 1
    texts = [chr(ord("a") + i) * n for i, n in enumerate(lengths)]
    await memory.add_episodes(T, None, [ep(t) for t in texts])
    result = await memory.compile(T, None, SUBJECT)
    sent = sorted(compile_requests(chat), key=lambda batch: batch[0][0])
    assert [[len(t) for t in batch] for batch in sent] == [[4000, 2000], [1, 4000, 1999], [1]]
    assert sent[0][0] == texts[0][:4000]
    assert [len(m.content) for m in result.memories] == [4000, 2000, 1, 4000, 1999, 1]


async def test_at_most_four_batches_are_in_flight(make_memory, chat):
    memory = make_memory()
    chat.hold_until = CONCURRENCY  # the first requests wait until four are in flight together
    await memory.add_episodes(T, None, [ep(long_text(i)) for i in range(10)])
    result = await memory.compile(T, None, SUBJECT)
    assert len(compile_requests(chat)) == 10
    assert chat.max_in_flight == CONCURRENCY
    assert [m.kind for m in result.memories] == ["profile_fact"] * 10  # none fell back: the gate opened


async def test_two_compilers_racing_never_compile_an_episode_twice(make_memory, chat, open_store, store_kind):
    # two compilers that share no lock (on PostgreSQL, two replicas): both read the episodes and ask the
    # model (the server holds each answer until both asked); the commit that comes second finds them taken
    first = make_memory()
    second = make_memory(await open_store() if store_kind == "postgres" else None)
    await first.add_episodes(T, None, [ep(f"note {i}") for i in range(5)])
    chat.hold_until = 2
    results = await asyncio.gather(first.compile(T, None, SUBJECT), second.compile(T, None, SUBJECT))
    assert len(compile_requests(chat)) == 2
    assert sorted(r.memories_created for r in results) == [0, 5]
    stored = await first.memories(T, None, SUBJECT)
    assert sorted(m.content for m in stored) == [f"note {i}" for i in range(5)]


async def test_concurrent_compiles_in_one_process_ask_the_model_once(make_memory, chat):
    memory = make_memory()
    await memory.add_episodes(T, None, [ep(f"note {i}") for i in range(5)])
    results = await asyncio.gather(*(memory.compile(T, None, SUBJECT) for _ in range(3)))
    assert sorted(r.memories_created for r in results) == [0, 0, 5]
    assert len(compile_requests(chat)) == 1  # the others waited, then found nothing uncompiled


async def test_the_model_call_holds_no_transaction(make_memory, chat):
    memory = make_memory()
    await memory.add_episode(T, None, ep("first"))
    chat.hold_until = 2  # the compile's one request waits at the server until the gate opens
    compiling = asyncio.create_task(memory.compile(T, None, SUBJECT))
    assert await asyncio.to_thread(chat.wait_in_flight, 1)
    # while the model "thinks", writes of the same tenant and subject commit (the writer is free)
    await memory.add_episode(T, None, ep("second"))
    assert not compiling.done()
    chat.open_gate()
    assert [m.content for m in (await compiling).memories] == ["first"]  # read before "second" existed
    assert [m.content for m in (await memory.compile(T, None, SUBJECT)).memories] == ["second"]


async def test_supersession_runs_on_the_models_memories(make_memory, chat, clock):
    memory = make_memory()
    await memory.add_episode(T, None, ep("I work at Initech"))
    clock.advance(1)
    await memory.add_episode(T, None, ep("I work at Globex"))
    result = await memory.compile(T, None, SUBJECT)
    old, new = result.memories
    assert (old.content, old.status, old.valid_to) == ("I work at Initech", "superseded", new.valid_from)
    assert (new.content, new.status) == ("I work at Globex", "active")
    assert [m.content for m in await memory.memories(T, None, SUBJECT, "active")] == ["I work at Globex"]


async def test_llm_without_an_endpoint_is_the_heuristic_said_once(caplog):
    llm = LLM("", "", "m", 1.0)
    with caplog.at_level(logging.WARNING, logger="stigmer.memory.llm_compiler"):
        assert compiler_of(Settings.load({"memory_compiler": "llm"}, environ={}), llm) is None
    assert [r.getMessage() for r in caplog.records] == [
        "memory_compiler is llm but llm_base_url is empty: the heuristic compiler runs"]
    assert compiler_of(Settings.load(environ={}), LLM("http://127.0.0.1:1", "", "m", 1.0)) is None  # heuristic
    on = compiler_of(Settings.load({"memory_compiler": "llm", "memory_compiler_model": "big"}, environ={}),
                     LLM("http://127.0.0.1:1", "", "m", 1.0))
    assert isinstance(on, LLMCompiler) and on.model == "big"
    assert compiler_of(Settings.load({"memory_compiler": "llm"}, environ={}), LLM("http://127.0.0.1:1", "", "m", 1.0)).model == "m"
