"""The rows a session is stored as, and the session state the engine works on (semvec spec §6.2–6.3)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

TIERS = ("short_term", "medium_term", "long_term", "archive")
TIER_INDEX = {t: i for i, t in enumerate(TIERS)}
ARCHIVE = 3
KINDS = ("session", "cluster", "region", "observer", "partition")  # all but "session" are backing/meta sessions
HISTORY_KEEP = 1000  # Decision D29
GATE_LEVELS = ("OPEN", "FILTER", "QUARANTINE", "LOCKDOWN")
QUARANTINE_CAP = 1000


@dataclasses.dataclass(slots=True)
class SessionRow:
    tenant: str
    session_id: str
    kind: str
    state: str  # JSON of `SessionState.to_json()`
    vector: bytes | None  # float64 little-endian, D values; None = the zero vector
    checksum: str  # hex SHA-256 of state ‖ vector as written (§6.13 checksum_ok)
    created_at: float
    heads: str = "{}"  # JSON of what moves on nearly every request (VOLATILE): a small row of its own
    heads_checksum: str = ""  # hex SHA-256 of `heads` as written


@dataclasses.dataclass(slots=True)
class MemoryRow:
    tenant: str
    session_id: str
    id: str
    seq: int  # creation order within the session
    rev: int  # the session's memory revision at this row's last change
    text: str
    embedding: bytes  # float32 little-endian, D values, unit length
    source: str  # "server" | "client"
    tier: str
    importance: float
    access_count: int
    ts: float
    created_turn: int
    last_access_turn: int
    hash: str
    meta: str  # JSON object
    digest: str  # hex SHA-256(text UTF-8 ‖ embedding as float64 LE), §6.13


@dataclasses.dataclass(slots=True)
class EntityRow:
    tenant: str
    session_id: str
    key: str
    seq: int
    kind: str
    value: str
    context: str
    importance: float
    access_count: int
    created_at: float
    last_access_at: float | None


def vector_blob(v: np.ndarray | None) -> bytes | None:
    if v is None or not np.any(v):
        return None
    return np.asarray(v, dtype="<f8").tobytes()


def vector_of(blob: bytes | None, dimension: int) -> np.ndarray:
    if blob is None:
        return np.zeros(dimension)
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


@dataclasses.dataclass
class SessionState:
    """Everything of a session but its memories and entities; the vector `s` travels beside it."""

    n: int = 0
    pending: str | None = None
    realignment_remaining: int = 0
    beta_history: list[float] = dataclasses.field(default_factory=list)
    similarity_history: list[float] = dataclasses.field(default_factory=list)
    fsm_history: list[float] = dataclasses.field(default_factory=list)
    norm_history: list[float] = dataclasses.field(default_factory=list)
    phase_history: list[str] = dataclasses.field(default_factory=list)
    anchors: list[list[float]] = dataclasses.field(default_factory=list)
    triggers: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # {keyword, embedding, threshold}
    isolation: dict[str, Any] = dataclasses.field(default_factory=lambda: default_gate())
    config: dict[str, Any] = dataclasses.field(default_factory=lambda: default_config())
    mem_epoch: str = ""  # changes when the memories are replaced wholesale (reset, import)
    mem_rev: int = 0  # grows with every memory row written
    mem_seq: int = 0  # the seq of the newest memory
    view_token: str = ""  # names the memory view the last save left (index.current)
    entity_seq: int = 0
    live_memories: int = 0  # memories in the retrievable tiers (total_memories)
    entities_digest: str = ""  # SHA-256 of the entity rows at their last change (§6.13 checksum_ok)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # for the coordination layers

    def to_json(self) -> dict[str, Any]:
        """The state row: everything but VOLATILE (no deep copy: it is encoded at once)."""
        return {f.name: getattr(self, f.name) for f in _FIELDS if f.name not in VOLATILE}

    def heads(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in VOLATILE}

    @classmethod
    def of_json(cls, d: dict[str, Any], heads: dict[str, Any] | None = None) -> "SessionState":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in {**d, **(heads or {})}.items() if k in names})

    def append_history(self, beta: float, similarity: float, fsm: float, norm: float, phase: str) -> None:
        for name, value in (("beta_history", beta), ("similarity_history", similarity), ("fsm_history", fsm),
                            ("norm_history", norm), ("phase_history", phase)):
            h = getattr(self, name)
            h.append(value)
            if len(h) > HISTORY_KEEP:
                del h[:len(h) - HISTORY_KEEP]


_FIELDS = dataclasses.fields(SessionState)
# What a /v1/run that stores nothing changes: kept apart, so that such a request does not rewrite the state row
# (its histories reach ~100 KB).
VOLATILE = ("pending", "mem_rev", "view_token")


def default_gate() -> dict[str, Any]:
    return {"level": "OPEN", "exclusion_embeddings": [], "allowlist_embeddings": [], "similarity_threshold": 0.7,
            "quarantine": []}


def default_config() -> dict[str, Any]:
    return {"model_name": "all-MiniLM-L6-v2", "use_cortex": False, "enable_topic_switch": True,
            "template_embedding": None, "policy_vectors": []}
