"""One session opened inside a mutation: read once, changed in memory, written once (`save`).

Everything a turn changes (vector, counters, histories, memories, tiers, access counts) is written by one
`save` in the caller's transaction, so it is atomic; the memory view goes to the cache after commit.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from . import maths
from .index import View, ViewCache, current
from .maths import Params
from ..errors import InvalidArgument
from .model import ARCHIVE, QUARANTINE_CAP, TIERS, MemoryRow, SessionRow, SessionState, vector_blob, vector_of

if TYPE_CHECKING:
    from ...store.base import WriteTxn

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Malformed(InvalidArgument):
    """An import payload that is not a whole, untampered export (a 400 on the wire)."""

    code = "malformed"


def uuid7(now: float) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    ms = int(now * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def memory_hash(text: str) -> str:
    """Decision D11: the first 8 hex of SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def digest(text: str, embedding: bytes) -> str:
    """§6.13: SHA-256(text UTF-8 ‖ embedding as little-endian float64)."""
    e64 = np.frombuffer(embedding, dtype="<f4").astype("<f8").tobytes()
    return hashlib.sha256(text.encode() + e64).hexdigest()


def row_checksum(state_json: bytes, vector: bytes | None) -> str:
    """What `checksum_ok` compares (§6.13): SHA-256 of the session row as written."""
    return hashlib.sha256(state_json + (vector or b"")).hexdigest()


def state_of(row: SessionRow) -> SessionState:
    """The session's state as stored: its state row and its heads row."""
    return SessionState.of_json(_decode(row.state), _decode(row.heads))


def heads_checksum(heads_json: bytes) -> str:
    return hashlib.sha256(heads_json).hexdigest()


def current_phase(state: SessionState) -> str:
    return state.phase_history[-1] if state.n and state.phase_history else "initialization"


def dedup(view: View, x: np.ndarray, threshold: float) -> dict[str, Any]:
    """§6.4 dedup_signal of chunk x against the retrievable memories (before insertion)."""
    idx = view.retrievable()
    if len(idx) == 0:
        return {"is_update": False, "max_sim": 0.0, "matched_id": None}
    sims = view.dots(x)[idx]
    j = int(np.argmax(sims))
    best = float(sims[j])
    return {"is_update": best >= threshold, "max_sim": best, "matched_id": view.buf.ids[int(idx[j])]}


def gate(isolation: dict[str, Any], x: np.ndarray) -> str:
    """§6.7: "admit", "drop" or "queue" for chunk embedding x."""
    level = isolation["level"]
    if level == "OPEN":
        return "admit"
    if level == "LOCKDOWN":
        return "drop"
    tau = isolation["similarity_threshold"]

    def best(vectors: list[list[float]]) -> float:
        return float((np.asarray(vectors) @ x).max()) if vectors else -np.inf

    if best(isolation["allowlist_embeddings"]) >= tau:
        return "admit"
    if best(isolation["exclusion_embeddings"]) >= tau:
        return "queue" if level == "QUARANTINE" else "drop"
    return "admit"


def _lowest(r: np.ndarray, ts: np.ndarray, members: np.ndarray, ids: list[str], k: int) -> list[int]:
    """Positions of the k lowest retention scores (ties: older timestamp, then smaller id), without sorting all."""
    if k >= len(r):
        cut = np.arange(len(r))
    else:
        kth = np.partition(r, k - 1)[k - 1]
        cut = np.flatnonzero(r <= kth)
    return sorted(cut.tolist(), key=lambda j: (r[j], ts[j], ids[members[j]]))[:k]


class Work:
    """A session read in `tx`; change `state`, `s` and memories, then `save()`."""

    def __init__(self, tx: "WriteTxn", row: SessionRow, cache: ViewCache, params: Params, dimension: int):
        if not row.heads_checksum:  # read without its heads (a caller's own query): the whole row, as stored
            row = tx.sessions.get(row.session_id) or row
        self.tx, self.row, self.cache, self.params, self.dimension = tx, row, cache, params, dimension
        self.state = state_of(row)
        self.s = vector_of(row.vector, dimension)
        self._view: View | None = None
        self._new: dict[str, MemoryRow] = {}
        self._changed: set[int] = set()
        self.entities_changed = False

    @property
    def session_id(self) -> str:
        return self.row.session_id

    # --- memories

    def view(self) -> View:
        if self._view is None:
            st = self.state
            self._view = current(self.cache, self.tx, self.session_id, st.mem_epoch, st.mem_rev, self.dimension,
                                 st.view_token)
        return self._view

    def replace_memories(self) -> None:
        """Drop every memory (reset, import): a new epoch, an empty view."""
        self.tx.sessions.clear_memories(self.session_id)
        self.state.mem_epoch = os.urandom(8).hex()
        self.state.mem_rev = self.state.mem_seq = 0
        self._new.clear()
        self._changed.clear()
        from .index import Buffers
        self._view = View(self.state.mem_epoch, Buffers(self.dimension))

    def add_memory(self, text: str, x: np.ndarray, source: str, tier: str = "short_term", importance: float = 1.0,
                   access_count: int = 0, meta: dict | None = None, created_turn: int | None = None) -> MemoryRow:
        row = self.memory_row(text, np.asarray(x, dtype="<f4").tobytes(), source, tier, importance, access_count,
                              _encode(meta or {}).decode(), None, self.tx.now,
                              self.state.n if created_turn is None else created_turn, 0)
        self.add_rows([row])
        return row

    def memory_row(self, text: str, emb: bytes, source: str, tier: str, importance: float, access_count: int,
                   meta: str, memory_id: str | None, ts: float, created_turn: int, last_access_turn: int) -> MemoryRow:
        """A new memory row of this session (the next seq); `add_rows` takes it in."""
        st = self.state
        st.mem_seq += 1
        return MemoryRow(self.tx.tenant, self.session_id, memory_id or uuid7(self.tx.now), st.mem_seq, st.mem_rev + 1,
                         text, emb, source, tier, float(importance), int(access_count), ts, created_turn,
                         last_access_turn, memory_hash(text), meta, digest(text, emb))

    def add_rows(self, rows: list[MemoryRow]) -> None:
        self.view().apply(rows)
        for row in rows:
            self._new[row.id] = row

    def touch(self, positions: list[int]) -> None:
        """Retrieved memories: access_count += 1, last access at this turn."""
        v = self.view()
        for i in positions:
            v.access[i] += 1
            v.last[i] = self.state.n
            self._changed.add(i)

    def cascade(self) -> None:
        """§6.3: while a tier is over capacity, its lowest-retention memory moves one tier down."""
        v = self.view()
        for t, cap in enumerate(self.params.tiers):
            members = np.flatnonzero(v.tier == t)
            over = len(members) - cap
            if over <= 0:
                continue
            r = maths.retention(v.importance[members], self.state.n, v.created[members], v.last[members],
                                v.access[members])
            for j in _lowest(r, v.buf.ts[members], members, v.buf.ids, over):
                i = int(members[j])
                v.tier[i] = t + 1
                self._changed.add(i)

    # --- turns

    def store_chunk(self, text: str, x: np.ndarray, meta: dict | None = None, dedup_threshold: float | None = None,
                    through_gate: bool = True, source: str = "server") -> dict[str, Any]:
        """One stored chunk (§6.2, §6.7): the update report of /v1/cluster/{id}/store; `dedup_signal` inside."""
        st, params = self.state, self.params
        signal = dedup(self.view(), x, params.dedup_threshold if dedup_threshold is None else dedup_threshold)
        novelty = 1.0 - signal["max_sim"] if signal["matched_id"] is not None else 1.0
        decision = gate(st.isolation, x) if through_gate else "admit"
        if decision != "admit":
            if decision == "queue" and len(st.isolation["quarantine"]) < QUARANTINE_CAP:
                st.isolation["quarantine"].append({"text": text, "embedding": x.tolist(), "queued_at": self.tx.now})
            zero = maths.is_zero(self.s)
            return {"similarity": maths.cos(x, self.s), "beta": 0.0, "pattern_strength": 0.0,
                    "fsm": 0.0 if zero else 1.0, "phase": current_phase(st), "norm": maths.norm(self.s),
                    "topic_switch": 0.0, "novelty_score": novelty, "admitted": False, "dedup_signal": signal}
        anchors = np.asarray(st.anchors, dtype=np.float64).reshape(-1, self.dimension)
        t = maths.turn(self.s, x, anchors, st.realignment_remaining, st.config["enable_topic_switch"], params)
        self.s = t.s
        st.realignment_remaining = t.realignment_remaining
        st.n += 1
        self.add_memory(text, x, source, meta=meta, created_turn=st.n)
        ph = maths.phase(st.n, [*st.similarity_history, t.similarity])
        st.append_history(t.beta, t.similarity, t.fsm, t.pattern_strength, ph)
        self.cascade()
        return {"similarity": t.similarity, "beta": t.beta, "pattern_strength": t.pattern_strength, "fsm": t.fsm,
                "phase": ph, "norm": t.norm, "topic_switch": t.topic_switch, "novelty_score": novelty,
                "admitted": True, "dedup_signal": signal}

    # --- writing

    def save(self) -> None:
        st, tx = self.state, self.tx
        v = self._view
        if v is not None and (self._new or self._changed):
            rev = st.mem_rev + 1
            st.mem_rev = rev
            for row in self._new.values():
                i = v.index_of(row.id)
                row.tier, row.access_count, row.last_access_turn = TIERS[v.tier[i]], int(v.access[i]), int(v.last[i])
                row.rev = rev
            if self._new:
                tx.sessions.put_memories(list(self._new.values()))
            stats = [(v.buf.ids[i], TIERS[v.tier[i]], int(v.access[i]), int(v.last[i]), rev)
                     for i in sorted(self._changed) if v.buf.ids[i] not in self._new]
            if stats:
                tx.sessions.memory_stats(self.session_id, stats)
            v.rev = rev
        if v is not None:
            st.live_memories = int(np.count_nonzero(v.tier[:v.n] != ARCHIVE))
            st.view_token = v.token = os.urandom(8).hex()
            tenant, sid, cache = tx.tenant, self.session_id, self.cache
            cache.speculate(tenant, sid, v)
            tx.after_commit(lambda: cache.install(tenant, sid, v))
        state_json = _encode(st.to_json()).decode()
        blob = vector_blob(self.s)
        heads = _encode(st.heads())
        if state_json == self.row.state and blob == self.row.vector:  # only the heads moved (a plain /v1/run)
            tx.sessions.update(self.session_id, None, None, None, heads.decode(), heads_checksum(heads))
        else:
            tx.sessions.update(self.session_id, state_json, blob, row_checksum(state_json.encode(), blob),
                               heads.decode(), heads_checksum(heads))
            self.row.state, self.row.vector = state_json, blob
        self._new, self._changed = {}, set()


def new_row(tenant: str, session_id: str, kind: str, state: SessionState, s: np.ndarray | None, now: float) -> SessionRow:
    state.mem_epoch = state.mem_epoch or os.urandom(8).hex()
    state_json = _encode(state.to_json())
    heads = _encode(state.heads())
    blob = vector_blob(s)
    return SessionRow(tenant, session_id, kind, state_json.decode(), blob, row_checksum(state_json, blob), now,
                      heads.decode(), heads_checksum(heads))
