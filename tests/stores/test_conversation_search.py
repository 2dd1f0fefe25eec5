"""Conversation search on both stores (AgentState §6.6, D6): matching, BM25 order against a reference written
here, snippets, hostile queries, tenant isolation, pages, and an index that follows every way messages go."""

from __future__ import annotations

import math
import random
import sys
import unicodedata

import msgspec
import pytest

from stigmer.engine.conversation_search import ConversationSearch, tokens
from stigmer.engine.conversations import Conversations, MessageInput as M, create_in
from stigmer.engine.errors import InvalidArgument

T, OTHER = "t1", "t2"


@pytest.fixture
def convs(store):
    return Conversations(store)


@pytest.fixture
def search(store):
    return ConversationSearch(store)


# the reference: §6.6 written out plainly, sharing no code with src


def ref_tokens(text: str) -> list[str]:
    out, run = [], []
    for ch in text + " ":
        if unicodedata.category(ch)[0] in "LN":
            run.append(ch)
        elif run:
            out.append("".join(run).casefold())
            run = []
    return out


def ref_ranking(conversations: list, q: str) -> list[str]:
    """The ranked ids for `q` over the tenant's conversations (each with all its messages): Lucene-IDF BM25,
    k1 = 1.2, b = 0.75, per message over the tenant's messages; a conversation scores its best message."""
    docs = [(c, ref_tokens(m.content)) for c in conversations for m in c.messages]
    wanted = list(dict.fromkeys(ref_tokens(q)))
    n = len(docs)
    avgdl = sum(len(d) for _, d in docs) / n
    df = {t: sum(1 for _, d in docs if t in d) for t in wanted}
    best: dict[str, float] = {}
    by_id = {c.id: c for c in conversations}
    for c, d in docs:
        if not wanted or not all(t in d for t in wanted):
            continue
        score = 0.0
        for t in wanted:
            tf = d.count(t)
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            score += idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * len(d) / avgdl))
        best[c.id] = max(best.get(c.id, 0.0), score)
    return sorted(best, key=lambda i: (best[i], by_id[i].updated_at, i), reverse=True)


async def ranked(search, q: str, tenant: str = T, page: int = 100) -> list[str]:
    """Every hit's id, page by page."""
    out, offset = [], 0
    while offset is not None:
        hits, offset = await search.search(tenant, q, limit=page, offset=offset)
        out += [h.id for h in hits]
    return out


async def everything(convs, tenant: str = T) -> list:
    return [await convs.get(tenant, c.id, max_messages=None)
            async for c in convs.export(tenant)]


def test_a_token_is_a_run_of_letters_and_digits_case_folded():
    letters_and_digits = "".join(chr(cp) for cp in range(sys.maxunicode + 1)
                                 if unicodedata.category(chr(cp))[0] in "LN")
    assert tokens(letters_and_digits) == [letters_and_digits.casefold()]
    others = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp))[0] not in "LN"]
    assert tokens("a".join(others)) == ["a"] * (len(others) - 1)
    assert tokens("Straße, ÉTÉ-été 100% x_y İ") == ["strasse", "été", "été", "100", "x", "y", "i\u0307"]


# matching


async def test_every_token_must_occur_whole_in_one_message(convs, search):
    both = await convs.create(T, messages=[M("user", "The quick brown fox jumps over the lazy dog")])
    split = await convs.create(T, messages=[M("user", "a brown bear"), M("user", "a fox")])
    foxes = await convs.create(T, messages=[M("user", "foxes and brownies")])
    assert await ranked(search, "brown fox") == [both.id]
    assert await ranked(search, "fox BROWN fox") == [both.id]
    assert set(await ranked(search, "fox")) == {both.id, split.id}
    assert await ranked(search, "fo") == [] and await ranked(search, "rown") == []
    assert await ranked(search, "foxes") == [foxes.id] and await ranked(search, "brownie") == []
    assert await ranked(search, "brown cat") == []


async def test_titles_and_metadata_are_not_searched(convs, search):
    await convs.create(T, title="needle", metadata={"k": "needle"}, messages=[M("user", "hay", metadata={"x": "needle"})])
    assert await ranked(search, "needle") == []


async def test_whole_token_substrings_are_found(convs, search):
    c = await convs.create(T, messages=[M("user", "Look for NEEDLE-ab12, the Brown  Fox and 100% of ÉTÉ in Straße")])
    for q in ("needle-ab12", "brown fox", "100%", "été", "STRASSE", "straße", "ab12", "Needle"):
        assert await ranked(search, q) == [c.id], q
    for q in ("eedle", "ete", "100%x", "ab1"):
        assert await ranked(search, q) == [], q


HOSTILE = ["%", "_", "%%", "'", '"', '"fox', "fox*", "*", "-fox", "fox -dog", "NEAR(fox dog)", "fox NEAR dog",
           "AND", "OR", "NOT", "fox AND", "fox OR cat", "NOT fox", "(fox", "fox)", "()", "terms:fox", "{terms}: fox",
           "^fox", "fox + dog", "\\", "fox\\", "\x00", "fox\x00dog", "\ud800", "fox\udfffdog", "' OR 1=1 --",
           "'; DROP TABLE conversation_messages; --", "a" * 10_000, "fox " * 2_500, "ᚠ" * 10_000, "\u200b", " \t\n",
           "1_fox", "1__h", "_h", "fox:1", "fox & dog | !cat", "<->", "fox <-> dog", "$$", "E'\\x00'"]


@pytest.mark.parametrize("q", HOSTILE)
async def test_hostile_queries_are_literal_tokens(convs, search, q):
    messages = ["fox and dog", "and or not near", "terms fox", "1 fox", "fox dog cat", "drop table conversation "
                "messages or 1", "x00 e", "a" * 10_000, "ᚠ" * 10_000]
    made = [await convs.create(T, messages=[M("user", text)]) for text in messages]
    wanted = set(ref_tokens(q))
    expected = {c.id for c, text in zip(made, messages) if wanted and wanted <= set(ref_tokens(text))}
    assert set(await ranked(search, q)) == expected


async def test_a_query_without_tokens_finds_nothing(convs, search):
    await convs.create(T, messages=[M("user", "%_* fox")])
    for q in ("%", "  ", "*-!", "\x00", "\ud800"):
        assert await search.search(T, q) == ([], None)


async def test_long_tokens_match_whole_only(convs, search):
    long = "x" * 70 + "é" * 40
    c = await convs.create(T, messages=[M("user", f"{long} end")])
    assert await ranked(search, long.upper()) == [c.id]
    assert await ranked(search, long[:-1]) == [] and await ranked(search, long + "x") == []


async def test_bad_page_arguments_are_invalid(search):
    for limit, offset in ((0, 0), (101, 0), (True, 0), (10, -1), (10, "1")):
        with pytest.raises(InvalidArgument):
            await search.search(T, "fox", limit=limit, offset=offset)


# ranking


async def test_bm25_by_hand(convs, search, clock):
    # N = 3 messages, avgdl = (2 + 3 + 4) / 3 = 3, df(a) = 2, idf(a) = ln(1 + 1.5 / 2.5):
    # "a b": 1 × 2.2 / (1 + 1.2 × (0.25 + 0.75 × 2/3)) = 1.158·idf; "a a c": 2 × 2.2 / (2 + 1.2) = 1.375·idf.
    one = await convs.create(T, messages=[M("user", "a b")])
    clock.advance(1)
    two = await convs.create(T, messages=[M("user", "a a c")])
    clock.advance(1)
    await convs.create(T, messages=[M("user", "c d e f")])
    assert await ranked(search, "a") == [two.id, one.id]
    # "c": df = 2 again; "a a c" (tf 1, dl 3) 2.2 / 2.2 = 1.0·idf beats "c d e f" (tf 1, dl 4) 2.2 / 2.5.
    assert (await ranked(search, "c"))[0] == two.id
    # A rare token outweighs a common one: "b" (df 1) puts "a b" first for "a b"; only it holds both.
    assert await ranked(search, "b a") == [one.id]


async def test_equal_scores_order_by_updated_at_then_id(convs, search, clock):
    first = [await convs.create(T, messages=[M("user", "same words here")]) for _ in range(3)]
    clock.advance(1)
    later = await convs.create(T, messages=[M("user", "same words here")])
    assert await ranked(search, "same") == [later.id, *sorted((c.id for c in first), reverse=True)]


async def test_order_equals_the_reference_on_a_corpus_and_other_tenants_change_nothing(convs, search, clock, store_kind,
                                                                                       monkeypatch):
    rng = random.Random(12)
    vocab = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
             "Ünïcode", "straße", "日本語", "42", "x1"]
    weights = [1 / (i + 1) for i in range(len(vocab))]

    def text() -> str:
        return rng.choice([" ", ", ", "-", "! "]).join(rng.choices(vocab, weights, k=rng.randint(1, 25)))

    for _ in range(60):
        await convs.create(T, messages=[M("user", text()) for _ in range(rng.randint(1, 4))])
        clock.advance(rng.choice([0, 0.001, 1]))
    queries = ["alpha", "beta gamma", "mu", "STRASSE", "日本語 alpha", "42", "x1 iota", "kappa lambda mu", "nothing"]
    corpus = await everything(convs)
    expected = {q: ref_ranking(corpus, q) for q in queries}
    assert any(len(v) > 20 for v in expected.values()) and expected["nothing"] == []
    for q in queries:
        assert await ranked(search, q, page=7) == expected[q], q
    if store_kind == "sqlite":  # several tokens, counted from every token's postings instead of the candidates
        from stigmer.store.sqlite import search_index

        monkeypatch.setattr(search_index, "FEW", 0)
        for q in queries:
            assert await ranked(search, q, page=7) == expected[q], q
    # Another tenant's messages, many holding the same tokens, change neither what t1 finds nor its order.
    for _ in range(40):
        await convs.create(OTHER, messages=[M("user", "alpha alpha beta " + text())])
    for q in queries:
        assert await ranked(search, q, page=7) == expected[q], q
    theirs = await ranked(search, "alpha", OTHER)
    assert len(theirs) == 40 and not set(theirs) & {c.id for c in corpus}
    assert await ranked(search, "alpha", "t3") == []


async def test_a_conversation_scores_its_best_message_and_snips_it(convs, search, clock):
    weak = await convs.create(T, messages=[M("user", "fox " + "filler " * 30)])
    clock.advance(1)
    strong = await convs.create(T, messages=[M("user", "nothing"), M("user", "the fox fox"),
                                             M("user", "a fox fox " + "filler " * 20)])
    hits, _ = await search.search(T, "fox")
    assert [h.id for h in hits] == [strong.id, weak.id]
    assert hits[0].snippet == "the fox fox" and hits[0].message_count == 3
    same = await convs.create(T, messages=[M("user", "one fox fox"), M("user", "two fox fox")])
    assert [h.snippet for h in (await search.search(T, "fox"))[0] if h.id == same.id] == ["one fox fox"]


# snippets


async def snip(convs, search, content: str, q: str) -> str:
    c = await convs.create(T, messages=[M("user", content)])
    hits, _ = await search.search(T, q)
    return next(h.snippet for h in hits if h.id == c.id)


async def test_snippets_hold_the_first_occurrence(convs, search):
    tail = " ".join(f"w{i}" for i in range(100))
    assert await snip(convs, search, "needle " + tail, "needle") == ("needle " + tail)[:200] + "…"
    middle = "x" * 100 + " needle " + "y" * 300
    assert await snip(convs, search, middle, "NEEDLE") == "…" + middle[61:261] + "…"
    end = "z " * 150 + "needle"
    assert await snip(convs, search, end, "needle") == "…" + end[len(end) - 46:]
    short = "a short needle"
    assert await snip(convs, search, short, "needle") == short
    exact = "q" * 199 + " w"
    assert await snip(convs, search, exact, "w") == "…" + exact[160:]
    # the first occurrence of any query token, whole tokens only
    text = "needles first, then b " + "-" * 300 + " a"
    assert await snip(convs, search, text, "a b") == text[:200] + "…"


async def test_snippet_positions_are_characters_of_the_original_text(convs, search):
    # "ß" folds to "ss" and "İ" to two characters: the offset is counted on the text as written.
    text = "ß" * 30 + " İİİİİ " + "Ǆ" * 20 + " ÉTÉ " + "日本" * 200
    p = text.index("ÉTÉ")
    assert await snip(convs, search, text, "été") == "…" + text[p - 40:p + 160] + "…"
    assert await snip(convs, search, "🙂🙂 " * 30 + "straße " + "🙂" * 300, "STRASSE") == (
        "…" + ("🙂🙂 " * 30 + "straße " + "🙂" * 300)[50:250] + "…")


# pages


async def test_pages_by_offset(convs, search, clock):
    made = []
    for i in range(25):
        made.append(await convs.create(T, messages=[M("user", "word " * (i + 1))]))
    full = await ranked(search, "word")
    assert len(full) == 25 and len(set(full)) == 25
    hits, nxt = await search.search(T, "word", limit=10)
    assert [h.id for h in hits] == full[:10] and nxt == 10
    hits, nxt = await search.search(T, "word", limit=10, offset=20)
    assert [h.id for h in hits] == full[20:] and nxt is None
    assert await search.search(T, "word", limit=5, offset=20) == ((await search.search(T, "word", offset=20))[0], None)
    assert await search.search(T, "word", offset=25) == ([], None)
    assert await search.search(T, "word", offset=10**30) == ([], None)
    hit = (await search.search(T, "word", limit=1))[0][0]
    c = next(c for c in made if c.id == hit.id)
    assert (hit.title, hit.message_count, hit.created_at, hit.updated_at) == (None, 1, c.created_at, c.updated_at)


# the index follows the messages


def remove_from(tx, conversation_id: str, position: int) -> None:
    """The plain removal of a conversation's messages from a position on, as a later route does it."""
    if hasattr(tx, "cur"):  # PostgreSQL
        tx.write("DELETE FROM conversation_messages WHERE tenant = %s AND conversation_id = %s AND position >= %s",
                 (tx.tenant, conversation_id, position))
    else:
        tx.conn.execute("DELETE FROM conversation_messages WHERE tenant = ? AND conversation_id = ? AND position >= ?",
                        (tx.tenant, conversation_id, position))


async def test_deleted_conversations_and_removed_messages_disappear(convs, search, store, clock):
    a = await convs.create(T, messages=[M("user", "alpha beta"), M("user", "gamma"), M("user", "delta alpha")])
    b = await convs.create(T, messages=[M("user", "alpha gamma")])
    c = await convs.create(T, messages=[M("user", "alpha alpha alpha")])
    d = await convs.create(T, messages=[M("user", "alpha zeta")])
    await convs.delete(T, b.id)
    assert await ranked(search, "gamma") == [a.id]
    assert await convs.bulk_delete(T, [c.id, "unknown"]) == 1
    assert set(await ranked(search, "alpha")) == {a.id, d.id}
    await store.submit(T, lambda tx: remove_from(tx, a.id, 1))
    assert await ranked(search, "gamma") == [] and await ranked(search, "delta") == []
    assert await ranked(search, "beta") == [a.id]
    # the statistics follow too: the order is the reference's over what is left
    for q in ("alpha", "alpha beta", "zeta"):
        assert await ranked(search, q) == ref_ranking(await everything(convs), q)
    assert index_counts(store) == {T: (2, 4)}  # messages and tokens: "alpha beta", "alpha zeta"


async def test_a_failed_mutation_leaves_no_index_behind(convs, search, store):
    kept = await convs.create(T, messages=[M("user", "kept words")])
    doomed = (await convs.create(OTHER, messages=[M("user", "x")])).messages  # ids to reuse

    def boom(tx):
        create_in(tx, msgspec.structs.replace(bare(kept), id="doomed", messages=[
            msgspec.structs.replace(doomed[0], id="m1", conversation_id="doomed", content="kept doomed words")]))
        raise RuntimeError("after writing")

    with pytest.raises(RuntimeError):
        await store.submit(T, boom)
    assert await ranked(search, "kept") == [kept.id] and await ranked(search, "doomed") == []
    assert index_counts(store) == {T: (1, 2), OTHER: (1, 1)}


def bare(c):
    """`c` as a new conversation would start: no external id, no messages."""
    return msgspec.structs.replace(c, external_id=None, messages=[])


def index_counts(store) -> dict[str, tuple[int, int]]:
    """Each tenant's (messages, tokens) as the index counts them, checked against the index rows themselves."""
    if hasattr(store, "url"):
        import psycopg

        with psycopg.connect(store.url) as conn:
            kept = dict((t, (m, n)) for t, m, n in conn.execute(
                "SELECT tenant, messages, length FROM conversation_search_tenants WHERE messages > 0"))
            rows = dict((t, (m, int(n))) for t, m, n in conn.execute(
                "SELECT tenant, count(*), sum(length) FROM conversation_message_terms WHERE part = 0 GROUP BY tenant"))
            messages = conn.execute("SELECT count(*) FROM conversation_messages").fetchone()[0]
    else:
        import sqlite3

        conn = sqlite3.connect(store.path)
        kept = dict((t, (m, n)) for t, m, n in conn.execute(
            "SELECT tenant, messages, length FROM conversation_search_tenants WHERE messages > 0"))
        rows = dict((t, (m, n)) for t, m, n in conn.execute(
            "SELECT tenant, count(*), sum(length) FROM conversation_message_terms GROUP BY tenant"))
        messages = conn.execute("SELECT count(*) FROM conversation_messages").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM conversation_message_index").fetchone()[0] == messages
        conn.close()
    assert kept == rows and sum(m for m, _ in rows.values()) == messages
    return kept


async def test_appended_messages_are_found(convs, search, clock):
    c = await convs.create(T, messages=[M("user", "first")])
    other = await convs.create(T, messages=[M("user", "later later")])
    assert await ranked(search, "later") == [other.id]
    clock.advance(1)
    await convs.append(T, c.id, [M("assistant", "later on"), M("user", "again later")])
    assert set(await ranked(search, "later")) == {c.id, other.id}
    assert await ranked(search, "later") == ref_ranking(await everything(convs), "later")
    assert (await search.search(T, "again"))[0][0].message_count == 3


async def test_a_one_mebibyte_message_is_indexed_and_found(convs, search):
    rng = random.Random(3)
    words = [f"{rng.getrandbits(40):x}" for _ in range(120_000)]  # many distinct tokens: several tsvector rows
    text = " ".join(words)[: (1 << 20) - 20] + " lastword"
    big = await convs.create(T, messages=[M("user", text)])
    small = await convs.create(T, messages=[M("user", f"{words[5]} {words[5]} lastword")])
    assert await ranked(search, words[5]) == ref_ranking(await everything(convs), words[5])
    assert set(await ranked(search, "lastword")) == {big.id, small.id}
    hits, _ = await search.search(T, f"lastword {words[77_000]}")
    assert [h.id for h in hits] == [big.id]
    p = text.index(f" {words[77_000]} ") + 1
    assert hits[0].snippet == "…" + text[p - 40:p + 160] + "…"
    await convs.delete(T, big.id)
    assert await ranked(search, "lastword") == [small.id]


async def test_heavy_repetition_counts_exactly(convs, search):
    # 40,000 occurrences of one token: above one tsvector position's largest value (16,383).
    heavy = await convs.create(T, messages=[M("user", "echo " * 40_000 + "x " * 60_000)])
    light = await convs.create(T, messages=[M("user", "echo " * 3 + "x " * 4)])
    await convs.create(T, messages=[M("user", "z")])
    assert await ranked(search, "echo") == ref_ranking(await everything(convs), "echo")
    assert set(await ranked(search, "echo")) == {heavy.id, light.id}


async def test_messages_written_before_the_index_are_indexed_by_migration_10(open_store, store_kind, clock):
    store = await open_store()
    convs = Conversations(store)
    for i in range(30):
        await convs.create(T if i % 3 else OTHER, messages=[M("user", f"alpha {'beta ' * i} gamma{i % 4}"),
                                                            M("assistant", "ÉTÉ straße")])
        clock.advance(0.5)
    queries = ["alpha", "beta", "gamma1 alpha", "strasse été"]
    before = {q: await ranked(ConversationSearch(store), q) for q in queries}
    assert before["alpha"] == ref_ranking(await everything(convs), "alpha")
    await store.close()
    _back_to_version_9(store)
    store = await open_store()
    for q in queries:
        assert await ranked(ConversationSearch(store), q) == before[q], q


def _back_to_version_9(store) -> None:
    """Drop what migration 10 made, as a database of version 9 with its messages."""
    if hasattr(store, "url"):
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("DROP TABLE conversation_message_terms, conversation_search_tenants")
            conn.execute("DROP FUNCTION conversation_search_count")
            conn.execute("DELETE FROM schema_migrations WHERE version = 10")
    else:
        import sqlite3

        conn = sqlite3.connect(store.path)
        for sql in ("DROP TRIGGER conversation_messages_removed", "DROP TABLE conversation_message_instances",
                    "DROP TABLE conversation_message_term_counts",
                    "DROP TABLE conversation_message_index", "DROP TABLE conversation_message_terms",
                    "DROP TABLE conversation_search_tenants", "DELETE FROM schema_migrations WHERE version = 10"):
            conn.execute(sql)
        conn.commit()
        conn.close()
