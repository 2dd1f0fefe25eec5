"""Conversation search at 100,000 messages on the SQLite store, beside SQLite FTS5 queried directly (the floor).

  python bench/search.py [--messages 100000]   # prints one JSON line; bench/run.py runs it pinned to core 0

The corpus is built deterministically (seeded RNG, a Zipf-like vocabulary of 30,000 pseudo-words, 20 messages
per conversation, 5-60 words each) and written through the engine (`Conversations.create`), so the index is the
one the server keeps. The floor is one FTS5 table (unicode61 tokenizer) over the same message texts in its own
file, queried with `MATCH ? ORDER BY rank LIMIT 20` from Python: the ranked rowids of the top 20 messages, no
conversations, no snippets, no per-tenant statistics. Ours is `ConversationSearch.search(tenant, q)` (20 hits
with snippets) in-process. Every query kind runs 5 queries × 20 rounds; p50 and p99 are over those 100 times.
Appends: 16 concurrent writers each appending to its own conversation for 3 s, batches of 1 and of 100.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections import Counter

from stigmer.engine.conversation_search import ConversationSearch, tokens
from stigmer.engine.conversations import Conversations, MessageInput
from stigmer.store.sqlite import SQLiteStore

TENANT = "bench"
PER_CONVERSATION = 20
QUERIES_PER_KIND, ROUNDS = 5, 20
APPEND_WRITERS, APPEND_SECONDS = 16, 3.0


def corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = list(dict.fromkeys("".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(32_000)))[:30_000]
    cum = list(itertools.accumulate(1 / (r + 1) ** 1.05 for r in range(len(vocab))))
    texts = []
    for _ in range(n):
        words = rng.choices(vocab, cum_weights=cum, k=rng.randint(5, 60))
        words[0] = words[0].capitalize()
        texts.append(" ".join(words) + rng.choice([".", "?", "!", ""]))
    return texts


def queries(texts: list[str]) -> dict[str, list[str]]:
    """Five queries of each kind, picked by document frequency from the corpus itself."""
    df = Counter(t for text in texts for t in set(tokens(text)))
    n = len(texts)

    def near(target: float, k: int, skip: set[str] = frozenset()) -> list[str]:
        return sorted((w for w in df if w not in skip), key=lambda w: (abs(df[w] - target), w))[:k]

    pairs = near(0.05 * n, 10)
    return {"rare term": near(20, 5), "common term": near(0.2 * n, 5),
            "two-term AND": [f"{a} {b}" for a, b in zip(pairs[::2], pairs[1::2])],
            "no hit": [f"zq{i}xv" for i in range(5)]}


def percentiles(times: list[float]) -> dict:
    times = sorted(times)
    return {"p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000}


async def load(store: SQLiteStore, texts: list[str]) -> None:
    convs = Conversations(store)
    batches = [texts[i:i + PER_CONVERSATION] for i in range(0, len(texts), PER_CONVERSATION)]
    for i in range(0, len(batches), 50):  # 50 creates at a time: the writer commits them as groups
        await asyncio.gather(*(convs.create(TENANT, messages=[MessageInput("user", t) for t in b])
                               for b in batches[i:i + 50]))


def floor_db(path: str, texts: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE VIRTUAL TABLE floor USING fts5 (content)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO floor (rowid, content) VALUES (?, ?)", enumerate(texts, 1))
    conn.execute("COMMIT")
    return conn


def fts5_query(q: str) -> str:
    """The query as FTS5 syntax: each token a quoted string (implicit AND)."""
    return " ".join(f'"{t}"' for t in tokens(q))


async def measure_search(store: SQLiteStore, floor: sqlite3.Connection, kinds: dict[str, list[str]]) -> dict:
    search = ConversationSearch(store)
    out = {}
    for kind, qs in kinds.items():
        ours, base, hits = [], [], 0
        for _ in range(ROUNDS):
            for q in qs:
                t = time.perf_counter()
                found, _ = await search.search(TENANT, q)
                ours.append(time.perf_counter() - t)
                hits += len(found)
                t = time.perf_counter()
                floor.execute("SELECT rowid FROM floor WHERE floor MATCH ? ORDER BY rank LIMIT 20",
                              (fts5_query(q),)).fetchall()
                base.append(time.perf_counter() - t)
        out[kind] = {"queries": qs, "ours": percentiles(ours), "floor": percentiles(base),
                     "hits_per_query": hits / len(ours)}
    return out


async def measure_appends(store: SQLiteStore, batch: int) -> dict:
    convs = Conversations(store)
    targets = [(await convs.create(TENANT)).id for _ in range(APPEND_WRITERS)]
    rng = random.Random(batch)
    texts = corpus(2_000, seed=batch)
    done = 0
    stop = time.monotonic() + APPEND_SECONDS

    async def writer(conversation_id: str) -> None:
        nonlocal done
        while time.monotonic() < stop:
            await convs.append(TENANT, conversation_id, [MessageInput("user", rng.choice(texts)) for _ in range(batch)])
            done += batch

    t = time.monotonic()
    await asyncio.gather(*(writer(c) for c in targets))
    return {"batch": batch, "writers": APPEND_WRITERS, "messages_per_s": done / (time.monotonic() - t)}


async def main(n: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="stigmer-search-bench-")
    try:
        t = time.monotonic()
        texts = corpus(n)
        kinds = queries(texts)
        store = SQLiteStore(f"{tmp}/data")
        await store.open()
        try:
            await load(store, texts)
            built = time.monotonic() - t
            floor = floor_db(f"{tmp}/floor.db", texts)
            res = {"messages": n, "build_s": round(built, 1), "search": await measure_search(store, floor, kinds),
                   "append": [await measure_appends(store, b) for b in (1, 100)]}
            floor.close()
            return res
        finally:
            await store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    print(json.dumps(asyncio.run(main(ap.parse_args().messages))))
