"""Export with its checksum (semvec §5.16, §6.12), import (§5.17) and verify (§5.18, §6.13)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NotFound
from . import entities, maths
from .engine import SESSION_NOT_FOUND
from .model import GATE_LEVELS, TIERS, EntityRow, SessionState, vector_of
from .work import Malformed, _decode, _encode, current_phase, digest, heads_checksum, row_checksum, state_of

if TYPE_CHECKING:
    from ...store.base import WriteTxn
    from .engine import Sessions

FORMAT = "stigmer.semvec.state/1"
MALFORMED = "Malformed or tampered state_dict"
ENTITY_KINDS = ("variable", "function", "class", "path", "error", "signature", "constant", "type")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def checksum(state: dict[str, Any]) -> str:
    """§6.12: SHA-256 of the canonical JSON of the state without its `checksum` key."""
    return hashlib.sha256(canonical({k: v for k, v in state.items() if k != "checksum"})).hexdigest()


def _floats(blob: bytes) -> list[float]:
    return np.frombuffer(blob, dtype="<f4").astype(np.float64).tolist()


async def export(engine: "Sessions", tenant: str, session_id: str) -> dict[str, Any]:
    """The session's whole state as one JSON object, `checksum` included."""
    row, memories, ents = await engine.store.sessions.snapshot(tenant, session_id)
    if row is None:
        raise NotFound(SESSION_NOT_FOUND)
    st = state_of(row)
    iso = st.isolation
    state = {
        "format": FORMAT, "dimension": engine.dimension, "embedder": engine.embedder.id,
        "semantic_state": vector_of(row.vector, engine.dimension).tolist(), "interaction_count": st.n,
        "phase": current_phase(st), "pending_message": st.pending, "realignment_remaining": st.realignment_remaining,
        "beta_history": st.beta_history, "similarity_history": st.similarity_history, "fsm_history": st.fsm_history,
        "norm_history": st.norm_history, "phase_history": st.phase_history,
        "memories": [{"id": m.id, "semantic_hash": m.hash, "text": m.text, "embedding": _floats(m.embedding),
                      "embedding_source": m.source, "tier": m.tier, "importance": m.importance,
                      "access_count": m.access_count, "timestamp": m.ts, "created_turn": m.created_turn,
                      "last_access_turn": m.last_access_turn, "meta": _decode(m.meta)} for m in memories],
        "anchors": st.anchors,
        "triggers": [{"keyword": t.get("keyword"), "embedding": t.get("embedding"), "threshold": t["threshold"]}
                     for t in st.triggers],
        "isolation": {"level": iso["level"], "exclusion_embeddings": iso["exclusion_embeddings"],
                      "allowlist_embeddings": iso["allowlist_embeddings"],
                      "similarity_threshold": iso["similarity_threshold"], "quarantine": iso["quarantine"]},
        "entities": [entities.exported(e) for e in ents],
        "config": {k: st.config.get(k) for k in ("model_name", "use_cortex", "enable_topic_switch",
                                                 "template_embedding", "policy_vectors")},
    }
    state["config"]["policy_vectors"] = state["config"]["policy_vectors"] or []
    state["checksum"] = checksum(state)
    return state


# --- import


class _Bad(Exception):
    pass


def _need(ok: bool) -> None:
    if not ok:
        raise _Bad()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _vec(v: Any, d: int, nonzero: bool = True) -> list[float]:
    _need(isinstance(v, list) and len(v) == d and all(_is_num(x) and -3e38 < x < 3e38 for x in v))  # float32 range
    _need(not nonzero or not maths.is_zero(np.asarray(v, dtype=np.float64)))
    return v


def _str_or_none(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _check(state: dict[str, Any], d: int) -> None:
    """Every field of the format present with its type and vector lengths (else _Bad)."""
    _vec(state["semantic_state"], d, nonzero=False)
    for k in ("interaction_count", "realignment_remaining"):
        _need(_is_int(state[k]) and state[k] >= 0)
    _need(isinstance(state["phase"], str) and _str_or_none(state["pending_message"]))
    for k in ("beta_history", "similarity_history", "fsm_history", "norm_history"):
        _need(isinstance(state[k], list) and all(_is_num(x) for x in state[k]))
    _need(isinstance(state["phase_history"], list) and all(isinstance(x, str) for x in state["phase_history"]))
    _need(isinstance(state["memories"], list))
    ids = set()
    for m in state["memories"]:
        _need(isinstance(m, dict) and isinstance(m["id"], str) and m["id"] and m["id"] not in ids)
        ids.add(m["id"])
        _need(isinstance(m["text"], str) and isinstance(m["semantic_hash"], str))
        _vec(m["embedding"], d)
        _need(m["embedding_source"] in ("server", "client") and m["tier"] in TIERS)
        _need(_is_num(m["importance"]) and _is_int(m["access_count"]) and m["access_count"] >= 0)
        _need(_is_num(m["timestamp"]) and _is_int(m["created_turn"]) and _is_int(m["last_access_turn"]))
        _need(isinstance(m["meta"], dict))
    _need(isinstance(state["anchors"], list))
    for a in state["anchors"]:
        _vec(a, d)
    _need(isinstance(state["triggers"], list))
    for t in state["triggers"]:
        _need(isinstance(t, dict) and _str_or_none(t["keyword"]) and _is_num(t["threshold"]))
        _need(t["keyword"] is not None or t["embedding"] is not None)
        if t["embedding"] is not None:
            _vec(t["embedding"], d)
    iso = state["isolation"]
    _need(isinstance(iso, dict) and iso["level"] in GATE_LEVELS and _is_num(iso["similarity_threshold"]))
    for k in ("exclusion_embeddings", "allowlist_embeddings"):
        _need(isinstance(iso[k], list))
        for v in iso[k]:
            _vec(v, d)
    _need(isinstance(iso["quarantine"], list))
    for q in iso["quarantine"]:
        _need(isinstance(q, dict) and isinstance(q["text"], str) and _is_num(q["queued_at"]))
        _vec(q["embedding"], d)
    _need(isinstance(state["entities"], list))
    keys = set()
    for e in state["entities"]:
        _need(isinstance(e, dict) and isinstance(e["key"], str) and e["key"] not in keys and e["kind"] in ENTITY_KINDS)
        keys.add(e["key"])
        _need(isinstance(e["value"], str) and isinstance(e["context"], str) and _is_num(e["importance"]))
        _need(_is_int(e["access_count"]) and _is_num(e["created_at"]))
        _need(e["last_access_at"] is None or _is_num(e["last_access_at"]))
    c = state["config"]
    _need(isinstance(c, dict) and isinstance(c["model_name"], str) and isinstance(c["use_cortex"], bool)
          and isinstance(c["enable_topic_switch"], bool) and isinstance(c["policy_vectors"], list))
    if c["template_embedding"] is not None:
        _vec(c["template_embedding"], d)
    for p in c["policy_vectors"]:
        _need(isinstance(p, dict) and _is_num(p["weight"]) and isinstance(p["promote"], bool))
        _vec(p["embedding"], d)


def validate(engine: "Sessions", state: dict[str, Any]) -> None:
    if state.get("format") != FORMAT:
        raise Malformed(MALFORMED)
    if state.get("embedder") != engine.embedder.id:
        raise Malformed(f"state_dict was produced by embedder {state.get('embedder')!r}; this server uses "
                        f"{engine.embedder.id!r}" if isinstance(state.get("embedder"), str) else MALFORMED)
    try:
        _need(state.get("dimension") == engine.dimension and isinstance(state.get("checksum"), str))
        _need(state["checksum"] == checksum(state))
        _check(state, engine.dimension)
    except (_Bad, KeyError, TypeError, ValueError):
        raise Malformed(MALFORMED) from None


async def import_state(engine: "Sessions", tenant: str, session_id: str, state: dict[str, Any]) -> None:
    """Replace the session's whole state with `state` (all or nothing); id, tenant and memberships stay."""
    if await engine.store.sessions.get(tenant, session_id) is None:
            raise NotFound(SESSION_NOT_FOUND)
    validate(engine, state)

    def mutation(tx: "WriteTxn") -> None:
        work = engine.must_open(tx, session_id)
        extra = work.state.extra
        work.replace_memories()
        tx.sessions.clear_entities(session_id)
        st = SessionState(
            n=state["interaction_count"], pending=state["pending_message"],
            realignment_remaining=state["realignment_remaining"], beta_history=state["beta_history"],
            similarity_history=state["similarity_history"], fsm_history=state["fsm_history"],
            norm_history=state["norm_history"], phase_history=state["phase_history"], anchors=state["anchors"],
            triggers=state["triggers"], isolation=dict(state["isolation"]), config=dict(state["config"]),
            mem_epoch=work.state.mem_epoch, extra=extra)
        work.state = st
        work.s = np.asarray(state["semantic_state"], dtype=np.float64)
        rows = [work.memory_row(m["text"], np.asarray(m["embedding"], dtype="<f4").tobytes(), m["embedding_source"],
                                m["tier"], m["importance"], m["access_count"], _encode(m["meta"]).decode(), m["id"],
                                m["timestamp"], m["created_turn"], m["last_access_turn"]) for m in state["memories"]]
        work.add_rows(rows)
        ents = [EntityRow(tx.tenant, session_id, e["key"], i + 1, e["kind"], e["value"], e["context"], e["importance"],
                          e["access_count"], e["created_at"], e["last_access_at"]) for i, e in enumerate(state["entities"])]
        st.entity_seq = len(ents)
        tx.sessions.put_entities(ents)
        st.entities_digest = entities.digest(ents)
        work.save()

    await engine.store.submit(tenant, mutation)


# --- verify


def _finite(v: Any, d: int) -> bool:
    return isinstance(v, list) and len(v) == d and all(isinstance(x, (int, float)) and math.isfinite(x) for x in v)


async def verify(engine: "Sessions", tenant: str, session_id: str, probes: list[np.ndarray],
                 sample_size: int) -> dict[str, Any]:
    """§6.13: the stored state checked against itself and the current embedder."""
    row, memories, ents = await engine.store.sessions.snapshot(tenant, session_id)
    if row is None:
        raise NotFound(SESSION_NOT_FOUND)
    d = engine.dimension
    st = state_of(row)
    checksum_ok = (row_checksum(row.state.encode(), row.vector) == row.checksum
                   and heads_checksum(row.heads.encode()) == row.heads_checksum
                   and (st.entities_digest or entities.digest([])) == entities.digest(ents))
    digest_mismatches = sum(1 for m in memories if digest(m.text, m.embedding) != m.digest)
    sample = [m for m in reversed(memories) if m.source == "server"][:sample_size]
    mismatches = 0
    if sample:
        fresh = await engine.embed([m.text for m in sample])
        for m, v in zip(sample, fresh):
            stored = np.frombuffer(m.embedding, dtype="<f4").astype(np.float64)
            if maths.cos(v, stored) < 0.999:
                mismatches += 1
    s = vector_of(row.vector, d)
    n = maths.norm(s)
    vectors = [*st.anchors, *(t["embedding"] for t in st.triggers if t.get("embedding") is not None),
               *st.isolation["exclusion_embeddings"], *st.isolation["allowlist_embeddings"],
               *(p["embedding"] for p in st.config.get("policy_vectors") or [])]
    if st.config.get("template_embedding") is not None:
        vectors.append(st.config["template_embedding"])
    state_ok = (n < 1e-8 or abs(n - 1) <= 1e-6) and len(s) == d and bool(np.isfinite(s).all()) and all(
        _finite(v, d) for v in vectors) and all(
        len(m.embedding) == 4 * d and bool(np.isfinite(np.frombuffer(m.embedding, dtype="<f4")).all()) for m in memories)
    checks = {"checksum_ok": checksum_ok, "memories_checked": len(sample), "digest_mismatches": digest_mismatches,
              "embedding_mismatches": mismatches, "state_vector_ok": state_ok,
              "probe_similarities": [maths.cos(p, s) for p in probes]}
    consistent = checksum_ok and digest_mismatches == 0 and mismatches == 0 and state_ok
    return {"session_id": session_id, "consistent": consistent, "checks": checks}
