"""Worked examples of the coordination maths (semvec spec §6.8, §6.9, §6.14), computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stigmer.engine.coordination import anomalies as rules, maths
from stigmer.engine.coordination.anomalies import SampledCluster

R2 = math.sqrt(0.5)


def v(*xs):
    return np.array(xs, dtype=np.float64)


def test_weighted_average_weights_by_interactions_and_skips_zero_members():
    # (3·[1,0] + 1·[0,1]) / 4; the zero member does not count, n = 0 weighs 1
    agg = maths.aggregate("weighted_average", [(v(1, 0), 3), (v(0, 0), 9), (v(0, 1), 0)], v(9, 9))
    assert agg == pytest.approx([0.75, 0.25])


def test_attention_is_a_softmax_over_cosines_to_the_weighted_mean():
    # symmetric: both members are 45° from the centre → α = ½ each
    assert maths.aggregate("attention", [(v(1, 0), 1), (v(0, 1), 1)], v(0, 0)) == pytest.approx([0.5, 0.5])
    # centre [0.75, 0.25]: cosines 0.75/‖c‖ = 0.948683 and 0.25/‖c‖ = 0.316228; logits ÷ 0.1 differ by 6.324555
    alpha1 = 1 / (1 + math.exp(-6.324555320336759))
    agg = maths.aggregate("attention", [(v(1, 0), 3), (v(0, 1), 1)], v(0, 0))
    assert agg == pytest.approx([alpha1, 1 - alpha1]) and alpha1 == pytest.approx(0.998211, abs=1e-6)


def test_aggregate_without_live_members_is_the_backing_vector():
    assert maths.aggregate("attention", [(v(0, 0), 4)], v(0, 1)) == pytest.approx([0, 1])


def test_blend_renormalises_and_skips_what_cannot_move():
    assert maths.blend(v(1, 0), v(0, 1), 0.5) == pytest.approx([R2, R2])
    out = maths.blended({"a": v(1, 0), "zero": v(0, 0), "opposite": v(-1, 0)}, v(1, 0) * -1 + v(0, 0), 0.5)
    # a: (0.5·[1,0] + 0.5·[−1,0]) is zero → unchanged; the zero member is skipped; opposite is already there
    assert list(out) == ["opposite"] and out["opposite"] == pytest.approx([-1, 0])
    assert maths.blended({"a": v(1, 0)}, v(0, 1), 0.0) == {}
    assert maths.blended({"a": v(1, 0)}, v(0, 0), 0.5) == {}
    # κ = 0.2 toward an unnormalised aggregate: 0.8·[1,0] + 0.2·[0,0.5] = [0.8, 0.1] → /0.806226
    assert maths.blended({"a": v(1, 0)}, v(0, 0.5), 0.2)["a"] == pytest.approx([0.992278, 0.124035], abs=1e-6)


def test_region_aggregate_weights_by_member_interactions():
    g = maths.region_aggregate([(v(0.75, 0.25), 4), (v(0, 0), 7), (v(0, 1), 0)])
    assert g == pytest.approx([0.6, 0.4])  # (4·[0.75,0.25] + 1·[0,1]) / 5
    assert maths.region_aggregate([(v(0, 0), 3)]) is None


def test_consensus_needs_strictly_more_than_the_threshold():
    assert not maths.consensus_reached(1, 2, 0.5)
    assert maths.consensus_reached(2, 3, 0.5)
    assert maths.consensus_reached(1, 1, 0.99)
    assert not maths.consensus_reached(0, 0, 0.0)
    assert not maths.consensus_reached(1, 1, 1.0)


def test_transfer_moves_the_target_by_at_most_max_weight():
    # d = [1,−1], δ = √2; step = d·0.15/√2 = [0.106066, −0.106066]; [0.106066, 0.893934]/0.900202
    new, delta = maths.transfer(v(1, 0), v(0, 1), 0.15)
    assert delta == 1.414214 and new == pytest.approx([0.117824, 0.993034], abs=1e-6)
    new, _ = maths.transfer(v(1, 0), v(0, 1), 2.0)  # the cap exceeds δ: the target lands on the source
    assert new == pytest.approx([1, 0])
    assert maths.transfer(v(1, 0), v(0, 1), 0.0)[0] == pytest.approx([0, 1])
    assert maths.transfer(v(0, 0), v(0, 1), 0.15) == (None, 0.0)
    assert maths.transfer(v(0, 1), v(0, 1), 0.15) == (None, 0.0)


def test_trust_update_worked_examples():
    assert maths.trust_update(0.5, v(1, 0), v(1, 0)) == (True, pytest.approx(0.6))  # 0.8·0.5 + 0.2·1
    assert maths.trust_update(0.5, v(1, 0), v(-1, 0)) == (False, pytest.approx(0.4))  # 0.8·0.5 + 0
    assert maths.trust_update(0.5, v(0, 0), v(1, 0)) == (True, pytest.approx(0.5))  # a = 0: accepted
    accepted, trust = maths.trust_update(0.6, v(R2, R2), v(1, 0))  # a = 0.707107 → 0.48 + 0.170711
    assert accepted and trust == pytest.approx(0.650711, abs=1e-6)


def test_drift_signals_of_a_cluster():
    assert not maths.drifting(10, [0.9] * 5)
    assert maths.drifting(10, [0.9] * 20 + [0.2] * 5)  # only the last 5 count: mean 0.2 < 0.3
    assert maths.drifting(12, [0.5, 0.9, 0.5, 0.9, 0.5])  # variance 0.0384 > 0.01
    assert not maths.drifting(9, [0.2] * 5)


def _c(cid, phase, ic, sims=(0.9,) * 5):
    return SampledCluster(cid, phase, ic, list(sims))


def test_cross_cluster_convergence():
    found = rules.findings([("r1", [_c("a", "stability", 3), _c("b", "stability", 5), _c("x", "stability", 2)]),
                            ("r2", [_c("c", "stability", 4), _c("d", "resonance", 9)])])
    assert [(f.anomaly_type, f.affected_cluster_ids, f.description, f.severity) for f in found] == [
        ("cross_cluster_convergence", ["a", "b", "c"], "3 clusters across 2 regions converged to phase 'stability'",
         pytest.approx(0.2))]
    # the same three clusters in one region only: no anomaly
    assert rules.convergence(rules.distinct([("r1", _c(i, "stability", 5)) for i in "abc"])) == []


def test_a_cluster_in_two_regions_is_counted_once_for_tenant_wide_rules():
    shared = _c("a", "exploration", 12, [0.1] * 5)
    # seen twice it would be 2/3 drifting; once, it is 1/2, not more than half
    assert rules.findings([("r1", [shared, _c("b", "stability", 12)]), ("r2", [shared])]) == []
    found = rules.findings([("r1", [shared, _c("b", "exploration", 12, [0.1] * 5), _c("c", "stability", 12)]),
                            ("r2", [shared])])
    assert [(f.anomaly_type, f.affected_cluster_ids, f.description) for f in found] == [
        ("systemic_drift", ["a", "b"], "2/3 clusters show drift signals")]
    assert found[0].severity == pytest.approx(2 / 3)


def test_divergence_by_region():
    low = [0.1] * 5
    found = rules.findings([("r1", [_c("a", "exploration", 10, low), _c("b", "exploration", 11, low),
                                    _c("c", "stability", 1)]),
                            ("r2", [_c("d", "stability", 1), _c("e", "stability", 1), _c("f", "stability", 1),
                                    _c("g", "stability", 20)])])
    # 2/7 drifting is not more than half; r1's average 22/3: nobody above 22; r2's 23/4 = 5.75 → "5.8"
    assert [(f.anomaly_type, f.affected_cluster_ids, f.description, f.severity) for f in found] == [
        ("cluster_divergence", ["g"], "Cluster g has 20 interactions vs region avg 5.8 (>3x)", 0.5)]


def test_divergence_needs_two_clusters_and_an_average_of_one():
    assert rules.divergence([_c("a", "x", 50)]) == []
    assert rules.divergence([_c("a", "x", 0), _c("b", "x", 1)]) == []  # average 0.5 < 1
    assert rules.divergence([_c("a", "x", 0), _c("b", "x", 2)]) == []  # 2 is not above 3 × 1
    # average 1.25: 5 > 3.75
    assert [f.affected_cluster_ids for f in rules.divergence([_c(i, "x", 0) for i in "abc"] + [_c("d", "x", 5)])] \
        == [["d"]]
