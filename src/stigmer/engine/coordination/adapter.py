"""The session engine (engine/sessions/) bound as the coordination layers' `SessionPort`, and the hooks the
coordination layers hang on it: a drifting /v1/run turn publishes drift events (§6.9), a deleted session
leaves every member set and loses its trust score (§5.5)."""

from __future__ import annotations

import weakref

import msgspec
import numpy as np

from ...support.embeddings import HashEmbedder
from ..sessions import Drift, SessionState, Sessions, Work
from ..sessions.model import vector_of
from ..sessions.work import current_phase
from . import regions
from .ports import SessionFacts

_decode = msgspec.json.Decoder().decode


class SessionsPort:
    """`SessionPort` over `Sessions`, inside the caller's mutation."""

    def __init__(self, engine: Sessions):
        self.engine = engine

    def exists(self, tx, session_id: str) -> bool:
        return tx.sessions.get(session_id) is not None

    def create(self, tx, session_id: str, kind: str) -> None:
        self.engine.create_in(tx, session_id, kind)

    def delete(self, tx, session_id: str) -> None:
        self.engine.delete_in(tx, session_id, backing_ok=True)

    def facts(self, tx, session_id: str) -> SessionFacts | None:
        row = tx.sessions.get(session_id)
        return None if row is None else self._facts(row)

    def _facts(self, row) -> SessionFacts:
        state = SessionState.of_json(_decode(row.state))
        return SessionFacts(vector_of(row.vector, self.engine.dimension), state.n, current_phase(state),
                            state.live_memories, state.similarity_history, row)

    def members(self, tx, cluster_id: str) -> dict[str, SessionFacts]:
        return {row.session_id: self._facts(row) for row in tx.coordination.member_sessions(cluster_id)}

    def set_vector(self, tx, session_id: str, s: np.ndarray, read: SessionFacts | None = None) -> None:
        e = self.engine
        work = Work(tx, read.handle, e.cache, e.params, e.dimension) if read is not None else e.must_open(tx, session_id)
        work.s = np.asarray(s, dtype=np.float64)
        work.save()

    def store_turn(self, tx, session_id: str, chunk: str, x: np.ndarray, dedup_threshold: float | None) -> dict:
        work = self.engine.must_open(tx, session_id)
        report = work.store_chunk(chunk, x, None, dedup_threshold)
        work.save()
        return report

    def note(self, tx, session_id: str, chunk: str, direction: np.ndarray | None) -> None:
        """A turn that bypasses the gate. Its text is embedded here when the embedder needs no I/O (hash-v1);
        another embedder cannot be awaited inside a transaction, so the note then carries the direction the
        region realigned toward, as a client-supplied vector (verify does not re-embed it)."""
        embedder = self.engine.embedder
        if isinstance(embedder, HashEmbedder):
            x, source = embedder.vectors([chunk])[0], "server"
        else:
            x, source = direction, "client"
        if x is None or not np.any(x):
            return
        work = self.engine.must_open(tx, session_id)
        work.store_chunk(chunk, np.asarray(x, dtype=np.float64) / float(np.linalg.norm(x)), through_gate=False,
                         source=source)
        work.save()


_bound: "weakref.WeakKeyDictionary[Sessions, SessionsPort]" = weakref.WeakKeyDictionary()


def hook(engine: Sessions) -> SessionsPort:
    """Bind the coordination layers to the session engine; the port they work through. Once per engine: a
    second binding would publish every drift event twice."""
    if engine in _bound:
        return _bound[engine]
    port = _bound[engine] = SessionsPort(engine)

    def on_drift(tx, session_id: str, drift: Drift) -> None:
        regions.publish_drift_in(tx, port, session_id, drift.drift_score, drift.drift_phase)

    def on_delete(tx, session_id: str) -> None:
        tx.coordination.forget_session(session_id)

    engine.drift_hooks.append(on_drift)
    engine.delete_hooks.append(on_delete)
    return port
