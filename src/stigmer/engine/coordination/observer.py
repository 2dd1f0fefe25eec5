"""The observer (semvec spec §5.38–§5.44, §6.9): one per tenant, with a meta-session, registered regions and an
anomaly log that sampling passes append to. Sampling is manual (Decision D22)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from ..errors import NotFound
from . import anomalies as rules, clusters as cl, maths
from .ports import SessionPort
from .records import Anomaly, Observer

RECENT = 5  # anomalies in the summary (§5.39)
OBSERVER_NOT_FOUND = "Observer not found \u2014 call POST /v1/observer/ first"


@dataclass(frozen=True)
class Summary:
    observer: Observer
    registered_regions: int
    total_clusters_observed: int
    anomaly_count: int
    recent: list[Anomaly]


@dataclass(frozen=True)
class Sample:
    sampled_at: float
    duration_ms: float
    regions_sampled: int
    regions_registered: int
    clusters_sampled: int
    new_anomalies: int
    total_anomalies: int


def existing(tx) -> Observer:
    observer = tx.coordination.observer()
    if observer is None:
        raise NotFound(OBSERVER_NOT_FOUND)
    return observer


def _check_regions(tx, region_ids: list[str]) -> None:
    for rid in region_ids:
        if tx.coordination.region(rid) is None:
            raise NotFound("Region not found")


def create_in(tx, sessions: SessionPort, interval: float, region_ids: list[str]) -> tuple[Observer, int]:
    """Create the tenant's observer or return the one it has (whose interval stays), then register the regions.
    Unknown regions are refused before anything changes (Decision D22)."""
    _check_regions(tx, region_ids)
    observer = tx.coordination.observer()
    if observer is None:
        observer = Observer(str(uuid.uuid4()), f"_observer:{uuid.uuid4()}", interval, None, tx.now)
        tx.coordination.insert_observer(observer)
        sessions.create(tx, observer.meta_session_id, "observer")
    for rid in region_ids:
        tx.coordination.register_region(rid)
    return observer, len(tx.coordination.observed_regions())


def summary_in(tx) -> Summary:
    c = tx.coordination
    observer = existing(tx)
    regions = c.observed_regions()  # a deleted region's registration goes with it
    return Summary(observer, len(regions), sum(c.region_cluster_count(r) for r in regions), c.anomaly_count(),
                   c.anomalies(RECENT))


def register_in(tx, region_id: str) -> None:
    existing(tx)
    _check_regions(tx, [region_id])
    tx.coordination.register_region(region_id)


def unregister_in(tx, region_id: str) -> None:
    existing(tx)
    tx.coordination.unregister_region(region_id)


def anomalies_in(tx, limit: int) -> list[Anomaly]:
    existing(tx)
    return tx.coordination.anomalies(limit)


def clear_in(tx) -> int:
    existing(tx)
    return tx.coordination.clear_anomalies()


def sample_in(tx, sessions: SessionPort) -> Sample:
    started = time.perf_counter()
    c = tx.coordination
    observer = existing(tx)
    registered = c.observed_regions()
    by_region, weighted = [], {}
    for rid in registered:
        if c.region(rid) is None:
            continue
        sampled = []
        for cid in c.region_clusters(rid):
            view = cl.view_in(tx, sessions, cid)
            sampled.append(rules.SampledCluster(cid, view.phase, view.interaction_count, view.similarity_history))
            weighted[cid] = (view.aggregate, view.interaction_count)
        by_region.append((rid, sampled))
    found = rules.findings(by_region)
    new = [Anomaly(str(uuid.uuid4()), tx.now, f.anomaly_type, f.affected_cluster_ids, f.description, f.severity)
           for f in found]
    c.insert_anomalies(new)
    c.sampled(tx.now)
    centre = maths.region_aggregate(weighted.values())
    if centre is not None:
        s = maths.normalised(centre)
        if s is not None:
            sessions.set_vector(tx, observer.meta_session_id, s)
    return Sample(tx.now, round((time.perf_counter() - started) * 1000.0, 2), len(by_region), len(registered),
                  len(weighted), len(new), c.anomaly_count())
