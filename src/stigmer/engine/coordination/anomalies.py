"""The observer's anomaly rules (semvec spec §6.9), pure functions over one sampling pass.

A pass samples, region by region, every cluster of every registered region that still exists. A cluster in two
registered regions is one cluster seen in two regions: the tenant-wide rules (convergence, systemic drift)
count it once, the per-region rule (divergence) counts it in each region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .maths import drifting


@dataclass
class SampledCluster:
    cluster_id: str
    phase: str
    interaction_count: int
    similarity_history: Sequence[float]
    region_ids: list[str] = field(default_factory=list)  # the sampled regions it belongs to, in sampling order


@dataclass(frozen=True)
class Finding:
    anomaly_type: str
    affected_cluster_ids: list[str]
    description: str
    severity: float


def distinct(sampled: Sequence[tuple[str, SampledCluster]]) -> list[SampledCluster]:
    """(region id, cluster) pairs in sampling order → each cluster once, with its regions."""
    seen: dict[str, SampledCluster] = {}
    for region_id, c in sampled:
        one = seen.setdefault(c.cluster_id, SampledCluster(c.cluster_id, c.phase, c.interaction_count,
                                                            c.similarity_history))
        if region_id not in one.region_ids:
            one.region_ids.append(region_id)
    return list(seen.values())


def convergence(clusters: Sequence[SampledCluster]) -> list[Finding]:
    groups: dict[str, list[SampledCluster]] = {}
    for c in clusters:
        if c.interaction_count > 2:
            groups.setdefault(c.phase, []).append(c)
    found = []
    for phase, group in groups.items():
        regions = {r for c in group for r in c.region_ids}
        k = len(group)
        if len(regions) >= 2 and k >= 3:
            found.append(Finding("cross_cluster_convergence", [c.cluster_id for c in group],
                                 f"{k} clusters across {len(regions)} regions converged to phase '{phase}'",
                                 min(1.0, (k - 2) / 5)))
    return found


def systemic_drift(clusters: Sequence[SampledCluster]) -> list[Finding]:
    if not clusters:
        return []
    drifts = [c for c in clusters if drifting(c.interaction_count, c.similarity_history)]
    ratio = len(drifts) / len(clusters)
    if ratio <= 0.5:
        return []
    return [Finding("systemic_drift", [c.cluster_id for c in drifts],
                    f"{len(drifts)}/{len(clusters)} clusters show drift signals", min(1.0, ratio))]


def divergence(region: Sequence[SampledCluster]) -> list[Finding]:
    """One region's clusters: each far busier than the region's average is an anomaly of its own."""
    if len(region) < 2:
        return []
    avg = sum(c.interaction_count for c in region) / len(region)
    if avg < 1:
        return []
    return [Finding("cluster_divergence", [c.cluster_id],
                    f"Cluster {c.cluster_id} has {c.interaction_count} interactions vs region avg {avg:.1f} (>3x)",
                    0.5)
            for c in region if c.interaction_count > 3 * avg]


def findings(by_region: Sequence[tuple[str, Sequence[SampledCluster]]]) -> list[Finding]:
    """Every anomaly one pass finds, in rule order: convergence, systemic drift, then divergence by region."""
    everything = distinct([(rid, c) for rid, clusters in by_region for c in clusters])
    out = convergence(everything) + systemic_drift(everything)
    for _, clusters in by_region:
        out += divergence(clusters)
    return out
