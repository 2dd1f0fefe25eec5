"""What the coordination layers need of the session engine, inside one tenant's mutation.

Every coordination operation is one mutation: it reads the sessions it blends from the same snapshot it writes
back to, so an aggregate never mixes two states of a member, and a realignment or a feedback is all or
nothing (§6.10). `SessionPort` is the session engine seen from here (engine/sessions/); `adapter.py` binds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class SessionFacts:
    """What a cluster, region or observer reports of a session (§5.24, §6.9)."""

    vector: np.ndarray  # s: unit or zero
    interaction_count: int
    phase: str
    total_memories: int
    similarity_history: Sequence[float]
    handle: Any = None  # what the port read them from; `set_vector` may reuse it in the same mutation


class SessionPort(Protocol):
    def exists(self, tx, session_id: str) -> bool: ...

    def create(self, tx, session_id: str, kind: str) -> None:
        """A new session with the default configuration under this id (it does not exist); `kind` is what it
        backs ("cluster", "region", "observer", "partition"), which the session engine guards."""

    def delete(self, tx, session_id: str) -> None:
        """Delete the session and everything it holds (it exists)."""

    def facts(self, tx, session_id: str) -> SessionFacts | None: ...

    def members(self, tx, cluster_id: str) -> dict[str, SessionFacts]:
        """Facts of the cluster's members whose session exists, in membership order."""

    def set_vector(self, tx, session_id: str, s: np.ndarray, read: SessionFacts | None = None) -> None:
        """Replace s only: n, histories and memories stay (feedback, realignment, transfer). `read`: the facts
        this mutation read of the session, unchanged since (it spares a read)."""

    def store_turn(self, tx, session_id: str, chunk: str, x: np.ndarray, dedup_threshold: float | None) -> dict:
        """One turn of `chunk` (embedded as x) through the write gate (§6.2); the update report of §5.28."""

    def note(self, tx, session_id: str, chunk: str, direction: np.ndarray | None) -> None:
        """A turn that bypasses the write gate (the regional realignment note, §6.9); `direction` is what the
        region realigned toward (None when nothing moved)."""
