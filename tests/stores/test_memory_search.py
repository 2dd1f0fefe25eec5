"""Memory search on both stores (Statewave §5.7, §6.5; docs/memory.md "Search"): tokens, all-terms matching,
BM25 on worked examples, ties (§6.12), the kind filter, an index kept exact by supersession and deletion,
tenancy (Stigmer tenants and Statewave tenants), vectors, semantic search with a real provider (an
OpenAI-compatible endpoint served by the test) and hybrid ranking by reciprocal rank with hash-v1."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from local_http import JSONHandler, LocalServer, running
from stigmer.engine.errors import InvalidArgument
from stigmer.engine.memory import EpisodeInput, Memory
from stigmer.engine.memory.search import RRF_K, fused, terms, tokens
from stigmer.support.embeddings import HashEmbedder, OpenAIEmbedder

T = "t1"
SUBJECT = "user-42"


def ep(content, subject=SUBJECT, **members) -> EpisodeInput:
    return EpisodeInput(subject, "chat", "note", {"text": content}, **members)


async def compiled(memory, clock, *texts, tenant=T, tenant_id=None, subject=SUBJECT, one_run=False):
    """One episode per text a second apart; one compile per text (or one for all): the memories created."""
    created = []
    for t in texts:
        await memory.add_episode(tenant, tenant_id, ep(t, subject))
        clock.advance(1)
        if not one_run:
            created += (await memory.compile(tenant, tenant_id, subject)).memories
            clock.advance(1)
    if one_run:
        created += (await memory.compile(tenant, tenant_id, subject)).memories
    return created


def contents(memories):
    return [m.content for m in memories]


def bm25(tf: int, df: int, n: int, length: int, avgdl: float) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * length / avgdl))


# tokens


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", ["hello", "world"]),
    ("São Paulo's café-au-lait", ["são", "paulo", "s", "café", "au", "lait"]),  # diacritics kept, no stemming
    ("snake_case 100% a.b", ["snake", "case", "100", "a", "b"]),  # `_` and `%` separate
    ("ÉCOLE Straße ΣΟΦΊΑ", ["école", "straße", "σοφία"]),
    ("   ", []),
])
def test_tokens_are_runs_of_letters_and_digits_lower_cased(text, expected):
    assert tokens(text) == expected


def test_query_terms_are_distinct_in_first_seen_order():
    assert terms("the Cat the cat DOG") == ["the", "cat", "dog"]


# matching and ranking


@pytest.fixture
def memory(store):
    return Memory(store)


async def test_every_term_must_match_as_a_whole_token(memory, clock):
    await compiled(memory, clock, "apple pie recipe", "apple juice", "pineapple pie", one_run=True)
    assert contents(await memory.search(T, None, SUBJECT, "apple pie")) == ["apple pie recipe"]
    assert contents(await memory.search(T, None, SUBJECT, "PIE")) == ["pineapple pie", "apple pie recipe"]
    assert await memory.search(T, None, SUBJECT, "apple banana") == []


@pytest.mark.parametrize("q, expected", [("%", []), ("_", []), ("*", []), ("\"", []), ("  ", []), ("%_%", []),
                                         ("100%", ["100% sure"]), ("'; DROP TABLE memories; --", ["drop table memories now"]),
                                         ("\"drop*\" (table)", ["drop table memories now"]), ("drop NEAR table", [])])
async def test_query_syntax_is_literal_text(memory, clock, q, expected):
    await compiled(memory, clock, "100% sure", "drop table memories now")
    assert contents(await memory.search(T, None, SUBJECT, q)) == expected


async def test_operator_words_are_ordinary_terms(memory, clock):
    await compiled(memory, clock, "cats or dogs", "cats and dogs", "NOT this one", one_run=True)
    assert contents(await memory.search(T, None, SUBJECT, "cats OR dogs")) == ["cats or dogs"]
    assert contents(await memory.search(T, None, SUBJECT, "not")) == ["NOT this one"]
    assert contents(await memory.search(T, None, SUBJECT, "NEAR AND")) == []


async def test_bm25_worked_example(memory, clock, store):
    """Four summaries (no facts match these texts), one run: N = 4, lengths 2, 3, 4, 6 (avgdl 3.75)."""
    texts = ["red apple", "apple apple pie", "green apple and pear", "a pear tart with no fruit"]
    await compiled(memory, clock, *texts, one_run=True)
    n, avgdl = 4, 15 / 4
    expected = {t: bm25(t.split().count("apple"), 3, n, len(t.split()), avgdl) for t in texts[:3]}
    ranked = await memory.finder.text_ranking(T, None, SUBJECT, "apple")
    scores = [s for _, s in ranked]
    assert scores == pytest.approx(sorted(expected.values(), reverse=True), rel=1e-12)
    # tf 2 in length 3 beats tf 1 in length 2, which beats tf 1 in length 4
    assert contents(await memory.search(T, None, SUBJECT, "apple")) == ["apple apple pie", "red apple",
                                                                       "green apple and pear"]
    two = bm25(1, 2, n, 4, avgdl) + bm25(1, 3, n, 4, avgdl)
    assert [s for _, s in await memory.finder.text_ranking(T, None, SUBJECT, "pear apple")] == pytest.approx([two])


async def test_ties_newest_first_then_creation_order(memory, clock):
    # equal scores: the later compile first; inside one run, compiler output order
    await compiled(memory, clock, "blue sky", "blue sea", one_run=True)
    await compiled(memory, clock, "blue car")
    assert contents(await memory.search(T, None, SUBJECT, "blue")) == ["blue car", "blue sky", "blue sea"]
    assert contents(await memory.search(T, None, SUBJECT)) == ["blue car", "blue sky", "blue sea"]


async def test_kind_filters_before_ranking_and_limit_caps(memory, clock):
    await compiled(memory, clock, "I use Linux at home", "I use vim daily", one_run=True)
    facts = await memory.search(T, None, SUBJECT, "use", kind="profile_fact")
    assert [(m.kind, m.content) for m in facts] == [("profile_fact", "I use vim daily"),  # the shorter first
                                                    ("profile_fact", "I use Linux at home")]
    assert {m.kind for m in await memory.search(T, None, SUBJECT, "use")} == {"profile_fact", "episode_summary"}
    assert len(await memory.search(T, None, SUBJECT, "use", limit=3)) == 3
    assert await memory.search(T, None, SUBJECT, "use", kind="procedure") == []
    assert await memory.search(T, None, SUBJECT, "use", kind="no-such-kind") == []
    # the statistics are the kind's: within facts alone, each memory's tf and length give the score
    ranked = await memory.finder.text_ranking(T, None, SUBJECT, "vim", kind="profile_fact")
    assert [s for _, s in ranked] == pytest.approx([bm25(1, 1, 2, 4, 4.5)])


@pytest.mark.parametrize("limit", [0, -1, 101, "5", True, None])
async def test_limit_outside_1_to_100_is_refused(memory, limit):
    with pytest.raises(InvalidArgument) as e:
        await memory.search(T, None, SUBJECT, "x", limit=limit)
    assert e.value.details["loc"] == ["query", "limit"]


async def test_only_active_memories_are_found_and_the_index_follows_supersession(memory, clock, store):
    await compiled(memory, clock, "I work at Initech")
    assert contents(await memory.search(T, None, SUBJECT, "initech", kind="profile_fact")) == ["I work at Initech"]
    await compiled(memory, clock, "I work at Globex")
    assert await memory.search(T, None, SUBJECT, "initech", kind="profile_fact") == []
    matches = await store.memory_index.lexical(T, None, SUBJECT, "profile_fact", ["work"])
    assert matches.messages == 1 and len(matches.seqs) == 1  # the superseded fact left the statistics too
    assert contents(await memory.search(T, None, SUBJECT, kind="profile_fact")) == ["I work at Globex"]


async def delete_memories(store, store_kind, tenant, ids):
    """Delete memory rows directly, as any path might (subject deletion, a restore): the triggers follow."""
    def run(tx):
        if store_kind == "sqlite":
            tx.conn.executemany("DELETE FROM memories WHERE tenant = ? AND id = ?", [(tenant, i) for i in ids])
        else:
            tx.write("DELETE FROM memories WHERE tenant = %s AND id = ANY(%s::text[])", (tenant, ids))
    await store.submit(tenant, run)


async def test_the_index_and_vectors_follow_deletion(memory, clock, store, store_kind):
    hashed = Memory(store, embedder=HashEmbedder())
    created = await compiled(hashed, clock, "alpha beta", "alpha gamma", one_run=True)
    assert await hashed.embed(T, created) == 2
    await delete_memories(store, store_kind, T, [created[0].id])
    assert contents(await hashed.search(T, None, SUBJECT, "alpha")) == ["alpha gamma"]
    assert (await store.memory_index.lexical(T, None, SUBJECT, None, ["alpha"])).messages == 1
    assert len(await store.memory_index.vectors(T, None, SUBJECT, None, "hash-v1")) == 1


async def test_tenants_see_only_their_rows_and_statistics(memory, clock, store):
    await compiled(memory, clock, "shared words here", tenant="t1")
    await compiled(memory, clock, "shared words", "shared again", tenant="t2")
    assert contents(await memory.search("t1", None, SUBJECT, "shared")) == ["shared words here"]
    assert (await store.memory_index.lexical("t1", None, SUBJECT, None, ["shared"])).messages == 1
    assert len(await memory.search("t2", None, SUBJECT, "shared")) == 2
    assert await memory.search("t3", None, SUBJECT, "shared") == []


async def test_statewave_tenants_are_scoped_and_unscoped_sees_all(memory, clock, store):
    await compiled(memory, clock, "note for team a", tenant_id="team-a")
    await compiled(memory, clock, "note for team b", "another note b", tenant_id="team-b")
    await compiled(memory, clock, "unscoped note", tenant_id=None)
    assert contents(await memory.search(T, "team-a", SUBJECT, "note")) == ["note for team a"]
    assert contents(await memory.search(T, "team-b", SUBJECT, "note")) == ["another note b", "note for team b"]
    assert len(await memory.search(T, None, SUBJECT, "note")) == 4
    assert len(await memory.search(T, "", SUBJECT, "note")) == 4  # an empty header is unscoped
    assert (await store.memory_index.lexical(T, "team-a", SUBJECT, None, ["note"])).messages == 1
    assert contents(await memory.search(T, "team-a", SUBJECT)) == ["note for team a"]
    assert await memory.search(T, "team-c", SUBJECT, "note") == []


async def test_subjects_do_not_mix(memory, clock):
    await compiled(memory, clock, "pizza night", subject="alice")
    await compiled(memory, clock, "pizza lunch", subject="bob")
    assert contents(await memory.search(T, None, "alice", "pizza")) == ["pizza night"]


# vectors, semantic and hybrid


def test_reciprocal_rank_fusion_worked_example():
    # 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62; 4: 1/62
    got = fused([1, 2, 3], [3, 4, 1])
    assert [seq for seq, _ in got] == [1, 3, 2, 4]
    assert got[0][1] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 3))
    assert fused([]) == []


async def test_hybrid_fuses_any_term_bm25_with_hash_v1(store, clock):
    hashed = Memory(store, embedder=HashEmbedder())
    texts = ["the train was late again", "trains and buses", "late night train home", "a quiet morning"]
    created = await compiled(hashed, clock, *texts, one_run=True)
    assert await hashed.embed(T, created) == 4
    q = "late trains"
    finder = hashed.finder
    text = [seq for seq, _ in await finder.text_ranking(T, None, SUBJECT, q, every=False)]
    vector = [seq for seq, _ in await finder.vector_ranking(T, None, SUBJECT, q)]
    assert len(text) == 3 and len(vector) == 4  # any term: 3 match "late" or "trains"; every vector ranks
    got = await hashed.hybrid(T, None, SUBJECT, q, limit=4)
    expected = fused(text, vector)
    seq_of = {m.id: seq for seq, m in (await store.memory_index.by_seq(T, vector)).items()}
    assert [(seq_of[m.id], s) for m, s in got] == expected
    # Statewave search never ranks by hash-v1 (the spec's stub): semantic=true falls back to text
    assert contents(await hashed.search(T, None, SUBJECT, q, semantic=True)) == []  # all terms: no memory has both
    assert contents(await hashed.search(T, None, SUBJECT, "late", semantic=True)) == contents(
        await hashed.search(T, None, SUBJECT, "late"))


async def test_hybrid_without_an_embedder_is_the_text_ranking(memory, clock):
    await compiled(memory, clock, "red fox", "red hen", "blue jay", one_run=True)
    got = await memory.hybrid(T, None, SUBJECT, "red fox")
    assert contents([m for m, _ in got]) == ["red fox", "red hen"]


async def test_lexical_ranking_ranks_the_matches_and_reads_the_first_records(memory, clock, store):
    # the query-driven context's one store call: the engine's ranking of the any-term matches, and its head
    await compiled(memory, clock, "red fox", "red hen", "blue jay", one_run=True)
    seen = []

    def rank(matches):
        seen.append(matches)
        return [(seq, float(i)) for i, seq in enumerate(sorted(matches.seqs.tolist()))] if matches else []

    ranking, records, latest = await store.memory_index.lexical_ranking(T, None, SUBJECT, None, ["red", "jay"],
                                                                        rank, 2)
    assert len(ranking) == 3 and seen[0].df == [2, 1]  # any term: every memory holding "red" or "jay"
    assert sorted(records) == [seq for seq, _ in ranking[:2]]
    assert {m.content for m in records.values()} <= {"red fox", "red hen", "blue jay"}
    assert latest == []  # the newest were not asked for
    # no term: the ranking of nothing, no statement to the index
    assert await store.memory_index.lexical_ranking(T, None, SUBJECT, None, [], rank, 2) == ([], {}, [])
    assert seen[1] is None
    # the newest of some kinds come with it, as `newest` reads them
    kinds = sorted({m.kind for m in records.values()})
    newest = await store.memory_index.newest(T, None, SUBJECT, kinds, 2)
    _, _, latest = await store.memory_index.lexical_ranking(T, None, SUBJECT, None, ["red"], rank, 1, (kinds, 2))
    assert latest == newest and len(latest) == 2


TOPICS = ["fruit", "vehicle", "weather"]


class TopicEmbeddings(JSONHandler):
    """An OpenAI-compatible /embeddings endpoint: a text's vector counts the topic words it names."""

    def do_POST(self):
        body = self.read_json()
        data = []
        for i, text in enumerate(body["input"]):
            v = [float(sum(w in text for w in words)) for words in (("apple", "banana", "fruit"),
                                                                    ("car", "truck", "bus"), ("rain", "sun"))]
            data.append({"index": i, "embedding": v if any(v) else [0.0, 0.0, 1e-3]})
        self.reply(200, json.dumps({"data": data}).encode())


@pytest.fixture
def endpoint():
    with running(LocalServer(TopicEmbeddings)) as server:
        yield server


async def test_semantic_search_with_a_real_provider_orders_by_cosine(store, clock, endpoint):
    real = Memory(store, embedder=OpenAIEmbedder(endpoint.url, "", "topics", 5.0))
    try:
        created = await compiled(real, clock, "a truck and a car", "banana bread", "rain and apple", one_run=True)
        assert await real.embed(T, created) == 3
        found = await real.search(T, None, SUBJECT, "fruit", semantic=True)
        assert contents(found) == ["banana bread", "rain and apple", "a truck and a car"]
        assert contents(await real.search(T, None, SUBJECT, "fruit", semantic=True, kind="profile_fact")) == []
        assert contents(await real.search(T, None, SUBJECT, "fruit")) == []  # text search: no memory says fruit
        query = np.array([1.0, 0.0, 0.0])
        seqs = [seq for seq, _ in await real.finder.vector_ranking(T, None, SUBJECT, "fruit")]
        distances = [d for _, d in await real.finder.vector_ranking(T, None, SUBJECT, "fruit")]
        assert len(seqs) == 3 and distances == pytest.approx([0.0, 1 - query @ (np.array([1, 0, 1]) / 2**0.5), 1.0])
    finally:
        await real.finder.embedder.aclose()


async def test_a_failing_provider_falls_back_to_text_and_never_fails_the_compile(store, clock):
    down = Memory(store, embedder=OpenAIEmbedder("http://127.0.0.1:1/v1", "", "down", 1.0, 3))
    try:
        created = await compiled(down, clock, "green tea", "black tea", one_run=True)
        assert await down.embed(T, created) == 0
        assert contents(await down.search(T, None, SUBJECT, "tea", semantic=True)) == ["green tea", "black tea"]
    finally:
        await down.finder.embedder.aclose()


async def test_superseded_memories_lose_their_vectors(store, clock):
    hashed = Memory(store, embedder=HashEmbedder())
    await hashed.embed(T, await compiled(hashed, clock, "I work at Initech"))
    assert len(await store.memory_index.vectors(T, None, SUBJECT, "profile_fact", "hash-v1")) == 1
    await hashed.embed(T, await compiled(hashed, clock, "I work at Globex"))
    found = await store.memory_index.vectors(T, None, SUBJECT, "profile_fact", "hash-v1")
    assert len(found) == 1
    globex = (await hashed.search(T, None, SUBJECT, "globex", kind="profile_fact"))[0]
    assert found[0][1] == globex.created_at


async def test_migration_16_backfill_indexes_the_active_memories_it_finds(memory, clock, store, store_kind):
    """Memories written before the index existed (their index rows gone): the backfill step of migration 16
    indexes every active one, and only those, in the migration's transaction."""
    await compiled(memory, clock, "I work at Initech")
    await compiled(memory, clock, "I work at Globex", tenant="t2")
    await compiled(memory, clock, "I work at Globex")  # supersedes t1's Initech fact
    if store_kind == "sqlite":
        import sqlite3

        from stigmer.store.sqlite import memory_index as sqlite_index
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table in ("memory_index_terms", "memory_index_rows", "memory_index_subjects"):
                conn.execute(f"DELETE FROM {table}")
            sqlite_index.backfill(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        import psycopg

        from stigmer.store.postgres import memory_index as pg_index
        async with await psycopg.AsyncConnection.connect(store.url) as conn:
            async with conn.transaction():
                await conn.execute("DELETE FROM memory_index")
                await pg_index.backfill(conn)
    assert contents(await memory.search(T, None, SUBJECT, "work", kind="profile_fact")) == ["I work at Globex"]
    assert contents(await memory.search("t2", None, SUBJECT, "globex")) == ["I work at Globex", "I work at Globex"]
    assert (await store.memory_index.lexical(T, None, SUBJECT, None, ["work"])).messages == 3
