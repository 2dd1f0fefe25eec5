"""The open definitions of semvec §6.2–6.4 and §6.8 (phase): vectors in numpy float64, no I/O."""

from __future__ import annotations

import dataclasses

import numpy as np

ZERO = 1e-8  # §6.1: a vector of smaller norm is the zero vector


def norm(v: np.ndarray) -> float:
    return float(np.sqrt(v @ v))


def unit(v: np.ndarray) -> np.ndarray:
    n = norm(v)
    return v / n if n >= ZERO else np.zeros_like(v, dtype=np.float64)


def is_zero(v: np.ndarray) -> bool:
    return norm(v) < ZERO


AT = 1e-12  # how near a threshold a cosine counts as on it


def cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = norm(a), norm(b)
    if na < ZERO or nb < ZERO:
        return 0.0
    return float(a @ b) / (na * nb)


def phase(n: int, similarities: list[float]) -> str:
    """§6.8: the phase after a turn, from the last min(5, n) similarity values."""
    if n < 3:
        return "initialization"
    last = np.asarray(similarities[-min(5, n):], dtype=np.float64)
    if last.size == 0:
        return "initialization"
    mu, var = float(last.mean()), float(last.var())
    if var > 0.05:
        return "instability"
    if mu >= 0.8:
        return "resonance"
    if mu >= 0.6:
        return "stability"
    if mu >= 0.35:
        return "convergence"
    return "exploration"


def anchor_score(s: np.ndarray, anchors: np.ndarray) -> float:
    """§6.3: mean over anchors of max(0, cos(s, a)); 1.0 without anchors, 0.0 for s = 0 with anchors."""
    if len(anchors) == 0:
        return 1.0
    if is_zero(s):
        return 0.0
    return float(np.maximum(0.0, anchors @ s / norm(s)).mean())  # anchors are unit rows


@dataclasses.dataclass
class Params:
    """The tunables of §6 (settings)."""

    beta: float = 0.85
    drift_threshold: float = 0.2  # θ_d
    shift_threshold: float = 0.4  # θ_s
    anchor_threshold: float = 0.5  # θ_a
    dedup_threshold: float = 0.85
    anchor_boost: float = 0.6
    trigger_boost: float = 0.3
    top_k: int = 5
    context_chars: int = 4000
    tiers: tuple[int, int, int] = (64, 512, 4096)
    entity_capacity: int = 200


@dataclasses.dataclass
class Turn:
    """What one admitted turn did (§6.2): the report of /v1/cluster/{id}/store and the histories' values."""

    s: np.ndarray
    similarity: float
    beta: float
    pattern_strength: float
    fsm: float
    norm: float
    topic_switch: float
    realignment_remaining: int


def turn(p: np.ndarray, x: np.ndarray, anchors: np.ndarray, realignment_remaining: int, topic_switch_on: bool,
         params: Params) -> Turn:
    """Fold the unit chunk embedding `x` into the previous vector `p` (EMA, then the anchor pull)."""
    p_zero = is_zero(p)
    if p_zero:
        b, beta = x.astype(np.float64), 0.0
    else:
        beta = params.beta
        b = beta * p + (1 - beta) * x
    strength = norm(b)
    s = b / strength if strength >= ZERO else x.astype(np.float64)
    if realignment_remaining > 0 and len(anchors):
        s = unit(0.9 * s + 0.1 * unit(anchors.mean(axis=0)))
        realignment_remaining -= 1
    elif len(anchors) and anchor_score(s, anchors) < params.anchor_threshold:
        realignment_remaining = 5
    similarity = cos(x, p)
    fsm = 0.0 if p_zero else cos(s, p)
    switch = 1.0 if topic_switch_on and not p_zero and similarity <= params.drift_threshold else 0.0
    return Turn(s, similarity, beta, strength, fsm, norm(s), switch, realignment_remaining)


@dataclasses.dataclass
class Drift:
    top_similarity: float
    short_circuit: bool
    drift_score: float
    drift_detected: bool
    drift_phase: str


def signals(q: np.ndarray, s: np.ndarray, top_similarity: float, have_memories: bool, short_circuit_threshold: float,
            params: Params) -> Drift:
    """§6.4 for query q against session vector s."""
    short = have_memories and top_similarity >= short_circuit_threshold
    if is_zero(s) or is_zero(q):
        return Drift(top_similarity, short, 0.0, False, "stable")
    c = cos(q, s)
    # A cosine at a threshold is "at" it: the norms' rounding differs between CPUs (numpy's SIMD paths)
    detected = c <= params.drift_threshold + AT
    ph = "drifted" if detected else "shifting" if c < params.shift_threshold - AT else "stable"
    return Drift(top_similarity, short, (1 - c) / 2, detected, ph)


def retention(importance: np.ndarray, n: int, created: np.ndarray, last: np.ndarray, access: np.ndarray) -> np.ndarray:
    """§6.3 r(m) = 0.4·clamp(importance) + 0.35·2^(−(n − t)/100) + 0.25·(1 − 1/(1 + access_count))."""
    t = np.maximum(created, last)
    return (0.4 * np.clip(importance, 0, 1) + 0.35 * np.exp2(-(n - t) / 100.0)
            + 0.25 * (1 - 1 / (1 + access.astype(np.float64))))
