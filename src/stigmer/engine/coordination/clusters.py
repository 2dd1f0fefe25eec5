"""Clusters (semvec spec §5.22–§5.30, §6.8): a named set of member sessions with a backing session of the same
id, an aggregate of the members' vectors, and feedback that blends the members toward it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from ..errors import NotFound
from ..sessions import Unprocessable
from . import maths
from .ports import SessionPort
from .records import Cluster

MAX_MEMBERS = 1000
CLUSTER_NOT_FOUND = "Cluster not found"


@dataclass(frozen=True)
class ClusterView:
    cluster: Cluster
    member_count: int
    phase: str
    interaction_count: int
    total_memories: int
    aggregate: np.ndarray
    similarity_history: list[float]


def create_in(tx, sessions: SessionPort, name: str, mode: str, coupling: float, exempt: bool) -> Cluster:
    cluster = Cluster(str(uuid.uuid4()), name, mode, coupling, exempt, tx.now)
    tx.coordination.insert_cluster(cluster)
    sessions.create(tx, cluster.id, "cluster")
    return cluster


def existing(tx, cluster_id: str) -> Cluster:
    cluster = tx.coordination.cluster(cluster_id)
    if cluster is None:
        raise NotFound(CLUSTER_NOT_FOUND)
    return cluster


def member_facts(tx, sessions: SessionPort, cluster_id: str) -> dict:
    """Member id → facts, for members whose session exists."""
    return sessions.members(tx, cluster_id)


def aggregate_of(tx, sessions: SessionPort, cluster: Cluster, members: dict | None = None) -> np.ndarray:
    members = member_facts(tx, sessions, cluster.id) if members is None else members
    backing = sessions.facts(tx, cluster.id)  # always there: a backing session cannot be deleted on its own
    return maths.aggregate(cluster.aggregation_mode, [(f.vector, f.interaction_count) for f in members.values()],
                           backing.vector)


def view_in(tx, sessions: SessionPort, cluster_id: str) -> ClusterView:
    cluster = existing(tx, cluster_id)
    members = member_facts(tx, sessions, cluster_id)
    backing = sessions.facts(tx, cluster_id)
    return ClusterView(cluster, tx.coordination.member_count(cluster_id), backing.phase, backing.interaction_count,
                       backing.total_memories, aggregate_of(tx, sessions, cluster, members),
                       list(backing.similarity_history))


def total_interactions(members: dict) -> int:
    return sum(f.interaction_count for f in members.values())


def delete_in(tx, sessions: SessionPort, cluster_id: str) -> None:
    existing(tx, cluster_id)
    tx.coordination.delete_cluster(cluster_id)
    if sessions.exists(tx, cluster_id):
        sessions.delete(tx, cluster_id)


def add_member_in(tx, sessions: SessionPort, cluster_id: str, session_id: str) -> None:
    existing(tx, cluster_id)
    if not sessions.exists(tx, session_id):
        raise NotFound("Session not found")
    members = tx.coordination.members(cluster_id)
    if session_id in members:
        return
    if len(members) >= MAX_MEMBERS:
        raise Unprocessable(f"member limit reached ({MAX_MEMBERS})")
    tx.coordination.add_member(cluster_id, session_id)


def remove_member_in(tx, cluster_id: str, session_id: str) -> None:
    if tx.coordination.cluster(cluster_id) is None or not tx.coordination.remove_member(cluster_id, session_id):
        raise NotFound("Member or cluster not found")


def store_in(tx, sessions: SessionPort, cluster_id: str, chunk: str, x: np.ndarray,
             dedup_threshold: float | None) -> dict:
    """One turn of the backing session; the pending message is neither used nor changed (§5.28)."""
    existing(tx, cluster_id)
    if maths.is_zero(x):
        raise Unprocessable("response produced a degenerate (zero-norm) embedding; nothing was stored")
    return sessions.store_turn(tx, cluster_id, chunk, x, dedup_threshold)


def chunk_of(message: str, response: str) -> str:
    return f"Q: {message} A: {response}"


def feedback_in(tx, sessions: SessionPort, cluster_id: str) -> int:
    cluster = existing(tx, cluster_id)
    members = member_facts(tx, sessions, cluster_id)
    g = aggregate_of(tx, sessions, cluster, members)
    changed = maths.blended({sid: f.vector for sid, f in members.items()}, g, cluster.coupling_factor)
    for sid, s in changed.items():
        sessions.set_vector(tx, sid, s, members[sid])
    return len(changed)
