"""Hybrid retrieval (semvec §6.5), the context block (§6.6) and the top similarity of §6.4, over a view."""

from __future__ import annotations

import math

import numpy as np

from ..conversation_search import B, K1
from .index import View, bm25_tokens
from .maths import Params

RRF_K = 60
LIST_SIZE = 50


class Boosts:
    """What shapes the dense score beyond cos(q, e): anchors and policy vectors, triggers (§6.5)."""

    def __init__(self, anchors: np.ndarray, promote: list[tuple[np.ndarray, float]],
                 demote: list[tuple[np.ndarray, float]], keywords: list[str], trigger_vectors: list[tuple[np.ndarray, float]]):
        self.anchors, self.promote, self.demote = anchors, promote, demote
        self.keywords, self.trigger_vectors = keywords, trigger_vectors

    def empty(self) -> bool:
        return not (len(self.anchors) or self.promote or self.demote or self.keywords or self.trigger_vectors)


def dense(view: View, idx: np.ndarray, q: np.ndarray, boosts: Boosts, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """(cos(q, e_m), d(m)) for the memories `idx`; embeddings and q are unit (or q zero)."""
    sims = view.dots(q)[idx]
    if boosts.empty():
        return sims, sims
    a = np.zeros(len(idx))
    for v in boosts.anchors:
        a = np.maximum(a, view.dots(v)[idx])
    for v, w in boosts.promote:
        a = np.maximum(a, w * view.dots(v)[idx])
    a = np.maximum(a, 0.0)
    t = np.zeros(len(idx))
    if boosts.keywords:
        lower = view.buf.lower
        t = np.fromiter((any(k in lower[i] for k in boosts.keywords) for i in idx), dtype=np.float64, count=len(idx))
    for v, threshold in boosts.trigger_vectors:
        t = np.maximum(t, (view.dots(v)[idx] >= threshold).astype(np.float64))
    neg = np.zeros(len(idx))
    for v, w in boosts.demote:
        neg = np.maximum(neg, w * view.dots(v)[idx])
    neg = np.maximum(neg, 0.0)
    return sims, sims + np.maximum(params.anchor_boost * a, params.trigger_boost * t) - params.anchor_boost * neg


def _order(view: View, idx: np.ndarray, primary: np.ndarray, secondary: np.ndarray | None = None) -> list[int]:
    """Positions into `idx` by primary desc, (secondary desc), newer timestamp, then id."""
    ts = view.buf.ts[idx]
    ids = view.buf.ids
    keys = [(-primary[j], -(secondary[j] if secondary is not None else 0.0), -ts[j], ids[idx[j]]) for j in range(len(idx))]
    return sorted(range(len(idx)), key=keys.__getitem__)


def _top(view: View, idx: np.ndarray, score: np.ndarray, count: int, tie: np.ndarray | None = None) -> list[int]:
    """The first `count` positions of `_order`, looking only at the scores that can make it."""
    if len(idx) > count:
        cut = np.partition(score, len(score) - count)[len(score) - count]
        keep = np.flatnonzero(score >= cut)
    else:
        keep = np.arange(len(idx))
    order = _order(view, idx[keep], score[keep], None if tie is None else tie[keep])
    return [int(keep[j]) for j in order[:count]]


def bm25(view: View, idx: np.ndarray, text: str) -> np.ndarray:
    """BM25 (k1 = 1.2, b = 0.75, Lucene's IDF, distinct query tokens) of each of `idx` for the query."""
    n = len(idx)
    scores = np.zeros(n)
    if n == 0:
        return scores
    at = np.full(view.n, -1, dtype=np.int64)
    at[idx] = np.arange(n)
    dl = view.buf.dl[idx]
    avgdl = float(dl.mean())
    if avgdl <= 0:
        return scores
    for token in set(bm25_tokens(text)):
        p = view.buf.postings.get(token)
        if p is None:
            continue
        docs, tf = p.idx[:p.count], p.tf[:p.count]
        inside = docs < view.n
        docs, tf = docs[inside], tf[inside]
        where = at[docs]
        keep = where >= 0
        where, tf = where[keep], tf[keep]
        df = len(where)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        scores[where] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl[where] / avgdl))
    return scores


def hybrid(view: View, q: np.ndarray, text: str, boosts: Boosts, top_k: int, params: Params) -> tuple[list[int], float]:
    """§6.5 for /v1/run: (memory positions in the view, best first; top_similarity over the candidates)."""
    idx = view.retrievable()
    if len(idx) == 0:
        return [], 0.0
    sims, d = dense(view, idx, q, boosts, params)
    top_similarity = float(sims.max())
    dense_list = _top(view, idx, d, LIST_SIZE)
    scores = bm25(view, idx, text)
    positive = np.flatnonzero(scores > 0)
    bm25_list = [int(positive[j]) for j in _top(view, idx[positive], scores[positive], LIST_SIZE, d[positive])]
    rrf: dict[int, float] = {}
    for ranked in (dense_list, bm25_list):
        for rank, j in enumerate(ranked, 1):
            rrf[j] = rrf.get(j, 0.0) + 1.0 / (RRF_K + rank)
    js = np.fromiter(rrf.keys(), dtype=np.int64, count=len(rrf))
    fused = np.fromiter(rrf.values(), dtype=np.float64, count=len(rrf))
    order = _order(view, idx[js], fused, d[js])
    return [int(idx[js[o]]) for o in order[:top_k]], top_similarity


def state_query(view: View, s: np.ndarray, boosts: Boosts, top_k: int, params: Params) -> list[tuple[int, float]]:
    """§5.7 ranking against the session vector: (position, dense score) best first."""
    idx = view.retrievable()
    if len(idx) == 0:
        return []
    _, d = dense(view, idx, s, boosts, params)
    return [(int(idx[j]), float(d[j])) for j in _top(view, idx, d, top_k)]


def by_importance(view: View, top_k: int) -> list[int]:
    """§5.7 with a zero session vector: importance desc, then newer, then id."""
    idx = view.retrievable()
    return [int(idx[j]) for j in _order(view, idx, view.importance[idx])[:top_k]]


def top_similarity(view: View, q: np.ndarray) -> float:
    idx = view.retrievable()
    if len(idx) == 0:
        return 0.0
    return float(view.dots(q)[idx].max())


def context_block(n: int, items: list[tuple[float, str]], budget: int) -> str:
    """§6.6: the header, then each memory's importance and text, texts sharing `budget` characters."""
    if not items and n == 0:
        return "[Semvec Context | Turn 0 | 0 memories]"
    lines = [f"[Semvec Context | Turn {n} | {len(items)} memories]", "Relevant context:"]
    remaining = budget
    for i, (importance, text) in enumerate(items, 1):
        if remaining < 50:
            break
        piece = text.replace("\n", " ")[:remaining]
        remaining -= len(piece)
        lines.append(f"  {i}. [{importance:.2f}] {piece}")
    return "\n".join(lines)
