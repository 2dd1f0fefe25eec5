"""The column form of the memory text ranking (bench/results/memory.md "Latency, fourth round") gives the
scalar formula's floats and order exactly, and term frequencies read from `repeats` exactly."""

import random

import numpy as np

from stigmer.engine.conversation_search import Matches, bm25
from stigmer.engine.memory.search import TermMatches, bm25_scores, ranked
from stigmer.store.memory_index_rows import repeated, term_matches


def random_matches(rng: random.Random) -> tuple[Matches, TermMatches]:
    terms, rows = rng.randint(1, 6), rng.randint(1, 300)
    created = [rng.choice([10, 20, 30]) for _ in range(rows)]  # few timestamps: many ties to break
    lengths = [rng.randint(1, 60) for _ in range(rows)]
    tfs = [tuple(rng.choice([0, 0, 1, 1, 2, 3]) for _ in range(terms)) for _ in range(rows)]
    n = rows + rng.randint(0, 500)
    df = [sum(1 for f in tfs if f[i]) for i in range(terms)]
    seqs = rng.sample(range(1, 10_000), rows)
    length = sum(lengths) + rng.randint(0, 5000)
    scalar = Matches(n, length, df, [(s, c, dl, f) for s, c, dl, f in zip(seqs, created, lengths, tfs)])
    column = TermMatches(n, length, df, np.asarray(seqs, dtype=np.int64), np.asarray(created, dtype=np.int64),
                         np.asarray(lengths, dtype=np.int64), np.asarray(tfs, dtype=np.int64).reshape(rows, terms).T)
    return scalar, column


def test_column_bm25_and_order_equal_the_scalar_formula_and_tuple_sort():
    rng = random.Random(13)
    for _ in range(300):
        scalar, column = random_matches(rng)
        expected = bm25(scalar)
        assert bm25_scores(column).tolist() == [score for _, _, score in expected]  # the same floats, exactly
        order = sorted((-score, -created_at, seq) for seq, created_at, score in expected)
        assert ranked(column) == [(seq, -negated) for negated, _, seq in order]


def test_repeated_finds_exactly_the_wanted_term_slots():
    rows = [b"", b"1_go 2 1_goal 3", b"11_go 4", b"1_goal 5 1_go 12", b"1_gone 2", b"1_x 2"]
    assert sorted(repeated(rows, ["1_go", "1_goal"])) == [(1, 0, 2), (1, 1, 3), (3, 0, 12), (3, 1, 5)]
    assert repeated(rows, ["1_y"]) == [] and repeated([], ["1_go"]) == []


def test_term_frequencies_come_from_postings_and_repeats():
    meta = [(3, 100, 4, b"1_a 2"), (5, 200, 6, b""), (9, 300, 8, b"1_b 3 1_a 4")]
    holders = [np.asarray([3, 9], dtype=np.int64), np.asarray([1, 5, 9, 11], dtype=np.int64)]  # 1, 11: not rows
    found = term_matches(40, 400, meta, ["1_a", "1_b"], holders)
    assert found.seqs.tolist() == [3, 5, 9] and found.created.tolist() == [100, 200, 300]
    assert found.lengths.tolist() == [4, 6, 8] and found.df == [2, 4]
    assert found.tfs.tolist() == [[2, 0, 4], [0, 1, 3]]
