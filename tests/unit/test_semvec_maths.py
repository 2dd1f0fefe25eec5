"""semvec §6.2–6.7 on worked examples computed by hand: a turn, drift signals, phases, anchors, retention,
hybrid retrieval (dense + BM25 fused by RRF), the context block and the write gate. (hash-v1's worked
vectors, §6.1, are in test_embeddings.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stigmer.engine.sessions import maths, retrieval
from stigmer.engine.sessions.index import Buffers, View
from stigmer.engine.sessions.model import MemoryRow
from stigmer.engine.sessions.work import gate

D = 4
P = maths.Params()


def e(i: int) -> np.ndarray:
    v = np.zeros(D)
    v[i] = 1.0
    return v


def test_a_turn_from_zero_then_a_turn_aside():
    first = maths.turn(np.zeros(D), e(0), np.zeros((0, D)), 0, True, P)
    assert np.allclose(first.s, e(0)) and (first.beta, first.similarity, first.fsm, first.topic_switch) == (0.0, 0.0, 0.0, 0.0)
    assert first.pattern_strength == 1.0
    second = maths.turn(first.s, e(1), np.zeros((0, D)), 0, True, P)
    strength = math.sqrt(0.85 ** 2 + 0.15 ** 2)  # ‖0.85·e0 + 0.15·e1‖ = 0.863134
    assert second.beta == 0.85 and second.pattern_strength == pytest.approx(strength)
    assert np.allclose(second.s, [0.85 / strength, 0.15 / strength, 0, 0])
    assert second.similarity == 0.0 and second.fsm == pytest.approx(0.85 / strength)  # 0.984784
    assert second.topic_switch == 1.0  # similarity 0 ≤ θ_d
    assert maths.turn(first.s, e(1), np.zeros((0, D)), 0, False, P).topic_switch == 0.0


def test_the_anchor_pull_starts_below_the_threshold_and_lasts_five_turns():
    anchors = np.array([e(2)])
    t = maths.turn(np.zeros(D), e(0), anchors, 0, True, P)
    assert t.realignment_remaining == 5 and np.allclose(t.s, e(0))  # score 0 < 0.5: the pull starts next turn
    t2 = maths.turn(t.s, e(0), anchors, t.realignment_remaining, True, P)
    assert t2.realignment_remaining == 4 and np.allclose(t2.s, maths.unit(0.9 * e(0) + 0.1 * e(2)))
    assert maths.anchor_score((e(0) + e(1)) / math.sqrt(2), np.array([e(0)])) == pytest.approx(1 / math.sqrt(2))
    assert maths.anchor_score(-e(0), np.array([e(0)])) == 0.0
    assert maths.anchor_score(np.zeros(D), np.array([e(0)])) == 0.0
    assert maths.anchor_score(e(0), np.zeros((0, D))) == 1.0


@pytest.mark.parametrize("c, score, detected, phase", [
    (1 / math.sqrt(2), (1 - 1 / math.sqrt(2)) / 2, False, "stable"),   # drift_score 0.146447
    (0.3, 0.35, False, "shifting"),
    (0.2, 0.4, True, "drifted"),  # at θ_d is drift
    (-1.0, 1.0, True, "drifted"),
])
def test_drift_signals(c, score, detected, phase):
    q = np.array([c, math.sqrt(1 - c * c), 0, 0])
    d = maths.signals(q, e(0), 0.5, True, 0.85, P)
    assert d.drift_score == pytest.approx(score) and d.drift_detected is detected and d.drift_phase == phase
    assert d.short_circuit is False and maths.signals(q, e(0), 0.9, True, 0.85, P).short_circuit
    assert not maths.signals(q, e(0), 0.9, False, 0.85, P).short_circuit
    zero = maths.signals(q, np.zeros(D), 0.0, False, 0.85, P)
    assert (zero.drift_score, zero.drift_detected, zero.drift_phase) == (0.0, False, "stable")


@pytest.mark.parametrize("n, sims, phase", [
    (2, [0.9, 0.9], "initialization"), (3, [0.9] * 3, "resonance"), (3, [0.7] * 3, "stability"),
    (3, [0.5] * 3, "convergence"), (3, [0.1] * 3, "exploration"), (5, [0, 1, 0, 1, 0], "instability"),
    (7, [0, 0, 0.8, 0.8, 0.8, 0.8, 0.8], "resonance"),  # only the last five count
])
def test_phases(n, sims, phase):
    assert maths.phase(n, sims) == phase


def test_retention():
    r = maths.retention(np.array([1.0, 1.0, 0.2, 5.0]), 100, np.array([100, 100, 0, 100]), np.array([0, 0, 0, 0]),
                        np.array([0, 1, 0, 0]))
    assert r == pytest.approx([0.75, 0.875, 0.08 + 0.35 * 0.5, 0.75])


def view_of(rows: list[tuple[str, np.ndarray]]) -> View:
    v = View("epoch", Buffers(D))
    v.apply([MemoryRow("t", "s", f"m{i}", i, 1, text, np.asarray(x, dtype="<f4").tobytes(), "server", "short_term",
                       1.0, 0, 1000.0 + i, i, 0, "h", "{}", "d") for i, (text, x) in enumerate(rows, 1)])
    return v


def test_hybrid_retrieval_worked_example():
    v = view_of([("alpha beta", e(0)), ("gamma", e(1)), ("alpha", maths.unit(e(0) + e(1)))])
    boosts = retrieval.Boosts(np.zeros((0, D)), [], [], [], [])
    idx = v.retrievable()
    # BM25 of "alpha": N = 3, df = 2, idf = ln(1 + 1.5/2.5) = ln 1.6; avgdl = 4/3
    idf = math.log(1.6)
    m1 = idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / (4 / 3)))  # 0.390192
    m3 = idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 1 / (4 / 3)))  # 0.523549
    assert retrieval.bm25(v, idx, "Alpha!") == pytest.approx([m1, 0.0, m3])
    # dense ranks m2, m3, m1; BM25 ranks m3, m1: RRF m3 = 1/62 + 1/61, m1 = 1/63 + 1/62, m2 = 1/61
    picked, top = retrieval.hybrid(v, e(1), "alpha", boosts, 3, P)
    assert [v.buf.ids[i] for i in picked] == ["m3", "m1", "m2"] and top == pytest.approx(1.0)
    # the state query is dense only, with a trigger's bonus: m1 gets +0.3 from the keyword "beta"
    boosts = retrieval.Boosts(np.zeros((0, D)), [], [], ["beta"], [])
    ranked = retrieval.state_query(v, e(1), boosts, 3, P)
    assert [(v.buf.ids[i], round(d, 4)) for i, d in ranked] == [("m2", 1.0), ("m3", 0.7071), ("m1", 0.3)]
    # an anchor on e0 adds 0.6·cos(e, anchor): m1 0 + 0.6, m3 0.7071 + 0.4243
    boosts = retrieval.Boosts(np.array([e(0)]), [], [], [], [])
    ranked = retrieval.state_query(v, e(1), boosts, 3, P)
    assert [(v.buf.ids[i], round(d, 4)) for i, d in ranked] == [("m3", 1.1314), ("m2", 1.0), ("m1", 0.6)]


def test_context_block():
    assert retrieval.context_block(0, [], 4000) == "[Semvec Context | Turn 0 | 0 memories]"
    assert retrieval.context_block(3, [], 4000) == "[Semvec Context | Turn 3 | 0 memories]\nRelevant context:"
    block = retrieval.context_block(2, [(1.0, "line one\nline two"), (0.456, "x" * 5000), (1.0, "never shown")], 4000)
    lines = block.split("\n")
    assert lines[:3] == ["[Semvec Context | Turn 2 | 3 memories]", "Relevant context:", "  1. [1.00] line one line two"]
    assert lines[3] == "  2. [0.46] " + "x" * (4000 - 17) and len(lines) == 4  # under 50 characters left: stop


def test_the_write_gate():
    iso = {"level": "FILTER", "exclusion_embeddings": [e(0).tolist()], "allowlist_embeddings": [e(1).tolist()],
           "similarity_threshold": 0.7, "quarantine": []}
    assert gate(iso, e(0)) == "drop"
    assert gate(iso, maths.unit(e(0) + e(1))) == "admit"  # cos 0.7071 with the allowlist ≥ 0.7
    assert gate(iso, e(2)) == "admit"
    assert gate(iso | {"level": "QUARANTINE"}, e(0)) == "queue"
    assert gate(iso | {"level": "LOCKDOWN"}, e(1)) == "drop"
    assert gate(iso | {"level": "OPEN"}, e(0)) == "admit"
