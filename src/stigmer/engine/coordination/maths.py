"""The open definitions of the coordination layers (semvec spec §6.8, §6.9, §6.14), as pure numpy functions.

Nothing here reads or writes a store: the mutation functions beside this module load the vectors, call these
and write back what they return. Vectors are float64 numpy arrays; "zero" means a norm below `ZERO`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

ZERO = 1e-8
ATTENTION_TEMPERATURE = 0.1
TRUST_START = 0.5


def is_zero(v: np.ndarray) -> bool:
    return float(np.linalg.norm(v)) < ZERO


def normalised(v: np.ndarray) -> np.ndarray | None:
    """v/‖v‖, or None when v is zero (a caller then leaves the old vector in place)."""
    norm = float(np.linalg.norm(v))
    return None if norm < ZERO else v / norm


def cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < ZERO or nb < ZERO:
        return 0.0
    return float(np.dot(a, b)) / (na * nb)


def weighted_mean(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return (w[:, None] * np.stack(vectors)).sum(axis=0) / w.sum()


def aggregate(mode: str, members: Sequence[tuple[np.ndarray, int]], fallback: np.ndarray) -> np.ndarray:
    """A cluster's aggregate (§6.8) over (s_i, n_i) of its members; members with a zero vector do not count.
    No such member → `fallback` (the backing session's vector). Not normalised."""
    live = [(s, max(n, 1)) for s, n in members if not is_zero(s)]
    if not live:
        return fallback
    vectors, weights = [s for s, _ in live], [w for _, w in live]
    centre = weighted_mean(vectors, weights)
    if mode == "weighted_average":
        return centre
    logits = np.array([cos(s, centre) / ATTENTION_TEMPERATURE for s in vectors])
    alpha = np.exp(logits - logits.max())
    alpha /= alpha.sum()
    return (alpha[:, None] * np.stack(vectors)).sum(axis=0)


def blend(s: np.ndarray, g: np.ndarray, kappa: float) -> np.ndarray | None:
    """normalise((1−κ)·s + κ·g): a member pulled toward an aggregate; None when the blend is zero."""
    return normalised((1.0 - kappa) * s + kappa * g)


def blended(vectors: dict[str, np.ndarray], g: np.ndarray, kappa: float) -> dict[str, np.ndarray]:
    """Feedback and realignment (§6.8, §6.9): the new vector of every member that changes. κ = 0, a zero
    aggregate, a zero member and a zero blend change nothing."""
    if kappa <= 0 or is_zero(g):
        return {}
    out = {}
    for sid, s in vectors.items():
        if is_zero(s):
            continue
        new = blend(s, g, kappa)
        if new is not None:
            out[sid] = new
    return out


def region_aggregate(clusters: Iterable[tuple[np.ndarray, int]]) -> np.ndarray | None:
    """g = Σ w_c·agg_c / Σ w_c over (aggregate, total member n) with a non-zero aggregate, w_c = max(n, 1);
    None when there is none."""
    live = [(agg, max(n, 1)) for agg, n in clusters if not is_zero(agg)]
    if not live:
        return None
    return weighted_mean([a for a, _ in live], [w for _, w in live])


def consensus_reached(voted: int, eligible: int, threshold: float) -> bool:
    """§6.9: a strict majority above the region's threshold among its non-exempt clusters."""
    return eligible > 0 and voted / eligible > threshold


def transfer(source: np.ndarray, target: np.ndarray, max_weight: float) -> tuple[np.ndarray | None, float]:
    """Capped delta transfer (§6.14): (the target's new vector or None when unchanged, delta_norm)."""
    if is_zero(source) or is_zero(target):
        return None, 0.0
    d = source - target
    delta = float(np.linalg.norm(d))
    if delta <= 1e-10:
        return None, round(delta, 6)
    new = normalised(target + d * (min(delta, max_weight) / delta))
    return new, round(delta, 6)


def trust_update(trust: float, s: np.ndarray, target: np.ndarray) -> tuple[bool, float]:
    """Consensus (§6.14): (accepted, the proposer's new trust). `target` is non-zero (checked on receipt)."""
    a = 0.0 if is_zero(s) else min(1.0, max(-1.0, cos(s, target)))
    return a >= 0, min(1.0, max(0.0, 0.8 * trust + 0.2 * (1.0 + a) / 2.0))


def mean_and_variance(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population variance."""
    mu = sum(values) / len(values)
    return mu, sum((x - mu) ** 2 for x in values) / len(values)


def drifting(interaction_count: int, similarities: Sequence[float]) -> bool:
    """§6.9 systemic_drift: ≥ 10 interactions and the last 5 similarities vary (> 0.01) or are low (< 0.3)."""
    if interaction_count < 10 or not similarities:
        return False
    mu, var = mean_and_variance(list(similarities)[-5:])
    return var > 0.01 or mu < 0.3

