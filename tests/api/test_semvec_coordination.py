"""The semvec coordination routes (specs/semvec.md §5.22–§5.50): clusters, regions, the observer, the network.

Session vectors are set exactly through `template_embedding` (a template sets s, n stays 0) and read back from
the export's `semantic_state`, so the maths of §6.8, §6.9 and §6.14 is checked on worked numbers through HTTP.
Runs on SQLite, and on PostgreSQL under TEST_STORE=postgres.
"""

from __future__ import annotations

import hashlib
import math

import pytest
from starlette.testclient import TestClient

from stigmer.app import create_app
from stigmer.clock import ManualClock
from stigmer.support.embeddings import HashEmbedder
from support import ADMIN_KEY, app_settings, new_key

D = 384
DRIFT_TEXT = "kubernetes helm rollout"
NOT_FOUND = {"cluster": "Cluster not found", "region": "Region not found",
             "observer": "Observer not found \u2014 call POST /v1/observer/ first"}


def unit(i: int, j: int | None = None, a: float = 1.0, b: float = 0.0) -> list[float]:
    v = [0.0] * D
    v[i] = a
    if j is not None:
        v[j] = b
    return v


def quiet_axes(text: str = DRIFT_TEXT) -> list[int]:
    """Indices where the text's hash-v1 embedding is 0: a session vector there is orthogonal to it (drift)."""
    q = HashEmbedder(D).vectors([text])[0]
    return [i for i in range(D) if q[i] == 0.0]


@pytest.fixture
def clocked(tmp_path):
    clock = ManualClock(1_763_900_000.0)
    c = TestClient(create_app(app_settings({"data_dir": str(tmp_path / "app")}), clock),
                   base_url="http://localhost", raise_server_exceptions=False)
    with c:
        yield c, clock


@pytest.fixture
def c(clocked):
    return clocked[0]


def ok(r, status: int = 200):
    assert r.status_code == status, r.text
    return r.json()


def detail(r, status: int) -> str:
    assert r.status_code == status, r.text
    return r.json()["detail"]


def session(c, vector: list[float] | None = None, sid: str | None = None) -> str:
    body = {"template_embedding": vector} if vector is not None else {}
    if sid:
        body["session_id"] = sid
    return ok(c.post("/v1/session/create", json=body))["session_id"]


def vector_of(c, sid: str) -> list[float]:
    return ok(c.get(f"/v1/session/{sid}/export"))["state_dict"]["semantic_state"]


def cluster(c, **body) -> str:
    return ok(c.post("/v1/cluster/", json={"name": "c", **body}), 201)["cluster_id"]


def region(c, **body) -> dict:
    return ok(c.post("/v1/region/", json={"name": "r", **body}), 201)


def drift(c, sid: str) -> dict:
    out = ok(c.post("/v1/run", json={"session_id": sid, "message": DRIFT_TEXT}))
    assert out["drift_detected"] is True, out
    return out


# clusters


def test_cluster_create_list_get_delete_with_and_without_the_slash(c):
    made = ok(c.post("/v1/cluster/", json={"name": "c1"}), 201)
    assert made == {"cluster_id": made["cluster_id"], "name": "c1", "aggregation_mode": "weighted_average",
                    "coupling_factor": 0.0}
    other = ok(c.post("/v1/cluster", json={"name": "c2", "aggregation_mode": "attention", "coupling_factor": 0.5,
                                           "drift_exempt": True}), 201)
    assert other["aggregation_mode"] == "attention" and other["coupling_factor"] == 0.5
    for path in ("/v1/cluster/", "/v1/cluster"):
        assert ok(c.get(path)) == [{"cluster_id": made["cluster_id"], "name": "c1", "member_count": 0},
                                   {"cluster_id": other["cluster_id"], "name": "c2", "member_count": 0}]
    got = ok(c.get(f"/v1/cluster/{made['cluster_id']}"))
    assert got["phase"] == "initialization" and got["interaction_count"] == 0 and got["total_memories"] == 0
    assert got["member_count"] == 0 and got["aggregate_vector"] == [0.0] * D
    assert ok(c.delete(f"/v1/cluster/{made['cluster_id']}")) == {"deleted": True}
    assert detail(c.get(f"/v1/cluster/{made['cluster_id']}"), 404) == NOT_FOUND["cluster"]
    assert detail(c.delete(f"/v1/cluster/{made['cluster_id']}"), 404) == NOT_FOUND["cluster"]
    assert detail(c.get(f"/v1/metrics/{made['cluster_id']}"), 404) == "Session not found"  # the backing session went
    # the backing session exists while the cluster does, and cannot be deleted on its own
    assert ok(c.get(f"/v1/metrics/{other['cluster_id']}"))["interaction_count"] == 0
    assert detail(c.delete(f"/v1/session/{other['cluster_id']}"), 409) == (
        "session backs a cluster, region or observer; delete that resource instead")


def test_cluster_create_validation(c):
    r = c.post("/v1/cluster/", json={})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "missing"
    assert r.json()["detail"][0]["loc"] == ["body", "name"]
    items = c.post("/v1/cluster/", json={"name": "", "aggregation_mode": "mean", "coupling_factor": 1.5}).json()
    assert [(i["type"], i["loc"]) for i in items["detail"]] == [
        ("string_too_short", ["body", "name"]), ("literal_error", ["body", "aggregation_mode"]),
        ("less_than_equal", ["body", "coupling_factor"])]
    assert items["detail"][1]["msg"] == "Input should be 'weighted_average' or 'attention'"
    assert c.post("/v1/cluster/", json={"name": "x" * 257}).json()["detail"][0]["type"] == "string_too_long"
    r = c.post("/v1/cluster/", content=b"{nope")
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    assert c.post("/v1/cluster/").json()["detail"] == [
        {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    assert ok(c.get("/v1/cluster/")) == []


def test_member_and_cluster_limits(c, monkeypatch):
    from stigmer.engine.coordination import clusters as engine_clusters, regions as engine_regions

    monkeypatch.setattr(engine_clusters, "MAX_MEMBERS", 2)
    monkeypatch.setattr(engine_regions, "MAX_CLUSTERS", 1)
    cid = cluster(c)
    a, b, extra = session(c), session(c), session(c)
    for sid in (a, b, a):  # re-adding a member is not a new one
        ok(c.post(f"/v1/cluster/{cid}/members", json={"session_id": sid}))
    assert detail(c.post(f"/v1/cluster/{cid}/members", json={"session_id": extra}), 422) == "member limit reached (2)"
    rid = region(c)["region_id"]
    ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    assert detail(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cluster(c)}), 422) == (
        "cluster limit reached (1)")


def test_members_add_remove_and_session_deletion(c):
    cid, a, b = cluster(c), session(c), session(c)
    assert detail(c.post("/v1/cluster/nope/members", json={"session_id": "nope"}), 404) == NOT_FOUND["cluster"]
    assert detail(c.post(f"/v1/cluster/{cid}/members", json={"session_id": "nope"}), 404) == "Session not found"
    assert c.post(f"/v1/cluster/{cid}/members", json={}).json()["detail"][0]["loc"] == ["body", "session_id"]
    for sid in (a, b, a):
        assert ok(c.post(f"/v1/cluster/{cid}/members", json={"session_id": sid})) == {
            "cluster_id": cid, "session_id": sid, "added": True}
    assert ok(c.get(f"/v1/cluster/{cid}"))["member_count"] == 2
    assert ok(c.delete(f"/v1/cluster/{cid}/members/{a}")) == {"cluster_id": cid, "session_id": a, "removed": True}
    assert detail(c.delete(f"/v1/cluster/{cid}/members/{a}"), 404) == "Member or cluster not found"
    assert detail(c.delete(f"/v1/cluster/nope/members/{b}"), 404) == "Member or cluster not found"
    ok(c.delete(f"/v1/session/{b}"))
    assert ok(c.get("/v1/cluster"))[0]["member_count"] == 0


def test_aggregates_and_feedback_on_worked_vectors(c):
    a, b = session(c, unit(0)), session(c, unit(1))
    avg = cluster(c, coupling_factor=0.5)
    att = cluster(c, aggregation_mode="attention")
    for cid in (avg, att):
        for sid in (a, b):
            ok(c.post(f"/v1/cluster/{cid}/members", json={"session_id": sid}))
    g = ok(c.get(f"/v1/cluster/{avg}"))["aggregate_vector"]
    assert len(g) == D and g[:2] == pytest.approx([0.5, 0.5]) and not any(g[2:])
    assert ok(c.get(f"/v1/cluster/{att}"))["aggregate_vector"][:2] == pytest.approx([0.5, 0.5])
    assert ok(c.post(f"/v1/cluster/{att}/feedback")) == {"cluster_id": att, "sessions_updated": 0}  # κ = 0
    assert ok(c.post(f"/v1/cluster/{avg}/feedback")) == {"cluster_id": avg, "sessions_updated": 2}
    # normalise(0.5·[1,0] + 0.5·[0.5,0.5]) = [0.75, 0.25]/0.790569
    assert vector_of(c, a)[:2] == pytest.approx([0.948683, 0.316228], abs=1e-6)
    assert vector_of(c, b)[:2] == pytest.approx([0.316228, 0.948683], abs=1e-6)
    assert ok(c.get(f"/v1/metrics/{a}"))["interaction_count"] == 0  # n and histories unchanged
    assert detail(c.post("/v1/cluster/nope/feedback"), 404) == NOT_FOUND["cluster"]


def test_cluster_store_checks_then_stores_one_turn(c):
    cid = cluster(c)
    r = c.post(f"/v1/cluster/{cid}/store", json=[1])
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "dict_type"
    for body in ({"message": "q"}, {"message": "", "response": "a"}, {"message": 1, "response": "a"}):
        assert detail(c.post("/v1/cluster/nope/store", json=body), 422) == "Both 'message' and 'response' are required"
    body = {"message": "q", "response": "a"}
    assert detail(c.post("/v1/cluster/nope/store", json={**body, "dedup_threshold": "x"}), 422) == (
        "dedup_threshold must be a number")
    assert detail(c.post("/v1/cluster/nope/store", json={**body, "dedup_threshold": 1.5}), 422) == (
        "dedup_threshold must be in [-1.0, 1.0] (cosine range)")
    assert detail(c.post("/v1/cluster/nope/store", json=body), 404) == NOT_FOUND["cluster"]
    (item,) = c.post("/v1/cluster/nope/store", json={"message": "q", "response": "a" * 65_537}).json()["detail"]
    assert (item["type"], item["loc"], item["ctx"]) == ("string_too_long", ["body", "response"], {"max_length": 65_536})
    report = ok(c.post(f"/v1/cluster/{cid}/store", json={"message": "What database?", "response": "PostgreSQL 15",
                                                          "dedup_threshold": None}))
    assert report == {"similarity": 0.0, "beta": 0.0, "pattern_strength": 1.0, "fsm": 0.0,
                      "phase": "initialization", "norm": 1.0, "topic_switch": 0.0, "novelty_score": 1.0,
                      "admitted": True, "dedup_signal": {"is_update": False, "max_sim": 0.0, "matched_id": None}}
    got = ok(c.get(f"/v1/cluster/{cid}"))
    assert (got["interaction_count"], got["total_memories"]) == (1, 1)
    # no member: the aggregate is the backing session's vector
    assert got["aggregate_vector"] == pytest.approx(vector_of(c, cid))
    # (a degenerate chunk cannot happen under hash-v1: "Q: … A: …" always holds the token "q")


def test_cluster_run_uses_the_backing_session(c):
    cid = cluster(c)
    ok(c.post(f"/v1/cluster/{cid}/store", json={"message": "What database?", "response": "We use PostgreSQL"}))
    out = ok(c.post(f"/v1/cluster/{cid}/run", json={"message": "which database", "session_id": "ignored"}))
    assert out["session_id"] == cid and out["context"].startswith("[Semvec Context | Turn 1 | 1 memories]")
    assert detail(c.post("/v1/cluster/nope/run", json={"message": "x"}), 404) == NOT_FOUND["cluster"]
    assert c.post(f"/v1/cluster/{cid}/run", json={}).json()["detail"][0]["loc"] == ["body", "message"]


# regions


def test_region_create_list_get_attach_detach_delete(c):
    r1 = region(c, name="r1")
    assert set(r1) == {"region_id", "name", "meta_session_id"} and r1["name"] == "r1"
    r2 = ok(c.post("/v1/region", json={"name": "r2", "consensus_threshold": 1, "vote_window_seconds": 5}), 201)
    rid = r1["region_id"]
    cid, exempt = cluster(c), cluster(c, drift_exempt=True)
    assert detail(c.post("/v1/region/nope/clusters", json={"cluster_id": "nope"}), 404) == NOT_FOUND["region"]
    assert detail(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": "nope"}), 404) == NOT_FOUND["cluster"]
    assert detail(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": exempt}), 409) == (
        f"cluster {exempt} is drift-exempt and cannot be added to region {rid}: realignment would erode its "
        "pinned dedup index")
    assert ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid})) == {"added": True}
    assert ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid})) == {"added": True}
    for path in ("/v1/region/", "/v1/region"):
        assert ok(c.get(path)) == [{"region_id": rid, "name": "r1", "cluster_count": 1},
                                   {"region_id": r2["region_id"], "name": "r2", "cluster_count": 0}]
    assert ok(c.get(f"/v1/region/{rid}")) == {
        "region_id": rid, "name": "r1", "meta_session_id": r1["meta_session_id"], "cluster_count": 1,
        "consensus_threshold": 0.5, "vote_window_seconds": 60.0, "recent_drift_events": [],
        "last_realignment": None, "realignment_count": 0, "recent_realignments": []}
    assert ok(c.get(f"/v1/region/{rid}/events")) == []
    assert ok(c.get(f"/v1/metrics/{r1['meta_session_id']}"))["interaction_count"] == 0
    assert detail(c.delete(f"/v1/session/{r1['meta_session_id']}"), 409).startswith("session backs")
    ok(c.delete(f"/v1/cluster/{cid}"))  # deleting a cluster detaches it
    assert ok(c.get(f"/v1/region/{rid}"))["cluster_count"] == 0
    cid = cluster(c)
    ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    assert ok(c.delete(f"/v1/region/{rid}/clusters/{cid}")) == {"removed": True}
    assert detail(c.delete(f"/v1/region/{rid}/clusters/{cid}"), 404) == "Cluster or region not found"
    assert detail(c.delete(f"/v1/region/nope/clusters/{cid}"), 404) == "Cluster or region not found"
    assert ok(c.delete(f"/v1/region/{rid}")) == {"deleted": True}
    for r in (c.get(f"/v1/region/{rid}"), c.delete(f"/v1/region/{rid}"), c.get(f"/v1/region/{rid}/events")):
        assert detail(r, 404) == NOT_FOUND["region"]
    assert detail(c.get(f"/v1/metrics/{r1['meta_session_id']}"), 404) == "Session not found"


def test_region_validation(c):
    items = c.post("/v1/region/", json={"name": "r", "consensus_threshold": -0.1, "vote_window_seconds": 0}).json()
    assert [(i["type"], i["loc"][-1]) for i in items["detail"]] == [
        ("greater_than_equal", "consensus_threshold"), ("greater_than", "vote_window_seconds")]
    r = c.post("/v1/region/", json={"name": "r", "vote_window_seconds": 86400.5})
    assert r.json()["detail"][0]["type"] == "less_than_equal"
    rid = region(c)["region_id"]
    for q in ("limit=0", "limit=1001", "limit=x"):
        assert c.get(f"/v1/region/{rid}/events?{q}").status_code == 422
    assert c.get(f"/v1/region/{rid}/events?limit=x").json()["detail"][0]["loc"] == ["query", "limit"]


def test_drift_publishes_events_and_a_majority_realigns(clocked):
    c, clock = clocked
    i, j = quiet_axes()[:2]
    a, b = session(c, unit(i)), session(c, unit(j))
    c1 = cluster(c, coupling_factor=0.5)
    for sid in (a, b):
        ok(c.post(f"/v1/cluster/{c1}/members", json={"session_id": sid}))
    r1, r2 = region(c), region(c)
    for r in (r1, r2):
        ok(c.post(f"/v1/region/{r['region_id']}/clusters", json={"cluster_id": c1}))
    out = drift(c, a)
    for r in (r1, r2):  # one event per (cluster, region) pair, and each region realigns
        view = ok(c.get(f"/v1/region/{r['region_id']}"))
        assert view["recent_drift_events"] == [{"cluster_id": c1, "region_id": r["region_id"],
                                                "drift_score": out["drift_score"], "drift_phase": "drifted",
                                                "timestamp": clock.now()}]
        assert view["realignment_count"] == 1 and view["last_realignment"] == clock.now()
        (record,) = view["recent_realignments"]
        assert record["voted_cluster_ids"] == [c1] and record["eligible_cluster_count"] == 1
        assert record["ratio"] == 1.0 and record["consensus_threshold"] == 0.5 and record["sessions_updated"] == 2
        assert ok(c.get(f"/v1/metrics/{r['meta_session_id']}"))["interaction_count"] == 1  # the note
    # r1 realigns toward g = ([1,0] + [0,1])/2 with κ = 0.5: a = [0.948683, 0.316228], b mirrored; then r2
    # toward the new aggregate g' = (a + b)/2 = [0.632456, 0.632456]: a = normalise(½a + ½g') = [0.857493, 0.514496]
    first = [0.75 / math.hypot(0.75, 0.25), 0.25 / math.hypot(0.75, 0.25)]
    g2 = (first[0] + first[1]) / 2
    second = [0.5 * first[0] + 0.5 * g2, 0.5 * first[1] + 0.5 * g2]
    second = [x / math.hypot(*second) for x in second]
    assert second == pytest.approx([0.857493, 0.514496], abs=1e-6)
    got = vector_of(c, a)
    assert [got[i], got[j]] == pytest.approx(second, abs=1e-6)
    assert ok(c.get(f"/v1/region/{r1['region_id']}/events?limit=1"))[0]["cluster_id"] == c1


def test_the_vote_counts_clusters_inside_the_window_only(clocked):
    c, clock = clocked
    i, j = quiet_axes()[:2]
    a, b = session(c, unit(i)), session(c, unit(j))
    c1, c2 = cluster(c, coupling_factor=0.5), cluster(c, coupling_factor=0.5)
    ok(c.post(f"/v1/cluster/{c1}/members", json={"session_id": a}))
    ok(c.post(f"/v1/cluster/{c2}/members", json={"session_id": b}))
    rid = region(c, vote_window_seconds=60)["region_id"]
    for cid in (c1, c2):
        ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    drift(c, a)  # 1/2 is not more than 0.5
    clock.advance(61)
    drift(c, b)  # c1's vote has left the window: 1/2 again
    assert ok(c.get(f"/v1/region/{rid}"))["realignment_count"] == 0
    clock.advance(30)
    drift(c, a)  # c1 and c2 within 60 s: 2/2
    view = ok(c.get(f"/v1/region/{rid}"))
    assert view["realignment_count"] == 1 and len(view["recent_drift_events"]) == 3
    (record,) = view["recent_realignments"]
    assert sorted(record["voted_cluster_ids"]) == sorted([c1, c2]) and record["sessions_updated"] == 2
    # g = ([1,0]·1 + [0,1]·1)/2: each member moves to [0.948683, 0.316228] on its own axes
    assert vector_of(c, a)[i] == pytest.approx(0.948683, abs=1e-6)


def test_cluster_run_drift_reaches_its_regions(c):
    i = quiet_axes()[0]
    cid = cluster(c)
    rid = region(c)["region_id"]
    ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    ok(c.post(f"/v1/cluster/{cid}/store", json={"message": "q", "response": "postgres billing"}))
    out = ok(c.post(f"/v1/cluster/{cid}/run", json={"message": DRIFT_TEXT}))
    if not out["drift_detected"]:
        pytest.skip("the stored answer is not orthogonal to the query under this embedder")  # pragma: no cover
    assert ok(c.get(f"/v1/region/{rid}/events")) == [
        {"cluster_id": cid, "region_id": rid, "drift_score": out["drift_score"], "drift_phase": "drifted",
         "timestamp": pytest.approx(ok(c.get(f"/v1/region/{rid}/events"))[0]["timestamp"])}]
    assert i >= 0


# the observer


def test_observer_needs_creating_first(c):
    for r in (c.get("/v1/observer/summary"), c.post("/v1/observer/sample"), c.get("/v1/observer/anomalies"),
              c.delete("/v1/observer/anomalies"), c.post("/v1/observer/regions", json={"region_id": "x"}),
              c.delete("/v1/observer/regions/x")):
        assert detail(r, 404) == NOT_FOUND["observer"]
    assert detail(c.post("/v1/observer/", json={"region_ids": ["nope"]}), 404) == NOT_FOUND["region"]
    assert detail(c.get("/v1/observer/summary"), 404) == NOT_FOUND["observer"]  # nothing was created
    assert c.post("/v1/observer/", json={"sample_interval_seconds": 0}).json()["detail"][0]["type"] == "greater_than"


def test_observer_create_register_sample_and_anomalies(c):
    made = ok(c.post("/v1/observer/"), 201)  # an absent body is {}
    assert made["registered_regions"] == 0 and made["meta_session_id"].startswith("_observer:")
    again = ok(c.post("/v1/observer", json={"sample_interval_seconds": 5}), 201)
    assert again["observer_id"] == made["observer_id"]
    assert detail(c.delete(f"/v1/session/{made['meta_session_id']}"), 409).startswith("session backs")
    rid = region(c)["region_id"]
    clusters = [cluster(c) for _ in range(4)]
    for cid in clusters:
        ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    for k in range(4):  # [0, 0, 0, 4] interactions: the average is 1.0 and 4 > 3
        ok(c.post(f"/v1/cluster/{clusters[3]}/store", json={"message": f"q{k}", "response": f"answer number {k}"}))
    assert c.post("/v1/observer/regions", json=[rid]).json()["detail"][0]["type"] == "dict_type"
    for body in ({}, {"region_id": ""}, {"region_id": 3}):
        assert detail(c.post("/v1/observer/regions", json=body), 422) == "region_id is required"
    assert detail(c.post("/v1/observer/regions", json={"region_id": "nope"}), 404) == NOT_FOUND["region"]
    assert ok(c.post("/v1/observer/regions", json={"region_id": rid})) == {"registered": True}
    summary = ok(c.get("/v1/observer/summary"))
    assert summary == {"observer_id": made["observer_id"], "registered_regions": 1, "total_clusters_observed": 4,
                       "last_sample_at": None, "anomaly_count": 0, "recent_anomalies": [],
                       "meta_session_id": made["meta_session_id"], "sample_interval_seconds": 30.0}
    sample = ok(c.post("/v1/observer/sample"))
    assert {k: sample[k] for k in ("regions_sampled", "regions_registered", "clusters_sampled", "new_anomalies",
                                   "total_anomalies")} == {"regions_sampled": 1, "regions_registered": 1,
                                                           "clusters_sampled": 4, "new_anomalies": 1,
                                                           "total_anomalies": 1}
    assert sample["sample_duration_ms"] >= 0
    (anomaly,) = ok(c.get("/v1/observer/anomalies"))
    assert anomaly["anomaly_type"] == "cluster_divergence" and anomaly["affected_cluster_ids"] == [clusters[3]]
    assert anomaly["description"] == f"Cluster {clusters[3]} has 4 interactions vs region avg 1.0 (>3x)"
    assert anomaly["severity"] == 0.5 and anomaly["timestamp"] == sample["sampled_at"]
    ok(c.post("/v1/observer/sample"))
    newest = ok(c.get("/v1/observer/anomalies?limit=1"))
    assert len(newest) == 1 and newest[0]["anomaly_id"] != anomaly["anomaly_id"]
    summary = ok(c.get("/v1/observer/summary"))
    assert summary["anomaly_count"] == 2 and summary["last_sample_at"] == sample["sampled_at"] or \
        summary["last_sample_at"] >= sample["sampled_at"]
    assert [a["anomaly_id"] for a in summary["recent_anomalies"]][-1] == anomaly["anomaly_id"]
    # the meta-session's vector is the normalised weighted mean of the non-zero aggregates: cluster 3's alone
    assert vector_of(c, made["meta_session_id"]) == pytest.approx(vector_of(c, clusters[3]))
    assert c.get("/v1/observer/anomalies?limit=0").status_code == 422
    assert ok(c.delete("/v1/observer/anomalies")) == {"cleared": 2}
    assert ok(c.get("/v1/observer/anomalies")) == []
    assert ok(c.delete(f"/v1/observer/regions/{rid}")) == {"unregistered": True}
    assert ok(c.delete(f"/v1/observer/regions/{rid}")) == {"unregistered": True}
    assert ok(c.post("/v1/observer/", json={"region_ids": [rid]}), 201)["registered_regions"] == 1
    ok(c.delete(f"/v1/region/{rid}"))  # a deleted region's registration goes with it
    assert ok(c.get("/v1/observer/summary"))["registered_regions"] == 0


# the network


def test_transfer_moves_the_target_a_capped_step(c):
    src, tgt, empty = session(c, unit(0)), session(c, unit(1)), session(c)
    out = ok(c.post("/v1/network/transfer", json={"source_session_id": src, "target_session_id": tgt}))
    assert out == {"source_session_id": src, "target_session_id": tgt, "delta_norm": 1.414214}
    assert vector_of(c, tgt)[:2] == pytest.approx([0.117824, 0.993034], abs=1e-6)
    assert vector_of(c, src)[:2] == [1.0, 0.0]
    assert ok(c.post("/v1/network/transfer", json={"source_session_id": src, "target_session_id": empty,
                                                    "max_weight": 2}))["delta_norm"] == 0.0
    assert detail(c.post("/v1/network/transfer", json={"source_session_id": src, "target_session_id": "nope"}),
                  404) == "One or both sessions not found"
    r = c.post("/v1/network/transfer", json={"source_session_id": src, "target_session_id": tgt, "max_weight": -1})
    assert r.json()["detail"][0]["type"] == "greater_than_equal"
    assert c.post("/v1/network/transfer", json={"source_session_id": src}).json()["detail"][0]["loc"] == [
        "body", "target_session_id"]


def test_user_partitions(c):
    assert ok(c.get("/v1/network/users/active")) == {"active_user": "default"}
    assert ok(c.post("/v1/network/users/switch", json={"user_id": "alice"})) == {
        "active_user": "alice", "previous_user": "default"}
    assert ok(c.post("/v1/network/users/switch", json={"user_id": "alice"})) == {
        "active_user": "alice", "previous_user": "alice"}
    assert ok(c.get("/v1/network/users/active")) == {"active_user": "alice"}
    state = ok(c.post("/v1/network/users/alice/serialize"))
    assert state["user_id"] == "alice" and state["state"]["format"] == "stigmer.semvec.state/1"
    assert detail(c.post("/v1/network/users/bob/serialize"), 404) == "User partition 'bob' not found"
    assert c.post("/v1/network/users/switch", json={"user_id": ""}).json()["detail"][0]["type"] == "string_too_short"
    assert c.post("/v1/network/users/switch", json={"user_id": "u" * 129}).status_code == 422
    # a partition is a session of the tenant under `_partition:<16 hex of SHA-256(tenant)>:<user_id>`
    ok(c.post("/v1/network/users/switch", json={"user_id": "u" * 128}))
    pid = f"_partition:{hashlib.sha256(b'default').hexdigest()[:16]}:{'u' * 128}"
    assert ok(c.get(f"/v1/metrics/{pid}"))["interaction_count"] == 0
    cid = cluster(c)
    assert ok(c.post(f"/v1/cluster/{cid}/members", json={"session_id": pid}))["added"] is True
    ok(c.delete(f"/v1/session/{pid}"))  # an ordinary session: it can be deleted, and its serialisation goes too
    assert detail(c.post(f"/v1/network/users/{'u' * 128}/serialize"), 404) == f"User partition '{'u' * 128}' not found"


def test_consensus_moves_trust_only(c):
    p = session(c, unit(0))
    out = ok(c.post("/v1/network/consensus", json={"proposer_session_id": p, "target_embedding": unit(0, a=2.0)}))
    assert out == {"accepted": True, "trust_scores": {p: pytest.approx(0.6)}}
    out = ok(c.post("/v1/network/consensus", json={"proposer_session_id": p, "target_embedding": unit(0, a=-1.0)}))
    assert out == {"accepted": False, "trust_scores": {p: pytest.approx(0.48)}}  # 0.8·0.6 + 0
    assert vector_of(c, p)[0] == 1.0
    by_text = ok(c.post("/v1/session/create", json={"template_text": "billing database"}))["session_id"]
    out = ok(c.post("/v1/network/consensus", json={"proposer_session_id": by_text, "target_text": "billing database"}))
    assert out == {"accepted": True, "trust_scores": {p: pytest.approx(0.48), by_text: pytest.approx(0.6)}}
    assert list(ok(c.get("/v1/network/consensus/trust"))["trust_scores"]) == [p, by_text]  # first-proposal order
    ok(c.delete(f"/v1/session/{by_text}"))
    assert detail(c.post("/v1/network/consensus", json={"proposer_session_id": "nope", "target_embedding": unit(0)}),
                  404) == "Proposer session not found"
    r = c.post("/v1/network/consensus", json={"proposer_session_id": p})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "target_embedding"]
    assert detail(c.post("/v1/network/consensus", json={"proposer_session_id": p, "target_embedding": [1, 0, 0]}),
                  422) == f"embedding dimension 3 does not match the server dimension {D}"
    assert detail(c.post("/v1/network/consensus", json={"proposer_session_id": p, "target_embedding": [0.0] * D}),
                  422) == "embedding must have a non-zero norm"
    ok(c.delete(f"/v1/session/{p}"))
    assert ok(c.get("/v1/network/consensus/trust")) == {"trust_scores": {}}


# tenancy


def test_another_tenants_resources_are_missing(make_client):
    c = make_client(admin_key=ADMIN_KEY)
    k1, k2 = new_key(c, "t1"), new_key(c, "t2")
    h1, h2 = {"X-API-Key": k1}, {"Authorization": f"Bearer {k2}"}
    sid = ok(c.post("/v1/session/create", json={"template_embedding": unit(0)}, headers=h1))["session_id"]
    cid = ok(c.post("/v1/cluster/", json={"name": "c"}, headers=h1), 201)["cluster_id"]
    rid = ok(c.post("/v1/region/", json={"name": "r"}, headers=h1), 201)["region_id"]
    ok(c.post(f"/v1/cluster/{cid}/members", json={"session_id": sid}, headers=h1))
    ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}, headers=h1))
    ok(c.post("/v1/observer/", json={"region_ids": [rid]}, headers=h1), 201)
    ok(c.post("/v1/network/consensus", json={"proposer_session_id": sid, "target_embedding": unit(0)}, headers=h1))
    ok(c.post("/v1/network/users/switch", json={"user_id": "alice"}, headers=h1))
    assert ok(c.get("/v1/cluster/", headers=h2)) == [] and ok(c.get("/v1/region", headers=h2)) == []
    for r in (c.get(f"/v1/cluster/{cid}", headers=h2), c.delete(f"/v1/cluster/{cid}", headers=h2),
              c.post(f"/v1/cluster/{cid}/feedback", headers=h2),
              c.post(f"/v1/cluster/{cid}/members", json={"session_id": sid}, headers=h2),
              c.post(f"/v1/cluster/{cid}/store", json={"message": "q", "response": "a"}, headers=h2),
              c.post(f"/v1/cluster/{cid}/run", json={"message": "q"}, headers=h2)):
        assert detail(r, 404) == NOT_FOUND["cluster"]
    assert detail(c.delete(f"/v1/cluster/{cid}/members/{sid}", headers=h2), 404) == "Member or cluster not found"
    for r in (c.get(f"/v1/region/{rid}", headers=h2), c.get(f"/v1/region/{rid}/events", headers=h2),
              c.delete(f"/v1/region/{rid}", headers=h2),
              c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}, headers=h2),
              c.post("/v1/observer/", json={"region_ids": [rid]}, headers=h2)):
        assert detail(r, 404) == NOT_FOUND["region"]
    assert detail(c.delete(f"/v1/region/{rid}/clusters/{cid}", headers=h2), 404) == "Cluster or region not found"
    assert detail(c.get("/v1/observer/summary", headers=h2), 404) == NOT_FOUND["observer"]
    own = ok(c.post("/v1/cluster/", json={"name": "mine"}, headers=h2), 201)["cluster_id"]
    assert detail(c.post(f"/v1/cluster/{own}/members", json={"session_id": sid}, headers=h2), 404) == (
        "Session not found")
    assert detail(c.post("/v1/network/transfer", json={"source_session_id": sid, "target_session_id": sid},
                         headers=h2), 404) == "One or both sessions not found"
    assert detail(c.post("/v1/network/consensus", json={"proposer_session_id": sid, "target_embedding": unit(0)},
                         headers=h2), 404) == "Proposer session not found"
    assert ok(c.get("/v1/network/consensus/trust", headers=h2)) == {"trust_scores": {}}
    assert ok(c.get("/v1/network/users/active", headers=h2)) == {"active_user": "default"}
    assert detail(c.post("/v1/network/users/alice/serialize", headers=h2), 404) == "User partition 'alice' not found"
    # and the owner still sees everything
    assert ok(c.get(f"/v1/cluster/{cid}", headers=h1))["member_count"] == 1
    assert ok(c.get("/v1/observer/summary", headers=h1))["total_clusters_observed"] == 1


def test_coordination_routes_need_a_key_and_write_scope(make_client):
    c = make_client(admin_key=ADMIN_KEY)
    assert detail(c.get("/v1/cluster/"), 401) == "Missing license token"
    reader = new_key(c, "t1", scopes=("read",))
    assert ok(c.get("/v1/cluster/", headers={"X-API-Key": reader})) == []
    assert detail(c.post("/v1/cluster/", json={"name": "c"}, headers={"X-API-Key": reader}), 403) == (
        "Insufficient scope")
    assert detail(c.get("/v1/cluster/x/nothing", headers={"X-API-Key": reader}), 404) == "Not Found"
    r = c.put("/v1/cluster/", headers={"X-API-Key": reader})
    assert detail(r, 405) == "Method Not Allowed" and r.headers["Allow"] == "POST, GET"
    assert detail(c.get("/v1/network/consensus", headers={"X-API-Key": reader}), 405) == "Method Not Allowed"


def test_sampling_finds_convergence_across_regions(c):
    r1, r2 = region(c)["region_id"], region(c)["region_id"]
    ids = [cluster(c) for _ in range(3)]
    for cid, rid in zip(ids, (r1, r1, r2)):
        ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
        for _ in range(3):  # similarities [0, 1, 1]: variance 0.22 > 0.05, so every one is in "instability"
            ok(c.post(f"/v1/cluster/{cid}/store", json={"message": "same question", "response": "same answer"}))
    assert {ok(c.get(f"/v1/cluster/{cid}"))["phase"] for cid in ids} == {"instability"}
    ok(c.post("/v1/observer/", json={"region_ids": [r1, r2]}), 201)
    assert ok(c.post("/v1/observer/sample"))["clusters_sampled"] == 3
    (anomaly,) = ok(c.get("/v1/observer/anomalies"))
    assert anomaly["anomaly_type"] == "cross_cluster_convergence" and anomaly["affected_cluster_ids"] == ids
    assert anomaly["description"] == "3 clusters across 2 regions converged to phase 'instability'"
    assert anomaly["severity"] == pytest.approx(0.2)


def test_bad_input_never_answers_5xx(c):
    """Random bodies of wrong types, sizes and shapes on every writing route: a 4xx, never a 500."""
    import json
    import random

    rnd = random.Random(7)
    values = [None, True, 0, -1, 1.5, 1e308, "", "x", "a" * 300, [], [1], ["r"], {}, {"a": 1}, [0.0] * D, [1.0] * D]
    fields = ["name", "aggregation_mode", "coupling_factor", "drift_exempt", "session_id", "message", "response",
              "dedup_threshold", "consensus_threshold", "vote_window_seconds", "cluster_id", "sample_interval_seconds",
              "region_ids", "region_id", "source_session_id", "target_session_id", "max_weight", "user_id",
              "proposer_session_id", "target_embedding", "target_text", "reset_context"]
    cid, rid, sid = cluster(c), region(c)["region_id"], session(c)
    ok(c.post("/v1/observer/"), 201)
    routes = [("POST", "/v1/cluster/"), ("POST", f"/v1/cluster/{cid}/members"), ("POST", f"/v1/cluster/{cid}/store"),
              ("POST", f"/v1/cluster/{cid}/run"), ("POST", "/v1/region"), ("POST", f"/v1/region/{rid}/clusters"),
              ("GET", f"/v1/region/{rid}/events?limit=1e3"), ("POST", "/v1/observer/"),
              ("POST", "/v1/observer/regions"), ("GET", "/v1/observer/anomalies?limit=-1"),
              ("POST", "/v1/network/transfer"), ("POST", "/v1/network/users/switch"),
              ("POST", "/v1/network/consensus"), ("DELETE", "/v1/cluster/%00/members/%2F"),
              ("POST", "/v1/network/users/%20/serialize")]
    ids = {"session_id": sid, "cluster_id": cid, "region_id": rid, "proposer_session_id": sid,
           "source_session_id": sid, "target_session_id": sid}
    statuses = set()
    for _ in range(300):
        method, path = rnd.choice(routes)
        body = {f: rnd.choice(values) for f in rnd.sample(fields, rnd.randint(0, 6))}
        if rnd.random() < 0.5:
            body = {**ids, **body}
        raw = json.dumps(body) if rnd.random() < 0.9 else rnd.choice(["[", "1", "null", '"x"', ""])
        r = c.request(method, path, content=raw)
        assert r.status_code < 500, (method, path, raw[:200], r.text[:300])
        statuses.add(r.status_code)
    assert {200, 201, 404, 422} <= statuses


def test_a_second_binding_publishes_nothing_twice(c):
    from stigmer.engine.coordination import Coordination

    svc = c.app.state.services
    assert Coordination(svc.store, svc.sessions).sessions is svc.coordination.sessions
    a = session(c, unit(quiet_axes()[0]))
    cid = cluster(c)
    ok(c.post(f"/v1/cluster/{cid}/members", json={"session_id": a}))
    rid = region(c, consensus_threshold=1)["region_id"]
    ok(c.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid}))
    drift(c, a)
    assert len(ok(c.get(f"/v1/region/{rid}/events"))) == 1
