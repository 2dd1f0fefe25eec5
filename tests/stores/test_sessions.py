"""Semantic sessions on both stores (semvec §6.2–6.3, §6.10–6.13): turns, tiers, concurrency, replicas,
reset, export/import/verify, entities and tenancy, through the engine over a real store."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from stigmer.engine.errors import Conflict, NotFound
from stigmer.engine.sessions import Malformed, Params, Sessions, Unprocessable, entities, portable
from stigmer.support.embeddings import Embedder, HashEmbedder

T = "t1"


def engine(store, **params) -> Sessions:
    return Sessions(store, HashEmbedder(), store.clock, Params(**params))


class RemoteLike(Embedder):
    """hash-v1 behind the plain provider interface: the engine embeds before the mutation, as for a remote model."""

    id, kind, dimension = "hash-v1", "hash", 384

    def __init__(self):
        self.inner, self.calls = HashEmbedder(), 0

    async def embed(self, texts):
        self.calls += 1
        await asyncio.sleep(0)  # a real provider awaits its answer: other requests run meanwhile
        return self.inner.vectors(texts)


@pytest.fixture
def sessions(store):
    return engine(store)


async def test_create_is_idempotent_and_ids_are_per_tenant(sessions):
    assert await sessions.create(T, "s1") == ("s1", True)
    assert await sessions.create(T, "s1") == ("s1", False)
    assert await sessions.create("t2", "s1") == ("s1", True)
    sid, created = await sessions.create(T, None)
    assert created and len(sid) == 36 and sid[14] == "4"
    assert await sessions.count() == 3
    with pytest.raises(NotFound, match="Session not found"):
        await sessions.metrics("t3", "s1")


async def test_a_turn_updates_vector_histories_and_memories(sessions):
    await sessions.create(T, "s")
    first = await sessions.store_turn(T, "s", "We use PostgreSQL 15 for billing.")
    assert first == {"is_update": False, "max_sim": 0.0, "matched_id": None}
    await sessions.store_turn(T, "s", "We use PostgreSQL 15 for billing.")
    m = await sessions.metrics(T, "s")
    assert m["interaction_count"] == 2 and m["total_memories"] == 2
    assert m["beta_history"] == [0.0, 0.85] and m["phase_history"] == ["initialization"] * 2
    assert m["similarity_history"][0] == 0.0 and m["similarity_history"][1] == pytest.approx(1.0)
    st, s = await sessions.get_state(T, "s")
    assert np.linalg.norm(s) == pytest.approx(1.0)
    third = await sessions.store_turn(T, "s", "We use PostgreSQL 15 for billing.")
    assert third["is_update"] and third["max_sim"] == pytest.approx(1.0, abs=1e-6)


async def test_run_pairs_the_pending_question_with_the_answer(sessions):
    r = await sessions.run(T, "What database do we use?", "s", reset_context=True)
    assert r["context"] == "[Semvec Context | Turn 0 | 0 memories]" and r["dedup_signal"] is None
    await sessions.run(T, "How do we deploy?", "s", response="We use PostgreSQL 15 for billing.")
    export = await portable.export(sessions, T, "s")
    assert [m["text"] for m in export["memories"]] == ["Q: What database do we use? A: We use PostgreSQL 15 for billing."]
    assert export["pending_message"] == "How do we deploy?"
    with pytest.raises(NotFound):
        await sessions.run(T, "hi", "missing")


async def test_n_concurrent_stores_give_n_turns(sessions):
    await sessions.create(T, "s")
    await asyncio.gather(*(sessions.store_turn(T, "s", f"fact {i} about service {i % 7}") for i in range(40)))
    m = await sessions.metrics(T, "s")
    assert m["interaction_count"] == 40 and m["total_memories"] == 40 and len(m["beta_history"]) == 40
    export = await portable.export(sessions, T, "s")
    assert sorted(x["created_turn"] for x in export["memories"]) == list(range(1, 41))
    assert (await portable.verify(sessions, T, "s", [], 32))["consistent"]


async def test_concurrent_creates_of_one_id_create_it_once(sessions):
    results = await asyncio.gather(*(sessions.create(T, "same") for _ in range(20)))
    assert sum(created for _, created in results) == 1


async def test_tiers_cascade_by_retention_and_archive_is_kept(store):
    small = engine(store, tiers=(2, 2, 2))
    await small.create(T, "s")
    for i in range(8):
        await small.store_turn(T, "s", f"memory number {i} of the cascade")
    export = await portable.export(small, T, "s")
    tiers = [m["tier"] for m in export["memories"]]
    assert tiers.count("short_term") == 2 and tiers.count("medium_term") == 2 and tiers.count("long_term") == 2
    assert tiers.count("archive") == 2 and tiers[:2] == ["archive", "archive"]  # the oldest retain least
    assert (await small.metrics(T, "s"))["total_memories"] == 6
    archived = export["memories"][0]
    got = await small.memory(T, "s", archived["semantic_hash"])
    assert got["text"] == archived["text"]


async def test_another_replica_sees_every_turn(open_store, store_kind):
    if store_kind == "sqlite":
        pytest.skip("one process owns a SQLite file")
    a, b = engine(await open_store()), engine(await open_store())
    await a.create(T, "s")
    await a.store_turn(T, "s", "alpha beta gamma")
    await b.run(T, "alpha", "s")  # b builds its view
    await a.store_turn(T, "s", "delta epsilon zeta")
    r = await b.run(T, "delta epsilon", "s")
    assert "delta epsilon zeta" in r["context"]
    assert (await b.metrics(T, "s"))["interaction_count"] == 2


async def test_reset_keeps_id_and_config(sessions):
    template = sessions.vector([1.0] + [0.0] * 383)
    await sessions.create(T, "s", config={"model_name": "m", "template_embedding": template.tolist()}, template=template)
    await sessions.store_turn(T, "s", "something to forget")
    await entities.put(sessions, T, "s", "K", "constant", "1", "", 1.0)
    await sessions.run(T, "again", "s", reset_context=True)
    st, s = await sessions.get_state(T, "s")
    assert st.n == 0 and st.config["model_name"] == "m" and s[0] == pytest.approx(1.0)
    assert (await entities.find(sessions, T, "s", "", 20)) == ([], 0)
    assert (await sessions.metrics(T, "s"))["total_memories"] == 0


async def test_export_import_round_trip_and_tampering(sessions):
    await sessions.create(T, "a")
    for text in ("one fact", "two facts", "three facts"):
        await sessions.store_turn(T, "a", text)
    await entities.put(sessions, T, "a", "src/app/main.py", "path", "main", "", 2.0)
    state = await portable.export(sessions, T, "a")
    assert state["checksum"] == portable.checksum(state)
    await sessions.create(T, "b")
    await portable.import_state(sessions, T, "b", state)
    again = await portable.export(sessions, T, "b")
    assert again == state
    tampered = {**state, "memories": [{**state["memories"][0], "text": "changed"}, *state["memories"][1:]]}
    with pytest.raises(Malformed, match="Malformed or tampered state_dict"):
        await portable.import_state(sessions, T, "b", tampered)
    tampered["checksum"] = portable.checksum(tampered)
    await portable.import_state(sessions, T, "b", tampered)  # a recomputed checksum passes: integrity only
    report = await portable.verify(sessions, T, "b", [], 32)
    assert not report["consistent"] and report["checks"]["embedding_mismatches"] == 1
    with pytest.raises(Malformed, match="embedder 'local-minilm'"):
        await portable.import_state(sessions, T, "b", {**state, "embedder": "local-minilm"})


async def test_entities_upsert_evict_and_find(store):
    small = engine(store, entity_capacity=2)
    await small.create(T, "s")
    assert await entities.put(small, T, "s", "MAX_RETRIES", "constant", "6", "", 1.0) == 1
    assert await entities.put(small, T, "s", "src/app/main.py", "path", "entry", "", 5.0) == 2
    found, total = await entities.find(small, T, "s", "retries", 20)
    assert [e["key"] for e in found] == ["MAX_RETRIES"] and found[0]["access_count"] == 1 and total == 2
    assert await entities.put(small, T, "s", "MAX_RETRIES", "constant", "7", "", 1.0) == 2  # upsert keeps count
    assert (await entities.find(small, T, "s", "", 20))[0][0] == {
        "key": "MAX_RETRIES", "kind": "constant", "value": "7", "context": "", "importance": 1.0, "access_count": 1}
    assert await entities.put(small, T, "s", "third", "variable", "x", "", 3.0) == 2  # evicts MAX_RETRIES
    assert [e["key"] for e in (await entities.find(small, T, "s", "", 20))[0]] == ["src/app/main.py", "third"]
    assert [e["key"] for e in (await entities.find(small, T, "s", "main.py", 20))[0]] == ["src/app/main.py"]
    await entities.remove(small, T, "s", "third")
    with pytest.raises(NotFound, match="Entity not found"):
        await entities.remove(small, T, "s", "third")
    assert (await portable.verify(small, T, "s", [], 32))["checks"]["checksum_ok"]


async def test_backing_sessions_are_not_deleted_here(sessions):
    await sessions.create(T, "c", kind="cluster")
    with pytest.raises(Conflict):
        await sessions.delete(T, "c")
    await sessions.create(T, "plain")
    await sessions.delete(T, "plain")
    with pytest.raises(NotFound):
        await sessions.delete(T, "plain")


async def test_client_vectors_are_checked(sessions):
    with pytest.raises(Unprocessable, match="embedding dimension 3 does not match the server dimension 384"):
        sessions.vector([1, 2, 3])
    with pytest.raises(Unprocessable, match="non-zero norm"):
        sessions.vector([0.0] * 384)
    with pytest.raises(Unprocessable, match="non-zero norm"):
        sessions.vector([1e-9] + [0.0] * 383)  # below 1e-8 is zero (§6.1)
    with pytest.raises(Unprocessable, match="non-zero norm"):
        sessions.vector([float("nan")] * 384)
    assert np.allclose(sessions.vector([1e308] * 384), np.full(384, 384 ** -0.5))
    with pytest.raises(Unprocessable, match="degenerate"):
        await sessions.text_vector("the and of")


async def test_rate_buckets_are_shared_by_replicas(open_store, store_kind):
    if store_kind == "sqlite":
        pytest.skip("one process owns a SQLite file: its buckets live in that process")
    from stigmer.support.ratelimit import SharedRateLimiter
    a, b = SharedRateLimiter((await open_store()).buckets), SharedRateLimiter((await open_store()).buckets)
    assert (await a.ahit("semvec:key:k1", 3, rate=0.001)).allowed
    assert (await b.ahit("semvec:key:k1", 3, rate=0.001)).allowed
    assert (await a.ahit("semvec:key:k1", 3, rate=0.001)).remaining == 0
    denied = await b.ahit("semvec:key:k1", 3, rate=0.001)
    assert not denied.allowed and denied.retry_after >= 999
    assert (await b.ahit("semvec:key:other", 3, rate=0.001)).allowed  # one bucket per key


async def test_an_embedder_with_io_embeds_the_chunk_it_stores(store):
    """The chunk pairs the pending question read before the mutation; when another request changed it first,
    the turn is embedded again, and a new or reset session has no pending question."""
    remote = RemoteLike()
    s = Sessions(store, remote, store.clock)
    r = await s.run(T, "first question", response="an answer to nothing")  # a new session: no pending
    sid = r["session_id"]
    await s.run(T, "second question", sid, response="answer one", reset_context=True)
    await asyncio.gather(*(s.run(T, f"question {i}", sid, response=f"answer {i}") for i in range(6)))
    state = await portable.export(s, T, sid)
    texts = [m["text"] for m in state["memories"]]
    assert texts[0] == "answer one" and len(texts) == 7
    asked = {f"question {i}" for i in range(6)} | {"second question"}
    for t in texts[1:]:  # each pairs a question really pending at its turn, every question used once
        q = t.split(" A: ")[0].removeprefix("Q: ")
        assert q in asked
        asked.remove(q)
    assert state["pending_message"] in asked and len(asked) == 1
    assert (await portable.verify(s, T, sid, [], 32))["consistent"]


async def test_a_run_that_stores_nothing_writes_only_the_heads(store, sessions):
    await sessions.create(T, "s")
    await sessions.store_turn(T, "s", "a fact to retrieve")
    before = await store.sessions.get(T, "s")
    await sessions.run(T, "a question about the fact", "s")
    after = await store.sessions.get(T, "s")
    assert after.state == before.state and after.checksum == before.checksum  # the state row is untouched
    assert after.heads != before.heads and (await sessions.get_state(T, "s"))[0].pending == "a question about the fact"
    assert (await portable.verify(sessions, T, "s", [], 32))["checks"]["checksum_ok"]


async def test_a_work_opened_on_a_row_read_without_its_heads_reads_them(store, sessions):
    from stigmer.engine.sessions.model import SessionRow
    from stigmer.engine.sessions.work import Work
    await sessions.create(T, "s")
    await sessions.run(T, "pending question", "s", response="an answer")

    def mutation(tx):
        full = tx.sessions.get("s")
        bare = SessionRow(full.tenant, full.session_id, full.kind, full.state, full.vector, full.checksum, full.created_at)
        work = Work(tx, bare, sessions.cache, sessions.params, sessions.dimension)
        work.s = -work.s
        work.save()
        return work.state.pending, work.state.mem_rev

    pending, rev = await store.submit(T, mutation)
    assert pending == "pending question" and rev >= 1
    st, s = await sessions.get_state(T, "s")
    assert st.pending == "pending question" and st.mem_rev == rev
    assert (await portable.verify(sessions, T, "s", [], 32))["consistent"]
