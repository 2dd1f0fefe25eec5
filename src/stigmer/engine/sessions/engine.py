"""The sessions engine: lifecycle, turns (/v1/run, /v1/store) and session control (semvec §5.1–5.15).

Every change runs as one mutation of the tenant (`store.submit`): the tenant's serialisation orders the
requests of one session in one process and across replicas, and the mutation's writes commit together.
Texts are embedded before the mutation; a turn whose chunk depends on the pending message re-embeds when
another request changed that message first (hash-v1 embeds inside the mutation: no I/O).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ...clock import Clock
from ...support.embeddings import Embedder, HashEmbedder
from ..errors import Conflict, InvalidArgument, NotFound
from . import maths, overview, retrieval
from .index import ViewCache
from .maths import Drift, Params
from .model import ARCHIVE, GATE_LEVELS, SessionState, default_gate, vector_of
from .work import Work, current_phase, memory_hash, new_row, state_of

if TYPE_CHECKING:
    from ...store.base import Store, WriteTxn

SESSION_NOT_FOUND = "Session not found"
MAX_ANCHORS = MAX_TRIGGERS = 256
BACKING_KINDS = ("cluster", "region", "observer")

DriftHook = Callable[["WriteTxn", str, Drift], None]  # (tx, session id, the turn's signals), in the mutation
DeleteHook = Callable[["WriteTxn", str], None]  # (tx, session id), in the deleting mutation


class Unprocessable(InvalidArgument):
    """A semantic 422 with the spec's string detail."""

    code = "unprocessable"


def storable(*texts: str | None) -> None:
    """Refuse U+0000 on every store alike: a PostgreSQL text or jsonb value cannot hold it."""
    if any(t is not None and "\x00" in t for t in texts):
        raise Unprocessable("text must not contain U+0000")


class _Stale(Exception):
    """The pending message changed between embedding and the mutation."""


class Sessions:
    """See the package docstring for the API."""

    def __init__(self, store: "Store", embedder: Embedder, clock: Clock, params: Params | None = None):
        self.store, self.embedder, self.clock = store, embedder, clock
        self.params = params or Params()
        self.dimension = embedder.dimension
        self.cache = ViewCache()
        self.drift_hooks: list[DriftHook] = []
        self.delete_hooks: list[DeleteHook] = []
        self._inline = isinstance(embedder, HashEmbedder)

    # --- vectors

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit rows (zero rows for texts with nothing to embed); EmbeddingUnavailable passes through."""
        if not texts:
            return np.zeros((0, self.dimension))
        return np.asarray(await self.embedder.embed(list(texts)), dtype=np.float64)

    def vector(self, values: Sequence[float]) -> np.ndarray:
        """A client vector, normalised; 422 for a wrong length or a zero norm (§3)."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or len(v) != self.dimension:
            raise Unprocessable(f"embedding dimension {len(values)} does not match the server dimension {self.dimension}")
        peak = float(np.abs(v).max()) if len(v) else 0.0
        if not np.isfinite(peak) or peak == 0.0:
            raise Unprocessable("embedding must have a non-zero norm")
        scaled = v / peak  # so that a norm of huge values does not overflow
        if peak * maths.norm(scaled) < maths.ZERO:
            raise Unprocessable("embedding must have a non-zero norm")
        return scaled / maths.norm(scaled)

    async def text_vector(self, text: str) -> np.ndarray:
        v = (await self.embed([text]))[0]
        if maths.is_zero(v):
            raise Unprocessable("text produced a degenerate (zero-norm) embedding")
        return v

    async def vectors(self, embeddings: Sequence[Sequence[float]] | None, texts: Sequence[str] | None) -> list[np.ndarray]:
        """Client vectors, then embedded texts (each non-zero)."""
        out = [self.vector(e) for e in embeddings or []]
        for t in texts or []:
            out.append(await self.text_vector(t))
        return out

    # --- sessions inside a mutation (for the coordination layers too)

    def open(self, tx: "WriteTxn", session_id: str) -> Work | None:
        row = tx.sessions.get(session_id)
        return None if row is None else Work(tx, row, self.cache, self.params, self.dimension)

    def must_open(self, tx: "WriteTxn", session_id: str, missing: str = SESSION_NOT_FOUND) -> Work:
        work = self.open(tx, session_id)
        if work is None:
            raise NotFound(missing)
        return work

    def create_in(self, tx: "WriteTxn", session_id: str, kind: str = "session", config: dict | None = None,
                  template: np.ndarray | None = None) -> Work:
        """Insert a new session row (the caller checked it is absent) and open it."""
        state = SessionState()
        if config:
            state.config.update(config)
        tx.sessions.insert(new_row(tx.tenant, session_id, kind, state, template, tx.now))
        return self.must_open(tx, session_id)

    def reset_in(self, work: Work) -> None:
        """§6.11: back to the template (or zero); id, tenant, config and memberships stay."""
        config = work.state.config
        work.replace_memories()
        work.tx.sessions.clear_entities(work.session_id)
        fresh = SessionState(config=config, mem_epoch=work.state.mem_epoch, extra=work.state.extra)
        work.state = fresh
        template = config.get("template_embedding")
        work.s = np.asarray(template, dtype=np.float64) if template else np.zeros(self.dimension)
        work.entities_changed = True

    def delete_in(self, tx: "WriteTxn", session_id: str, backing_ok: bool = False) -> None:
        row = tx.sessions.get(session_id)
        if row is None:
            raise NotFound(SESSION_NOT_FOUND)
        if row.kind in BACKING_KINDS and not backing_ok:
            raise Conflict("session backs a cluster, region or observer; delete that resource instead")
        for hook in self.delete_hooks:
            hook(tx, session_id)
        tx.sessions.delete(session_id)
        tenant, cache = tx.tenant, self.cache
        tx.after_commit(lambda: cache.drop(tenant, session_id))

    # --- lifecycle

    async def count(self) -> int:
        return await self.store.sessions.count()

    async def create(self, tenant: str, session_id: str | None, kind: str = "session", config: dict | None = None,
                     template: np.ndarray | None = None) -> tuple[str, bool]:
        """(id, created): an existing id is left as it is (Decision D9)."""
        storable(session_id)
        sid = session_id or str(uuid.uuid4())

        def mutation(tx: "WriteTxn") -> tuple[str, bool]:
            if tx.sessions.get(sid) is not None:
                return sid, False
            self.create_in(tx, sid, kind, config, template)
            return sid, True

        return await self.store.submit(tenant, mutation)

    async def delete(self, tenant: str, session_id: str) -> None:
        await self.store.submit(tenant, lambda tx: self.delete_in(tx, session_id))

    async def get_state(self, tenant: str, session_id: str) -> tuple[SessionState, np.ndarray]:
        row = await self.store.sessions.get(tenant, session_id)
        if row is None:
            raise NotFound(SESSION_NOT_FOUND)
        return state_of(row), vector_of(row.vector, self.dimension)

    async def metrics(self, tenant: str, session_id: str) -> dict[str, Any]:
        st, _ = await self.get_state(tenant, session_id)
        return {"session_id": session_id, "phase": current_phase(st), "interaction_count": st.n,
                "total_memories": st.live_memories, "beta_history": st.beta_history,
                "similarity_history": st.similarity_history, "fsm_history": st.fsm_history,
                "norm_history": st.norm_history, "phase_history": st.phase_history}

    async def page(self, tenant: str, kind: str = "session", limit: int = 50,
                   before: tuple[float, str] | None = None) -> tuple[list[overview.Summary], tuple[float, str] | None]:
        """A page of the tenant's sessions of `kind`, newest first, and where the next starts (overview.py)."""
        return await overview.page(self.store, tenant, kind, limit, before)

    async def detail(self, tenant: str, session_id: str) -> overview.Detail:
        """The session's summary and its drift over the stored turns (overview.py)."""
        found = await overview.detail(self.store, tenant, session_id)
        if found is None:
            raise NotFound(SESSION_NOT_FOUND)
        return found

    # --- turns

    def boosts(self, work: Work) -> retrieval.Boosts:
        st = work.state
        anchors = np.asarray(st.anchors, dtype=np.float64).reshape(-1, self.dimension)
        promote, demote = [], []
        for p in st.config.get("policy_vectors") or []:
            (promote if p.get("promote", True) else demote).append((np.asarray(p["embedding"]), float(p["weight"])))
        keywords = [t["keyword"].lower() for t in st.triggers if t.get("keyword")]
        tvecs = [(np.asarray(t["embedding"]), float(t["threshold"])) for t in st.triggers if t.get("embedding")]
        return retrieval.Boosts(anchors, promote, demote, keywords, tvecs)

    def _chunk(self, work: Work, response: str, embedded: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
        pending = work.state.pending
        text = f"Q: {pending} A: {response}" if pending else response
        if text not in embedded:
            if not self._inline:
                raise _Stale()
            embedded[text] = self.embedder.vectors([text])[0]
        return text, embedded[text]

    async def _with_chunk(self, tenant: str, session_id: str | None, response: str, extra: list[str],
                          mutation: Callable[["WriteTxn", dict[str, np.ndarray]], Any], reset: bool = False) -> Any:
        """Embed what the mutation needs (the chunk from the pending message read now), run it; again if stale."""
        for _ in range(20):
            texts = list(extra)
            if response and not self._inline:
                pending = None  # a new or reset session has no pending question
                if session_id and not reset:
                    row = await self.store.sessions.get(tenant, session_id)
                    pending = state_of(row).pending if row else None
                texts.append(f"Q: {pending} A: {response}" if pending else response)
            vectors = await self.embed(texts)
            embedded = dict(zip(texts, vectors))
            try:
                return await self.store.submit(tenant, lambda tx: mutation(tx, embedded))
            except _Stale:
                continue
        raise Conflict("the session changed too often to store this turn; retry")

    def _store_response(self, work: Work, response: str, embedded: dict[str, np.ndarray], user_id: str | None,
                        dedup_threshold: float | None) -> dict[str, Any] | None:
        """Step 2 of /v1/run: the dedup signal, or None when the chunk embedded to zero (pending restored)."""
        text, x = self._chunk(work, response, embedded)
        if maths.is_zero(x):
            return None
        work.state.pending = None
        report = work.store_chunk(text, x, {"user_id": user_id} if user_id else None, dedup_threshold)
        return report["dedup_signal"]

    async def run(self, tenant: str, message: str, session_id: str | None = None, response: str | None = None,
                  short_circuit_threshold: float = 0.85, reset_context: bool = False,
                  user_id: str | None = None) -> dict[str, Any]:
        """§5.2: one turn; the /v1/run response body."""
        storable(message, response, session_id, user_id)
        sid = session_id or str(uuid.uuid4())

        def mutation(tx: "WriteTxn", embedded: dict[str, np.ndarray]) -> dict[str, Any]:
            work = self.open(tx, sid)
            if work is None:
                if session_id and not reset_context:
                    raise NotFound(SESSION_NOT_FOUND)
                work = self.create_in(tx, sid)
            elif reset_context:
                self.reset_in(work)
            signal = self._store_response(work, response, embedded, user_id, None) if response else None
            q = embedded[message]
            view = work.view()
            have = work.state.live_memories > 0 or len(view.retrievable()) > 0
            picked: list[int] = []
            top = 0.0
            retrieval_error = False
            if have and not maths.is_zero(q):
                try:
                    picked, top = retrieval.hybrid(view, q, message, self.boosts(work), self.params.top_k, self.params)
                except Exception:  # the turn still succeeds with an empty context (§5.2)
                    picked, top, retrieval_error = [], 0.0, True
                work.touch(picked)
            drift = maths.signals(q, work.s, top, have, short_circuit_threshold, self.params)
            work.state.pending = message
            items = [(float(view.importance[i]), view.buf.texts[i]) for i in picked]
            context = retrieval.context_block(work.state.n, items, self.params.context_chars)
            work.save()
            if drift.drift_detected:  # after save: a hook may change this session too (a realignment)
                for hook in self.drift_hooks:
                    hook(tx, sid, drift)
            return {"session_id": sid, "context": context, "top_similarity": drift.top_similarity,
                    "short_circuit": drift.short_circuit, "drift_score": drift.drift_score,
                    "drift_detected": drift.drift_detected, "drift_phase": drift.drift_phase,
                    "dedup_signal": signal, "retrieval_error": retrieval_error}

        return await self._with_chunk(tenant, session_id, response or "", [message], mutation, reset_context)

    async def store_turn(self, tenant: str, session_id: str, response: str, user_id: str | None = None,
                         dedup_threshold: float | None = None) -> dict[str, Any]:
        """§5.3: store an answer, paired with the pending question; the dedup signal."""
        storable(response, user_id)
        def mutation(tx: "WriteTxn", embedded: dict[str, np.ndarray]) -> dict[str, Any]:
            work = self.must_open(tx, session_id)
            signal = self._store_response(work, response, embedded, user_id, dedup_threshold)
            if signal is None:
                raise Unprocessable("response produced a degenerate (zero-norm) embedding; nothing was stored")
            work.save()
            return signal

        return await self._with_chunk(tenant, session_id, response, [], mutation)

    async def store_text(self, tenant: str, session_id: str, text: str, x: np.ndarray | None = None,
                         dedup_threshold: float | None = None, missing: str = SESSION_NOT_FOUND) -> dict[str, Any]:
        """One turn of a fixed chunk (cluster store): the update report; the pending message is untouched."""
        storable(text)
        if x is None:
            x = (await self.embed([text]))[0]
        if maths.is_zero(x):
            raise Unprocessable("response produced a degenerate (zero-norm) embedding; nothing was stored")

        def mutation(tx: "WriteTxn") -> dict[str, Any]:
            work = self.must_open(tx, session_id, missing)
            report = work.store_chunk(text, x, None, dedup_threshold)
            work.save()
            return report

        return await self.store.submit(tenant, mutation)

    # --- session control (§5.7–5.15)

    async def context(self, tenant: str, session_id: str, top_k: int = 5, full_first: bool = False,
                      max_text_chars: int = 500) -> list[dict[str, Any]]:
        """§5.7: the memories most relevant to the session vector."""
        def mutation(tx: "WriteTxn") -> list[dict[str, Any]]:
            work = self.must_open(tx, session_id)
            view = work.view()
            if len(view.retrievable()) == 0:
                return []
            if maths.is_zero(work.s):
                ranked = [(i, 0.0) for i in retrieval.by_importance(view, top_k)]
            else:
                ranked = [(i, round(min(1.0, max(0.0, d)), 4))
                          for i, d in retrieval.state_query(view, work.s, self.boosts(work), top_k, self.params)]
            work.touch([i for i, _ in ranked])
            work.save()
            out = []
            for k, (i, relevance) in enumerate(ranked):
                text = view.buf.texts[i]
                whole = full_first and k == 0
                cut = text if whole else text[:max_text_chars]
                out.append({"text": cut, "relevance": relevance, "memory_hash": memory_hash(text),
                            "truncated": len(cut) < len(text)})
            return out

        return await self.store.submit(tenant, mutation)

    async def memory(self, tenant: str, session_id: str, memory_hash: str) -> dict[str, Any]:
        """§5.8: one memory in full (newest retrievable with that hash, else newest archived)."""
        if await self.store.sessions.get(tenant, session_id) is None:
            raise NotFound(SESSION_NOT_FOUND)
        rows = await self.store.sessions.by_hash(tenant, session_id, memory_hash)
        live = [r for r in rows if r.tier != "archive"]
        if not rows:
            raise NotFound("Memory not found")
        m = (live or rows)[0]
        return {"session_id": session_id, "memory_hash": m.hash, "text": m.text, "truncated": False,
                "importance": m.importance, "access_count": m.access_count, "timestamp": m.ts}

    async def _change(self, tenant: str, session_id: str, change: Callable[[Work], Any]) -> Any:
        def mutation(tx: "WriteTxn") -> Any:
            work = self.must_open(tx, session_id)
            out = change(work)
            work.save()
            return out

        return await self.store.submit(tenant, mutation)

    async def add_trigger(self, tenant: str, session_id: str, keyword: str | None, embedding: np.ndarray | None,
                          threshold: float) -> int:
        storable(keyword)

        def change(work: Work) -> int:
            if len(work.state.triggers) >= MAX_TRIGGERS:
                raise Unprocessable(f"trigger limit reached ({MAX_TRIGGERS})")
            work.state.triggers.append({"keyword": keyword, "embedding": None if embedding is None else embedding.tolist(),
                                        "threshold": threshold})
            return len(work.state.triggers)

        return await self._change(tenant, session_id, change)

    async def clear_triggers(self, tenant: str, session_id: str) -> None:
        await self._change(tenant, session_id, lambda work: work.state.triggers.clear())

    async def add_anchor(self, tenant: str, session_id: str, anchor: np.ndarray) -> int:
        def change(work: Work) -> int:
            if len(work.state.anchors) >= MAX_ANCHORS:
                raise Unprocessable(f"anchor limit reached ({MAX_ANCHORS})")
            work.state.anchors.append(anchor.tolist())
            return len(work.state.anchors)

        return await self._change(tenant, session_id, change)

    async def anchor_score(self, tenant: str, session_id: str) -> dict[str, Any]:
        st, s = await self.get_state(tenant, session_id)
        anchors = np.asarray(st.anchors, dtype=np.float64).reshape(-1, self.dimension)
        return {"session_id": session_id, "anchor_score": maths.anchor_score(s, anchors), "anchor_count": len(anchors),
                "drift_threshold": self.params.anchor_threshold, "realignment_remaining": st.realignment_remaining}

    async def set_isolation(self, tenant: str, session_id: str, level: str, exclusion: list[np.ndarray],
                            allowlist: list[np.ndarray], similarity_threshold: float) -> None:
        if level not in GATE_LEVELS:
            raise Unprocessable(f"unknown isolation level {level!r}")

        def change(work: Work) -> None:
            queue = work.state.isolation.get("quarantine", [])
            work.state.isolation = default_gate() | {
                "level": level, "exclusion_embeddings": [v.tolist() for v in exclusion],
                "allowlist_embeddings": [v.tolist() for v in allowlist],
                "similarity_threshold": similarity_threshold, "quarantine": queue}

        await self._change(tenant, session_id, change)

    async def release(self, tenant: str, session_id: str) -> int:
        """§5.14: the quarantined chunks become turns, in arrival order, bypassing the gate (Decision D17)."""
        def change(work: Work) -> int:
            queue = work.state.isolation["quarantine"]
            work.state.isolation["quarantine"] = []
            for held in queue:
                work.store_chunk(held["text"], np.asarray(held["embedding"]), through_gate=False)
            return len(queue)

        return await self._change(tenant, session_id, change)

    async def inject(self, tenant: str, session_id: str, text: str, embedding: np.ndarray | None, tier: str,
                     importance: float, access_count: int) -> int:
        """§5.15: one memory straight into a tier (no turn, no gate); the retrievable count after it."""
        storable(text)
        source = "client"
        if embedding is None:
            embedding, source = await self.text_vector(text), "server"

        def change(work: Work) -> int:
            work.add_memory(text, embedding, source, tier, importance, access_count)
            work.cascade()
            view = work.view()
            return int(np.count_nonzero(view.tier[:view.n] != ARCHIVE))

        return await self._change(tenant, session_id, change)
