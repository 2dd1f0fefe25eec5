"""Cost of one text for the embedders and the token counter: `python bench/embedders.py`.

A 20-word text; hash-v1 with its token cache warm (the words seen before, as on a running server) and cold (every
text made of words never seen); the best of 7 rounds, so a busy machine shows less of its noise. The local model
is measured when the `embeddings-local` extra is installed.
"""

from __future__ import annotations

import asyncio
import random
import time

from stigmer.support import tokencount
from stigmer.support.embeddings import HashEmbedder

TEXT = ("Our deployment pipeline failed twice yesterday because the staging database migration timed out "
        "after the schema change landed on Friday")
ROUNDS, PER_ROUND = 7, 500


def best_us(run, texts_per_call: int = 1) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            run()
        best = min(best, (time.perf_counter() - started) / PER_ROUND / texts_per_call)
    return best * 1e6


def main() -> None:
    assert len(TEXT.split()) == 20
    embedder = HashEmbedder()
    rng = random.Random(7)  # words of random letters: never seen before, so never in the cache
    fresh = iter([" ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
                           for _ in range(20)) for _ in range(ROUNDS * PER_ROUND)])
    batch = [TEXT] * 100
    rows = [("hash-v1, one text, warm cache", best_us(lambda: embedder.vectors([TEXT]))),
            ("hash-v1, one text, cold cache", best_us(lambda: embedder.vectors([next(fresh)]))),
            ("hash-v1, per text in a batch of 100", best_us(lambda: embedder.vectors(batch), 100)),
            ("cl100k_base count, one text", best_us(lambda: tokencount.count(TEXT)))]
    try:
        from stigmer.support.embeddings import LocalEmbedder

        local = LocalEmbedder("all-MiniLM-L6-v2")
    except Exception as exc:
        print(f"local:all-MiniLM-L6-v2 not measured: {exc}")
    else:
        async def one() -> None:
            await local.embed([TEXT])
        asyncio.run(one())
        started = time.perf_counter()
        for _ in range(20):
            asyncio.run(one())
        rows.append(("local:all-MiniLM-L6-v2, one text", (time.perf_counter() - started) / 20 * 1e6))
    for name, us in rows:
        print(f"{us:10.1f} µs  {name}")


if __name__ == "__main__":
    main()
