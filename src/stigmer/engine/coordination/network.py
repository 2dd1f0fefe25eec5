"""The network operations (semvec spec §5.45–§5.50, §6.14): capped delta transfer between session vectors,
per-tenant user partitions, and consensus proposals that move only the proposer's trust."""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import NotFound
from . import maths
from .ports import SessionPort

DEFAULT_USER = "default"


def partition_id(tenant: str, user_id: str) -> str:
    return f"_partition:{hashlib.sha256(tenant.encode()).hexdigest()[:16]}:{user_id}"


def transfer_in(tx, sessions: SessionPort, source_id: str, target_id: str, max_weight: float) -> float:
    source, target = sessions.facts(tx, source_id), sessions.facts(tx, target_id)
    if source is None or target is None:
        raise NotFound("One or both sessions not found")
    new, delta = maths.transfer(source.vector, target.vector, max_weight)
    if new is not None:
        sessions.set_vector(tx, target_id, new, target)
    return delta


def active_in(tx) -> str:
    return tx.coordination.active_user() or DEFAULT_USER


def switch_in(tx, sessions: SessionPort, user_id: str) -> tuple[str, str]:
    """(active user, previous user); switching to the active user changes nothing."""
    previous = active_in(tx)
    if user_id == previous:
        return previous, previous
    sid = partition_id(tx.tenant, user_id)
    if not sessions.exists(tx, sid):
        sessions.create(tx, sid, "partition")
    tx.coordination.set_active_user(user_id)
    return user_id, previous


def partition_in(tx, sessions: SessionPort, user_id: str) -> str:
    """The user's partition session id (it exists)."""
    sid = partition_id(tx.tenant, user_id)
    if not sessions.exists(tx, sid):
        raise NotFound(partition_missing(user_id))
    return sid


def partition_missing(user_id: str) -> str:
    return f"User partition '{user_id}' not found"


def consensus_in(tx, sessions: SessionPort, proposer_id: str, target: np.ndarray) -> tuple[bool, dict[str, float]]:
    """`target` is unit (checked and normalised on receipt). No vector changes."""
    proposer = sessions.facts(tx, proposer_id)
    if proposer is None:
        raise NotFound("Proposer session not found")
    trust = tx.coordination.trust_scores().get(proposer_id, maths.TRUST_START)
    accepted, trust = maths.trust_update(trust, proposer.vector, target)
    tx.coordination.set_trust(proposer_id, trust)
    return accepted, tx.coordination.trust_scores()


def trust_in(tx) -> dict[str, float]:
    return tx.coordination.trust_scores()
