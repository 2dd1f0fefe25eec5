"""What the coordination layers keep (semvec spec §5.22–§5.50): clusters, regions, their drift events and
realignments, the observer and its anomalies. Vectors are not here: they live in the sessions (a cluster's
backing session, a region's or observer's meta-session, the members)."""

from __future__ import annotations

import msgspec


class Cluster(msgspec.Struct, frozen=True):
    id: str  # also the id of its backing session
    name: str
    aggregation_mode: str
    coupling_factor: float
    drift_exempt: bool
    created_at: float


class Region(msgspec.Struct, frozen=True):
    id: str
    name: str
    meta_session_id: str
    consensus_threshold: float
    vote_window_seconds: float
    created_at: float


class DriftEvent(msgspec.Struct, frozen=True):
    cluster_id: str
    region_id: str
    drift_score: float
    drift_phase: str
    timestamp: float


class Realignment(msgspec.Struct, frozen=True):
    realignment_id: str
    region_id: str
    timestamp: float
    voted_cluster_ids: list[str]
    eligible_cluster_count: int
    ratio: float
    consensus_threshold: float
    sessions_updated: int


class Observer(msgspec.Struct, frozen=True):
    observer_id: str
    meta_session_id: str
    sample_interval_seconds: float
    last_sample_at: float | None
    created_at: float


class Anomaly(msgspec.Struct, frozen=True):
    anomaly_id: str
    timestamp: float
    anomaly_type: str
    affected_cluster_ids: list[str]
    description: str
    severity: float
