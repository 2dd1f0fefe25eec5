"""Semvec coordination across replicas: two real `stigmer serve` processes on one PostgreSQL database. A cluster
made on one is driven from the other, concurrent stores through both are all counted, and a drift seen by one
replica realigns sessions that the other then serves.

Needs PostgreSQL (127.0.0.1:5432 by default); without one these tests skip with the reason printed, and fail
instead under TEST_REQUIRE_POSTGRES.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from stigmer.support.embeddings import HashEmbedder

D = 384
DRIFT_TEXT = "kubernetes helm rollout"


def axis(i: int) -> list[float]:
    v = [0.0] * D
    v[i] = 1.0
    return v


async def test_a_cluster_made_on_one_replica_is_driven_from_the_other(replicas):
    a, b = replicas[0], replicas[1]
    q = HashEmbedder(D).vectors([DRIFT_TEXT])[0]
    i, j = [k for k in range(D) if q[k] == 0.0][:2]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, \
            httpx.AsyncClient(base_url=b.url, timeout=30) as cb:
        s1 = (await ca.post("/v1/session/create", json={"template_embedding": axis(i)})).json()["session_id"]
        s2 = (await ca.post("/v1/session/create", json={"template_embedding": axis(j)})).json()["session_id"]
        r = await ca.post("/v1/cluster/", json={"name": "replicated", "coupling_factor": 0.5})
        assert r.status_code == 201, r.text
        cid = r.json()["cluster_id"]
        for sid in (s1, s2):  # members added through the other replica
            r = await cb.post(f"/v1/cluster/{cid}/members", json={"session_id": sid})
            assert r.status_code == 200, r.text
        rid = (await cb.post("/v1/region", json={"name": "r"})).json()["region_id"]
        assert (await ca.post(f"/v1/region/{rid}/clusters", json={"cluster_id": cid})).status_code == 200

        # concurrent stores into the backing session through both replicas: every one is a turn
        async def store(client: httpx.AsyncClient, k: int) -> int:
            r = await client.post(f"/v1/cluster/{cid}/store", json={"message": f"question {k}",
                                                                    "response": f"answer number {k}"})
            return r.status_code
        codes = await asyncio.gather(*[store(ca if k % 2 else cb, k) for k in range(20)])
        assert codes == [200] * 20
        view = (await ca.get(f"/v1/cluster/{cid}")).json()
        assert view["member_count"] == 2 and view["interaction_count"] == 20 and view["total_memories"] == 20
        assert view["aggregate_vector"][i] == pytest.approx(0.5) and view["aggregate_vector"][j] == pytest.approx(0.5)

        # a drift on replica B realigns the members; replica A serves the result
        out = (await cb.post("/v1/run", json={"session_id": s1, "message": DRIFT_TEXT})).json()
        assert out["drift_detected"] is True
        region = (await ca.get(f"/v1/region/{rid}")).json()
        assert region["realignment_count"] == 1 and region["recent_realignments"][0]["sessions_updated"] == 2
        state = (await ca.get(f"/v1/session/{s1}/export")).json()["state_dict"]["semantic_state"]
        assert state[i] == pytest.approx(0.948683, abs=1e-6) and state[j] == pytest.approx(0.316228, abs=1e-6)

        # feedback from A, read on B
        assert (await ca.post(f"/v1/cluster/{cid}/feedback")).json() == {"cluster_id": cid, "sessions_updated": 2}
        assert (await cb.get("/v1/cluster")).json()[-1]["cluster_id"] == cid
        assert (await cb.delete(f"/v1/cluster/{cid}")).json() == {"deleted": True}
        assert (await ca.get(f"/v1/cluster/{cid}")).status_code == 404
        assert (await ca.get(f"/v1/region/{rid}")).json()["cluster_count"] == 0


async def test_concurrent_observer_creates_through_two_replicas_make_one_observer(replicas):
    a, b = replicas[0], replicas[1]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, \
            httpx.AsyncClient(base_url=b.url, timeout=30) as cb:
        answers = await asyncio.gather(*[(ca if k % 2 else cb).post("/v1/observer/") for k in range(10)])
        assert {r.status_code for r in answers} == {201}
        assert len({r.json()["observer_id"] for r in answers}) == 1
        sid = (await ca.post("/v1/session/create", json={"template_embedding": axis(0)})).json()["session_id"]
        votes = await asyncio.gather(*[(ca if k % 2 else cb).post(
            "/v1/network/consensus", json={"proposer_session_id": sid, "target_embedding": axis(0)})
            for k in range(10)])
        assert {r.status_code for r in votes} == {200}
        # ten accepted proposals, each applied once in turn: 1 − 0.5·0.8^10
        trust = (await cb.get("/v1/network/consensus/trust")).json()["trust_scores"][sid]
        assert trust == pytest.approx(1 - 0.5 * 0.8 ** 10)
