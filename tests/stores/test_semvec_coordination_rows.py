"""The semvec coordination rows (`tx.coordination`) on both stores: order, counts, cascades, caps, tenancy."""

from __future__ import annotations

from stigmer.engine.coordination.records import Anomaly, Cluster, DriftEvent, Observer, Realignment, Region
from stigmer.store import coordination_rows


def _cluster(cid: str, exempt: bool = False) -> Cluster:
    return Cluster(cid, "name-" + cid, "weighted_average", 0.25, exempt, 1.5)


async def _do(store, tenant, fn):
    return await store.submit(tenant, lambda tx: fn(tx.coordination))


async def test_clusters_members_and_tenancy(store):
    def setup(c):
        for cid in ("c2", "c1", "c3"):
            c.insert_cluster(_cluster(cid, exempt=cid == "c3"))
        c.add_member("c1", "s1")
        c.add_member("c1", "s2")
        c.add_member("c1", "s1")  # idempotent
        c.add_member("c2", "s1")
    await _do(store, "t1", setup)
    listed = await _do(store, "t1", lambda c: c.clusters())
    assert [(k.id, n) for k, n in listed] == [("c2", 1), ("c1", 2), ("c3", 0)]
    assert listed[2][0] == Cluster("c3", "name-c3", "weighted_average", 0.25, True, 1.5)
    assert await _do(store, "t1", lambda c: c.members("c1")) == ["s1", "s2"]
    assert await _do(store, "t1", lambda c: c.clusters_of_member("s1")) == ["c1", "c2"]
    # another tenant sees none of it, and may use the same ids
    assert await _do(store, "t2", lambda c: (c.clusters(), c.cluster("c1"), c.members("c1"))) == ([], None, [])
    await _do(store, "t2", lambda c: c.insert_cluster(_cluster("c1")))
    assert await _do(store, "t2", lambda c: c.member_count("c1")) == 0
    assert await _do(store, "t1", lambda c: (c.remove_member("c1", "s2"), c.remove_member("c1", "s2"))) == (True, False)
    await _do(store, "t1", lambda c: c.forget_session("s1"))
    assert await _do(store, "t1", lambda c: [n for _, n in c.clusters()]) == [0, 0, 0]


async def test_regions_events_realignments_and_cascades(store, monkeypatch):
    monkeypatch.setattr(coordination_rows, "EVENTS_KEPT", 3)

    def setup(c):
        c.insert_cluster(_cluster("c1"))
        c.insert_cluster(_cluster("c2"))
        c.insert_region(Region("r1", "one", "m1", 0.5, 60.0, 2.0))
        c.add_region_cluster("r1", "c1")
        c.add_region_cluster("r1", "c2")
        c.add_region_cluster("r1", "c1")
        for i in range(5):
            c.insert_event(DriftEvent("c1" if i % 2 else "c2", "r1", 0.1 * i, "drifted", 10.0 + i))
        c.insert_realignment(Realignment("a1", "r1", 14.5, ["c1", "c2"], 2, 1.0, 0.5, 3))
        c.insert_observer(Observer("o1", "_observer:o1", 30.0, None, 1.0))
        c.register_region("r1")
    await _do(store, "t1", setup)
    got = await _do(store, "t1", lambda c: (c.regions(), c.region_clusters("r1"), c.events("r1", 20),
                                            c.events("r1", 2), c.voted_clusters("r1", 13.0),
                                            c.realignments("r1", 20), c.realignment_count("r1"),
                                            c.regions_of_cluster("c2"), c.owns_session("m1"),
                                            c.owns_session("c1"), c.owns_session("_observer:o1"),
                                            c.owns_session("s9")))
    regions, members, events, newest, voted, realigns, count, of_c2, *owns = got
    assert [(r.id, n) for r, n in regions] == [("r1", 2)]
    assert members == ["c1", "c2"]
    assert [e.timestamp for e in events] == [12.0, 13.0, 14.0]  # only the newest 3 kept, oldest first
    assert [e.timestamp for e in newest] == [13.0, 14.0]
    assert voted == {"c1", "c2"}
    assert realigns == [Realignment("a1", "r1", 14.5, ["c1", "c2"], 2, 1.0, 0.5, 3)] and count == 1
    assert of_c2 == ["r1"] and owns == [True, True, True, False]
    assert await _do(store, "t2", lambda c: (c.region("r1"), c.events("r1", 5), c.owns_session("m1"))) == (
        None, [], False)
    assert await _do(store, "t1", lambda c: c.delete_cluster("c1")) is True
    assert await _do(store, "t1", lambda c: c.region_clusters("r1")) == ["c2"]
    assert await _do(store, "t1", lambda c: (c.delete_region("r1"), c.delete_region("r1"))) == (True, False)
    assert await _do(store, "t1", lambda c: (c.events("r1", 5), c.realignments("r1", 5),
                                             c.observed_regions())) == ([], [], [])


async def test_observer_anomalies_trust_and_users(store, monkeypatch):
    monkeypatch.setattr(coordination_rows, "ANOMALIES_KEPT", 2)

    def setup(c):
        c.insert_observer(Observer("o1", "_observer:o1", 30.0, None, 1.0))
        c.register_region("r1")
        c.register_region("r1")
        c.register_region("r2")
        c.insert_anomalies([Anomaly(f"a{i}", float(i), "systemic_drift", ["c1"], f"d{i}", 0.5) for i in range(3)])
        c.sampled(7.5)
        c.set_trust("s2", 0.6)
        c.set_trust("s1", 0.4)
        c.set_trust("s2", 0.7)
        c.set_active_user("alice")
        c.set_active_user("bob")
    await _do(store, "t1", setup)
    got = await _do(store, "t1", lambda c: (c.observer(), c.observed_regions(), c.anomalies(10), c.anomaly_count(),
                                            c.trust_scores(), c.active_user(), c.unregister_region("r1"),
                                            c.unregister_region("r1")))
    observer, regions, anomalies, count, trust, user, *unregistered = got
    assert observer == Observer("o1", "_observer:o1", 30.0, 7.5, 1.0)
    assert regions == ["r1", "r2"]
    assert [a.anomaly_id for a in anomalies] == ["a2", "a1"] and count == 2  # newest first, capped
    assert anomalies[0].affected_cluster_ids == ["c1"]
    assert trust == {"s2": 0.7, "s1": 0.4} and user == "bob" and unregistered == [True, False]
    assert await _do(store, "t2", lambda c: (c.observer(), c.anomaly_count(), c.trust_scores(),
                                             c.active_user())) == (None, 0, {}, None)
    assert await _do(store, "t1", lambda c: c.clear_anomalies()) == 2
    await _do(store, "t1", lambda c: c.forget_session("s2"))
    assert await _do(store, "t1", lambda c: c.trust_scores()) == {"s1": 0.4}


async def test_member_sessions_reads_the_members_that_exist_in_one_statement(store, clock):
    from stigmer.engine.sessions import Sessions
    from stigmer.support.embeddings import HashEmbedder

    sessions = Sessions(store, HashEmbedder(8), clock)
    for sid in ("s2", "s1"):
        await sessions.create("t1", sid)
    await sessions.create("t2", "s3")

    def setup(c):
        c.insert_cluster(_cluster("c1"))
        for sid in ("s1", "gone", "s2", "s3"):  # s3 is another tenant's: it is not this tenant's session
            c.add_member("c1", sid)
    await _do(store, "t1", setup)
    rows = await _do(store, "t1", lambda c: c.member_sessions("c1"))
    assert [(r.tenant, r.session_id) for r in rows] == [("t1", "s1"), ("t1", "s2")]
    assert await _do(store, "t2", lambda c: c.member_sessions("c1")) == []
