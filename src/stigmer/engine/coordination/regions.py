"""Regions (semvec spec §5.31–§5.37, §6.9): sets of clusters that vote on drift. A /v1/run turn that drifts
publishes an event to every region holding a cluster of the session; when more than `consensus_threshold` of a
region's eligible clusters voted within the window, the region realigns them toward its aggregate, in the same
transaction as the turn."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..errors import Conflict, NotFound
from ..sessions import Unprocessable
from . import clusters as cl, maths
from .ports import SessionPort
from .records import DriftEvent, Realignment, Region

MAX_CLUSTERS = 1000
RECENT = 20  # events and realignments in a region's view (§5.33)
REGION_NOT_FOUND = "Region not found"


@dataclass(frozen=True)
class RegionView:
    region: Region
    cluster_count: int
    events: list[DriftEvent]
    realignments: list[Realignment]
    realignment_count: int


def create_in(tx, sessions: SessionPort, name: str, threshold: float, window: float) -> Region:
    region = Region(str(uuid.uuid4()), name, str(uuid.uuid4()), threshold, window, tx.now)
    tx.coordination.insert_region(region)
    sessions.create(tx, region.meta_session_id, "region")
    return region


def existing(tx, region_id: str) -> Region:
    region = tx.coordination.region(region_id)
    if region is None:
        raise NotFound(REGION_NOT_FOUND)
    return region


def view_in(tx, region_id: str) -> RegionView:
    c = tx.coordination
    region = existing(tx, region_id)
    return RegionView(region, c.region_cluster_count(region_id), c.events(region_id, RECENT),
                      c.realignments(region_id, RECENT), c.realignment_count(region_id))


def delete_in(tx, sessions: SessionPort, region_id: str) -> None:
    region = existing(tx, region_id)
    tx.coordination.delete_region(region_id)
    if sessions.exists(tx, region.meta_session_id):
        sessions.delete(tx, region.meta_session_id)


def attach_in(tx, region_id: str, cluster_id: str) -> None:
    existing(tx, region_id)
    cluster = cl.existing(tx, cluster_id)
    attached = tx.coordination.region_clusters(region_id)
    if cluster_id in attached:
        return
    if cluster.drift_exempt:
        raise Conflict(f"cluster {cluster_id} is drift-exempt and cannot be added to region {region_id}: "
                       "realignment would erode its pinned dedup index")
    if len(attached) >= MAX_CLUSTERS:
        raise Unprocessable(f"cluster limit reached ({MAX_CLUSTERS})")
    tx.coordination.add_region_cluster(region_id, cluster_id)


def detach_in(tx, region_id: str, cluster_id: str) -> None:
    if tx.coordination.region(region_id) is None or not tx.coordination.remove_region_cluster(region_id, cluster_id):
        raise NotFound("Cluster or region not found")


def events_in(tx, region_id: str, limit: int) -> list[DriftEvent]:
    existing(tx, region_id)
    return tx.coordination.events(region_id, limit)


def publish_drift_in(tx, sessions: SessionPort, session_id: str, drift_score: float,
                     drift_phase: str) -> list[Realignment]:
    """§6.9 for one drifting turn: an event for every (cluster, region) pair where the cluster holds the session
    as a member, or is backed by it (a turn of /v1/cluster/{id}/run, Decision D23), and the region holds the
    cluster; each event may trigger its region's realignment. The realignments made, in order."""
    c = tx.coordination
    cluster_ids = c.clusters_of_member(session_id)
    if session_id not in cluster_ids and c.cluster(session_id) is not None:
        cluster_ids.append(session_id)
    made = []
    for cid in cluster_ids:
        for rid in c.regions_of_cluster(cid):
            c.insert_event(DriftEvent(cid, rid, drift_score, drift_phase, tx.now))
            r = _vote(tx, sessions, c.region(rid))
            if r is not None:
                made.append(r)
    return made


def _vote(tx, sessions: SessionPort, region: Region) -> Realignment | None:
    c = tx.coordination
    eligible = [k for k in (c.cluster(cid) for cid in c.region_clusters(region.id)) if k and not k.drift_exempt]
    voted_ids = c.voted_clusters(region.id, tx.now - region.vote_window_seconds)
    voted = [k.id for k in eligible if k.id in voted_ids]
    if not maths.consensus_reached(len(voted), len(eligible), region.consensus_threshold):
        return None
    members = {k.id: cl.member_facts(tx, sessions, k.id) for k in eligible}
    g = maths.region_aggregate((cl.aggregate_of(tx, sessions, k, members[k.id]), cl.total_interactions(members[k.id]))
                               for k in eligible)
    current: dict = {}  # a session in two eligible clusters is blended by each, in turn
    if g is not None:
        for k in eligible:
            vectors = {sid: current.get(sid, f.vector) for sid, f in members[k.id].items()}
            current.update(maths.blended(vectors, g, k.coupling_factor))
    read = {sid: f for m in members.values() for sid, f in m.items()}
    for sid, s in current.items():
        sessions.set_vector(tx, sid, s, read[sid])
    updated = len(current)
    sessions.note(tx, region.meta_session_id,
                  f"Regional realignment triggered: {len(voted)} clusters reported drift in region {region.id}", g)
    record = Realignment(str(uuid.uuid4()), region.id, tx.now, voted, len(eligible), len(voted) / len(eligible),
                         region.consensus_threshold, updated)
    c.insert_realignment(record)
    return record
