"""A process's in-memory view of one session's memories: what retrieval and tiering read on every turn.

The store holds the truth; a view is built from it once and then caught up from the rows whose `rev` is
newer than the view's (`SessionWrites.memories(after_rev=…)`, read inside the mutation, so it is exactly
what that transaction sees, whichever replica wrote it). A mutation works on a new view and installs it
only after its commit (`tx.after_commit`): a run that fails or is undone never reaches the cache.

Views of one session share append-only buffers (embeddings, texts, token statistics); the per-memory
figures that change (tier, access count, last access) are small arrays copied per view. A slot a failed
run wrote beyond the committed count is overwritten by the next one; its postings are then rebuilt.
"""

from __future__ import annotations

import collections
import re
import threading
import unicodedata

import numpy as np

from .model import ARCHIVE, TIER_INDEX, MemoryRow

_TOKEN = re.compile(r"[^\W_]+")
CACHED_SESSIONS = 256  # views kept per process (least recently used go first)


def bm25_tokens(text: str) -> list[str]:
    """§6.5: tokens as §6.1, without stopword removal or trigrams."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


class _Postings:
    __slots__ = ("idx", "tf", "count")

    def __init__(self) -> None:
        self.idx = np.empty(4, dtype=np.int64)
        self.tf = np.empty(4, dtype=np.float64)
        self.count = 0

    def add(self, i: int, tf: int) -> None:
        if self.count == len(self.idx):
            self.idx = np.resize(self.idx, 2 * len(self.idx))
            self.tf = np.resize(self.tf, 2 * len(self.tf))
        self.idx[self.count] = i
        self.tf[self.count] = tf
        self.count += 1


class Buffers:
    """The append-only part shared by every view of one session epoch."""

    def __init__(self, dimension: int):
        self.dimension = dimension
        self.emb = np.zeros((16, dimension), dtype=np.float32)
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.lower: list[str] = []  # for keyword triggers
        self.terms: list[collections.Counter] = []
        self.dl = np.zeros(16, dtype=np.float64)
        self.ts = np.zeros(16, dtype=np.float64)
        self.postings: dict[str, _Postings] = {}
        self.pos: dict[str, int] = {}
        self.written = 0  # slots written (the committed count or more)

    def put(self, p: int, row: MemoryRow) -> None:
        if p < self.written:
            if self.ids[p] == row.id:
                return  # the same memory (immutable text and embedding) written by an earlier run
            self._truncate(p)
        if p >= len(self.emb):
            grow = max(2 * len(self.emb), p + 1)
            self.emb = np.resize(self.emb, (grow, self.dimension))
            self.dl = np.resize(self.dl, grow)
            self.ts = np.resize(self.ts, grow)
        self.emb[p] = np.frombuffer(row.embedding, dtype="<f4")
        terms = collections.Counter(bm25_tokens(row.text))
        self.ids.append(row.id)
        self.texts.append(row.text)
        self.lower.append(row.text.lower())
        self.terms.append(terms)
        self.dl[p] = sum(terms.values())
        self.ts[p] = row.ts
        self.pos[row.id] = p
        for t, c in terms.items():
            self.postings.setdefault(t, _Postings()).add(p, c)
        self.written = p + 1

    def _truncate(self, p: int) -> None:
        for i in self.ids[p:]:
            self.pos.pop(i, None)
        del self.ids[p:], self.texts[p:], self.lower[p:], self.terms[p:]
        self.written = p
        self.postings = {}
        for i, terms in enumerate(self.terms):
            for t, c in terms.items():
                self.postings.setdefault(t, _Postings()).add(i, c)


class View:
    """Memories [0, n) of one session at memory revision `rev`."""

    __slots__ = ("epoch", "rev", "n", "buf", "tier", "importance", "access", "created", "last", "source", "token")

    def __init__(self, epoch: str, buf: Buffers):
        self.epoch, self.rev, self.n, self.buf = epoch, 0, 0, buf
        self.token = ""
        self.tier = np.zeros(0, dtype=np.int8)
        self.importance = np.zeros(0)
        self.access = np.zeros(0, dtype=np.int64)
        self.created = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)
        self.source: list[str] = []

    def copy(self) -> "View":
        v = View(self.epoch, self.buf)
        v.rev, v.n, v.token = self.rev, self.n, self.token
        v.tier, v.importance, v.access = self.tier.copy(), self.importance.copy(), self.access.copy()
        v.created, v.last, v.source = self.created.copy(), self.last.copy(), self.source[:]
        return v

    def index_of(self, memory_id: str) -> int | None:
        i = self.buf.pos.get(memory_id)
        return i if i is not None and i < self.n and self.buf.ids[i] == memory_id else None

    def apply(self, rows: list[MemoryRow]) -> None:
        """Take rows (new ones in seq order, or changed ones) into this view (in place: a fresh copy)."""
        new = [r for r in rows if self.index_of(r.id) is None]
        if new:
            k = len(new)
            self.tier = np.concatenate([self.tier, np.zeros(k, dtype=np.int8)])
            self.importance = np.concatenate([self.importance, np.zeros(k)])
            self.access = np.concatenate([self.access, np.zeros(k, dtype=np.int64)])
            self.created = np.concatenate([self.created, np.zeros(k, dtype=np.int64)])
            self.last = np.concatenate([self.last, np.zeros(k, dtype=np.int64)])
            for r in new:
                self.buf.put(self.n, r)
                self.source.append(r.source)
                self.n += 1
        for r in rows:
            i = self.index_of(r.id)
            self.tier[i] = TIER_INDEX[r.tier]
            self.importance[i] = r.importance
            self.access[i] = r.access_count
            self.created[i] = r.created_turn
            self.last[i] = r.last_access_turn
            self.rev = max(self.rev, r.rev)

    def retrievable(self) -> np.ndarray:
        return np.flatnonzero(self.tier != ARCHIVE)

    def embeddings(self) -> np.ndarray:
        return self.buf.emb[:self.n]

    def dots(self, v: np.ndarray) -> np.ndarray:
        """e_m · v for every memory [0, n) (one matvec over the contiguous prefix: no gather), as float64."""
        return (self.buf.emb[:self.n] @ np.asarray(v, dtype=np.float32)).astype(np.float64)


class ViewCache:
    """Per-process views, by (tenant, session id): the committed ones (installs only move forward), and the
    latest one a mutation saved, not yet known to be committed (`speculate`)."""

    def __init__(self, capacity: int = CACHED_SESSIONS):
        self._views: collections.OrderedDict[tuple[str, str], View] = collections.OrderedDict()
        self._latest: dict[tuple[str, str], View] = {}
        self._lock = threading.Lock()
        self.capacity = capacity

    def get(self, tenant: str, session_id: str) -> View | None:
        with self._lock:
            v = self._views.get((tenant, session_id))
            if v is not None:
                self._views.move_to_end((tenant, session_id))
            return v

    def install(self, tenant: str, session_id: str, view: View) -> None:
        with self._lock:
            old = self._views.get((tenant, session_id))
            if old is not None and old.epoch == view.epoch and old.rev > view.rev:
                return
            self._views[(tenant, session_id)] = view
            self._views.move_to_end((tenant, session_id))
            while len(self._views) > self.capacity:
                self._views.popitem(last=False)

    def drop(self, tenant: str, session_id: str) -> None:
        with self._lock:
            self._views.pop((tenant, session_id), None)
            self._latest.pop((tenant, session_id), None)

    def speculate(self, tenant: str, session_id: str, view: View) -> None:
        """The view a mutation just saved (its token written in the same transaction): the next mutation of the
        session, in the same commit group, starts from it when the state row still names that token."""
        with self._lock:
            self._latest[(tenant, session_id)] = view
            if len(self._latest) > self.capacity:
                self._latest.pop(next(iter(self._latest)))

    def latest(self, tenant: str, session_id: str) -> View | None:
        with self._lock:
            return self._latest.get((tenant, session_id))


def current(cache: ViewCache, tx, session_id: str, epoch: str, rev: int, dimension: int, token: str = "") -> View:
    """A fresh view of the session as `tx` sees it (memory epoch `epoch`, revision `rev`, view token `token`).

    The latest saved view is exact when the row still carries its token (written by the same save, so a run
    that was undone left a token no row holds); else the committed view is caught up from the store."""
    latest = cache.latest(tx.tenant, session_id)
    if latest is not None and token and latest.token == token and latest.epoch == epoch and latest.rev == rev:
        return latest.copy()
    cached = cache.get(tx.tenant, session_id)
    if cached is None or cached.epoch != epoch or cached.rev > rev:
        view = View(epoch, Buffers(dimension))
        if rev > 0:
            view.apply(tx.sessions.memories(session_id, -1))
        return view
    view = cached.copy()
    if cached.rev < rev:
        view.apply(tx.sessions.memories(session_id, cached.rev))
    return view
