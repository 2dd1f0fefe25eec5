"""Memory search (Statewave §5.7, §6.5; docs/memory.md "Search").

Text search (the default):
- a token is a maximal run of Unicode letters and digits (`[^\\W_]`, categories L* and N*), lower-cased: no
  stemming, no stop words, diacritics kept; whatever a client types is literal text, never query syntax;
- the index holds the `content` of **active** memories (the store keeps it exact on insert, supersede, delete);
- a memory matches when it holds every distinct token of `q`; `kind` filters before ranking;
- BM25 (k1 1.2, b 0.75, Lucene's non-negative IDF: conversation_search.bm25) over the memories in the request's
  scope — the subject's active memories of the Statewave tenant (or of all of them, unscoped) and of the kind, if
  given — so no tenant's statistics depend on another's rows; order: score desc, `created_at` desc, `seq` asc.

Vectors: with an embedder, active memories carry one vector per embedder id (`embed_memories`, after a compile).
`semantic` (Statewave `semantic=true`) ranks by cosine distance only with a *real* provider (local model or
OpenAI-compatible); `hash-v1` never ranks there (the spec's `stub`): it falls back to text search, as does
any provider failure. `hybrid` (engine and query-driven context only, never the Statewave route) fuses the
text ranking and the vector ranking of whatever embedder is configured, hash-v1 included, by reciprocal rank.
The scan is exact (numpy over the scope's vectors): no vector index (pgvector, sqlite-vec) is installed here.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ...support.embeddings import STOPWORDS
from ..conversation_search import B, K1
from ..errors import InvalidArgument
from .episodes import check_subject_id, check_tenant_id
from .memories import MemoryRecord

if TYPE_CHECKING:
    from ...store.base import Store
    from ...support.embeddings import Embedder

log = logging.getLogger("stigmer.memory.search")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
RRF_K = 60  # reciprocal-rank constant of Cormack et al. (2009); not tuned here
POOL = 100  # hits of each ranking that hybrid fuses
REAL_KINDS = ("local", "openai")  # embedders whose vectors may rank a Statewave search (§6.5)

_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """§6.5 tokens of `text`, lower-cased, in order (repeats kept: their count is the term frequency)."""
    return [m.group().lower() for m in _TOKEN.finditer(text)]


def terms(q: str) -> list[str]:
    """The distinct tokens of a query, in first-seen order."""
    return list(dict.fromkeys(tokens(q)))


def query_terms(q: str, every: bool) -> list[str]:
    """The terms a text ranking matches: the distinct tokens of `q`; for an any-term ranking (a task in plain
    language, for hybrid and the query-driven context: the terms absent from a memory add 0 to its score)
    without the stop words (hash-v1's list), unless nothing else is left."""
    wanted = terms(q)
    if not every:
        wanted = [t for t in wanted if t not in STOPWORDS] or wanted
    return wanted


class TermMatches(NamedTuple):
    """What a store finds for some distinct query terms in one request's scope, column by column (numpy):
    BM25 and its order are computed over whole columns, never row by row in Python."""

    messages: int  # N: the scope's active memories
    length: int  # the tokens of all of them (avgdl = length / messages)
    df: list[int]  # per term: the scope's memories holding it
    seqs: np.ndarray  # int64, one per matching memory
    created: np.ndarray  # int64 created_at
    lengths: np.ndarray  # int64 length in tokens
    tfs: np.ndarray  # int64 (terms, rows): each term's count in each matching memory (0: absent)


def bm25_scores(matches: TermMatches) -> np.ndarray:
    """conversation_search.bm25 over columns: Σ idf · tf · (k1 + 1) / (tf + k1 · (1 − b + b · length / avgdl)),
    with the same float operations in the same order (an absent term adds exactly 0.0), so each score is the
    float the scalar formula gives."""
    n, avgdl = matches.messages, matches.length / matches.messages
    norm = K1 * (1 - B + B * matches.lengths / avgdl)
    score = np.zeros(len(matches.seqs))
    for df, tf in zip(matches.df, matches.tfs):
        w = math.log(1 + (n - df + 0.5) / (df + 0.5))
        score += w * tf * (K1 + 1) / (tf + norm)
    return score


def ranked(matches: TermMatches | None) -> list[tuple[int, float]]:
    """(seq, score) best first from a store's lexical matches; ties by created_at desc, seq asc (§6.12)."""
    if matches is None or not len(matches.seqs):
        return []
    score = bm25_scores(matches)
    # lexsort: the last key is the primary one (score desc, then created_at desc, then seq asc)
    order = np.lexsort((matches.seqs, -matches.created, -score))
    return list(zip(matches.seqs[order].tolist(), score[order].tolist()))


def cosine_ranked(query: np.ndarray, seqs: list[int], created: list[int], matrix: np.ndarray) -> list[tuple[int, float]]:
    """(seq, cosine distance) ascending, ties by created_at desc then seq asc. Rows and query are unit vectors
    (or zero: distance 1)."""
    if not seqs:
        return []
    distances = 1.0 - matrix.astype(np.float64) @ query.astype(np.float64)
    # lexsort: the last key is the primary one (distance asc, then created_at desc, then seq asc)
    order = np.lexsort((np.asarray(seqs, dtype=np.int64), -np.asarray(created, dtype=np.int64), distances))
    return list(zip([seqs[i] for i in order.tolist()], distances[order].tolist()))


def fused(*rankings: list[int], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: score(d) = Σ 1 / (k + rank), rank from 1 in each ranking holding d. Ties keep the
    order of first appearance (the first ranking's order, then the next's)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, seq in enumerate(ranking, 1):
            scores[seq] = scores.get(seq, 0.0) + 1.0 / (k + rank)
    first = {seq: i for i, seq in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], first[item[0]]))


def check_limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidArgument("Input should be a valid integer", loc=["query", "limit"], type="int_parsing")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be an integer from 1 to {MAX_LIMIT}", loc=["query", "limit"],
                              type="greater_than_equal" if limit < 1 else "less_than_equal")
    return limit


class MemorySearch:
    """Search over a store's memories; `embedder` (support/embeddings.py) or None for text search only."""

    def __init__(self, store: "Store", embedder: "Embedder | None" = None):
        self._store = store
        self.embedder = embedder

    @property
    def real_provider(self) -> bool:
        return self.embedder is not None and self.embedder.kind in REAL_KINDS

    async def search(self, tenant: str, tenant_id: str | None, subject_id: str, q: str | None = None,
                     kind: str | None = None, semantic: bool = False, limit: int = DEFAULT_LIMIT) -> list[MemoryRecord]:
        """§5.7: active memories; newest first without `q`, else §6.5 (semantic only with a real provider)."""
        tenant_id = check_tenant_id(tenant_id)
        subject_id = check_subject_id(subject_id, ["query", "subject_id"])
        limit = check_limit(limit)
        if kind is not None and not isinstance(kind, str):
            raise InvalidArgument("kind must be a string", loc=["query", "kind"])
        index = self._store.memory_index
        if not q:
            return await index.newest(tenant, tenant_id, subject_id, [kind] if kind else None, limit)
        if not isinstance(q, str):
            raise InvalidArgument("q must be a string", loc=["query", "q"])
        if semantic and self.real_provider:
            found = await self.vector_ranking(tenant, tenant_id, subject_id, q, kind)
            if found is not None:
                return await self.records(tenant, [seq for seq, _ in found[:limit]])
        return await self.records(tenant, [seq for seq, _ in (await self.text_ranking(
            tenant, tenant_id, subject_id, q, kind))[:limit]])

    async def records(self, tenant: str, seqs: list[int]) -> list[MemoryRecord]:
        """The memories of `seqs` still active, in that order."""
        found = await self._store.memory_index.by_seq(tenant, seqs)
        return [found[s] for s in seqs if s in found]

    async def text_ranking(self, tenant: str, tenant_id: str | None, subject_id: str, q: str,
                           kind: str | None = None, every: bool = True, top: int | None = None) -> list[tuple[int, float]]:
        """Every match of `q` as (seq, BM25 score), best first; [] when `q` has no token. `every` (§6.5, the
        Statewave search) matches memories holding all the terms; otherwise any of them (`query_terms`). `top`:
        only the best `top`."""
        wanted = query_terms(q, every)
        if not wanted:
            return []
        found = ranked(await self._store.memory_index.lexical(tenant, tenant_id, subject_id, kind, wanted, every))
        return found if top is None else found[:top]

    async def vector_ranking(self, tenant: str, tenant_id: str | None, subject_id: str, q: str,
                             kind: str | None = None) -> list[tuple[int, float]] | None:
        """Every active memory with a vector of the embedder as (seq, cosine distance) ascending; None without
        an embedder or when it fails (the caller falls back to text)."""
        if self.embedder is None:
            return None
        from ...support.embeddings import EmbeddingUnavailable

        try:
            query = (await self.embedder.embed([q]))[0]
        except EmbeddingUnavailable:
            return None  # logged once by the embedder
        width = query.shape[0] * 4  # float32 bytes: a vector of another dimension (the setting changed) is skipped
        found = [r for r in await self._store.memory_index.vectors(tenant, tenant_id, subject_id, kind,
                                                                   self.embedder.id) if len(r[2]) == width]
        matrix = np.frombuffer(b"".join(r[2] for r in found), dtype=np.float32).reshape(len(found), query.shape[0])
        return cosine_ranked(query, [r[0] for r in found], [r[1] for r in found], matrix)

    async def hybrid_ranking(self, tenant: str, tenant_id: str | None, subject_id: str, q: str,
                             kind: str | None = None, first: int = 0, pool: int = POOL,
                             recent: tuple[list[str], int] | None = None
                             ) -> tuple[list[tuple[int, float]], dict[int, MemoryRecord], list[MemoryRecord]]:
        """The top `pool` of the any-term text ranking and of the vector ranking (any embedder, hash-v1
        included) fused by reciprocal rank: (seq, fused score) best first (text alone without an embedder),
        with the active records of its `first` seqs and the newest (kinds, limit) of `recent`, read in the same
        store call as the text matches."""
        vector = await self.vector_ranking(tenant, tenant_id, subject_id, q, kind)
        also = [[seq for seq, _ in vector[:pool]]] if vector else []

        def rank(matches: TermMatches | None) -> list[tuple[int, float]]:
            return fused([seq for seq, _ in ranked(matches)[:pool]], *also)

        return await self._store.memory_index.lexical_ranking(tenant, tenant_id, subject_id, kind,
                                                              query_terms(q, False), rank, first, recent)

    async def hybrid(self, tenant: str, tenant_id: str | None, subject_id: str, q: str, kind: str | None = None,
                     limit: int = DEFAULT_LIMIT) -> list[tuple[MemoryRecord, float]]:
        """Active memories ranked by hybrid_ranking, with their fused scores."""
        tenant_id = check_tenant_id(tenant_id)
        subject_id = check_subject_id(subject_id, ["query", "subject_id"])
        limit = check_limit(limit)
        found, records, _ = await self.hybrid_ranking(tenant, tenant_id, subject_id, q, kind, limit)
        return [(records[seq], score) for seq, score in found[:limit] if seq in records]

    async def embed_memories(self, tenant: str, memories: list[MemoryRecord]) -> int:
        """Store the embedder's vectors of the active ones among `memories` (after a compile or an import), in
        one mutation; the count stored. A provider failure stores nothing and fails nothing (Decision 4)."""
        from ...support.embeddings import EmbeddingUnavailable

        todo = [m for m in memories if m.status == "active"]
        if self.embedder is None or not todo:
            return 0
        try:
            vectors = await self.embedder.embed([m.content for m in todo])
        except EmbeddingUnavailable:
            return 0
        blobs = [np.asarray(v, dtype=np.float32).tobytes() for v in vectors]
        embedder_id = self.embedder.id
        return await self._store.submit(tenant, lambda tx: tx.memory_index.put_vectors(
            embedder_id, [(m.id, b) for m, b in zip(todo, blobs)]))
