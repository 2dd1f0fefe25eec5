"""The native lease routes and fenced key writes, through the whole app in-process (both stores under
`make test-postgres`)."""

from __future__ import annotations

import pytest

from stigmer.clock import ManualClock
from support import app_settings

ROUTED = {"X-Request-ID": "lease-test"}


@pytest.fixture
def clocked(tmp_path):
    from starlette.testclient import TestClient

    from stigmer.app import create_app

    clock = ManualClock()
    settings = app_settings({"data_dir": str(tmp_path / "app"), "lease_max_wait_seconds": 5})
    with TestClient(create_app(settings, clock), base_url="http://localhost", raise_server_exceptions=False) as c:
        yield c, clock


def acquire(c, resource="jobs/42", holder="w1", **body):
    return c.post(f"/v1/leases/{resource}", json={"holder": holder, **body})


def test_acquire_renew_release_and_get(clocked):
    c, clock = clocked
    r = acquire(c, ttl=30)
    assert r.status_code == 201, r.text
    lease = r.json()
    assert lease["fencing_token"] == 1 and lease["fence"] == "jobs/42:1" and lease["active"] is True
    assert int(r.headers["x-stigmer-revision"]) >= 1
    busy = acquire(c, holder="w2")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "lease_conflict"
    assert busy.json()["error"]["details"]["holder"] == "w1"
    clock.advance(20)
    renewed = c.patch("/v1/leases/jobs/42", json={"lease_id": lease["lease_id"], "ttl": 30})
    assert renewed.status_code == 200 and renewed.json()["expires_at"] > lease["expires_at"]
    assert c.get("/v1/leases/jobs/42").json()["renewed_at"] == renewed.json()["renewed_at"]
    gone = c.delete("/v1/leases/jobs/42", params={"fencing_token": "1"})
    assert gone.status_code == 200 and gone.json()["active"] is False and gone.json()["released_at"]
    assert c.delete("/v1/leases/jobs/42", params={"fencing_token": "1"}).json()["error"]["code"] == "not_found"
    assert acquire(c, holder="w2").json()["fencing_token"] == 2
    assert c.get("/v1/leases/never").status_code == 404


def test_expiry_renew_and_errors(clocked):
    c, clock = clocked
    lease = acquire(c, ttl=10).json()
    clock.advance(10)
    expired = c.patch("/v1/leases/jobs/42", json={"lease_id": lease["lease_id"]})
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "lease_expired"
    assert c.get("/v1/leases/jobs/42").json()["active"] is False
    assert acquire(c, holder="w2").status_code == 201  # an expired lease stops blocking at once
    superseded = c.patch("/v1/leases/jobs/42", json={"lease_id": lease["lease_id"]})
    assert superseded.status_code == 404
    for bad in ({}, {"holder": ""}, {"holder": "w", "ttl": 0}, {"holder": "w", "wait": 6}, {"holder": "w", "x": 1}):
        r = c.post("/v1/leases/other", json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", (bad, r.text)
    assert c.post("/v1/leases/other", content=b"{").json()["error"]["code"] == "invalid_json"
    assert c.patch("/v1/leases/jobs/42", json={}).status_code == 400
    assert c.delete("/v1/leases/jobs/42").status_code == 400
    assert c.delete("/v1/leases/jobs/42", params={"fencing_token": "x"}).status_code == 400


@pytest.mark.parametrize("headers", [{}, ROUTED], ids=["fast-path-shape", "routed"])
def test_a_write_with_a_stale_fence_is_refused_on_every_key_write_route(clocked, headers):
    c, clock = clocked
    first = acquire(c, ttl=10).json()
    old = {"X-Stigmer-Fence": first["fence"], **headers}
    assert c.put("/v1/kv/app/out", json=1, headers=old).status_code == 201
    clock.advance(10)
    second = acquire(c, holder="w2", ttl=10).json()
    attempts = [
        c.put("/v1/kv/app/out", json=2, headers=old),
        c.patch("/v1/kv/app/n", json={"op": "incr"}, headers=old),
        c.patch("/v1/kv/app/out", content=b'{"a": 1}', headers={**old, "Content-Type": "application/merge-patch+json"}),
        c.delete("/v1/kv/app/out", headers=old),
        c.post("/v1/txn", json={"ops": [{"op": "put", "namespace": "app", "key": "out", "value": 3}]}, headers=old),
    ]
    for r in attempts:
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "fence_stale" and err["details"]["current_token"] == 2 and err["request_id"]
    assert c.get("/v1/kv/app/out").json()["value"] == 1 and c.get("/v1/kv/app/n").status_code == 404
    new = {"X-Stigmer-Fence": second["fence"], **headers}
    assert c.put("/v1/kv/app/out", json=4, headers=new).status_code == 200
    assert c.post("/v1/txn", json={"ops": [{"op": "incr", "namespace": "app", "key": "n"}]}, headers=new).status_code == 200
    assert c.put("/v1/kv/app/out", json=5, headers={"X-Stigmer-Fence": "nonsense"}).status_code == 400


def test_the_lease_namespace_is_read_only_to_key_routes(clocked):
    c, _ = clocked
    acquire(c, ttl=10)
    mirror = c.get("/v1/kv/_leases/jobs/42")
    assert mirror.status_code == 200 and mirror.json()["value"]["holder"] == "w1"
    for r in (c.put("/v1/kv/_leases/jobs/42", json=1), c.delete("/v1/kv/_leases/jobs/42"),
              c.patch("/v1/kv/_leases/jobs/42", json={"op": "incr"}),
              c.post("/v1/txn", json={"ops": [{"op": "delete", "namespace": "_leases", "key": "jobs/42"}]})):
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert c.get("/v1/kv/_leases/jobs/42").json()["version"] == 1


def test_lease_events_are_in_the_change_feed(clocked):
    c, clock = clocked
    lease = acquire(c, ttl=10).json()
    c.patch("/v1/leases/jobs/42", json={"lease_id": lease["lease_id"]})
    c.delete("/v1/leases/jobs/42", params={"lease_id": lease["lease_id"]})
    acquire(c, ttl=5)
    clock.advance(5)
    acquire(c, holder="w3", ttl=5)  # records the unswept expiry first
    r = c.get("/v1/watch", params={"namespace": "_leases", "index": "0", "wait": "0"})
    kinds = [ch["type"] for cs in r.json()["events"] for ch in cs["changes"]]
    assert kinds == ["put", "put", "delete", "put", "expire", "put"], r.text
    history = c.get("/v1/history/_leases/jobs/42").json()["history"]
    assert [h["type"] for h in history][:2] == ["put", "expire"]


def test_a_fence_per_transaction_op(clocked):
    c, clock = clocked
    a = acquire(c, "res/a").json()
    b = acquire(c, "res/b").json()
    ops = [{"op": "put", "namespace": "t", "key": "x", "value": 1, "fence": a["fence"]},
           {"op": "incr", "namespace": "t", "key": "n", "fence": b["fence"]}]
    assert c.post("/v1/txn", json={"ops": ops}).status_code == 200
    c.delete("/v1/leases/res/b", params={"lease_id": b["lease_id"]})
    acquire(c, "res/b", holder="w2")
    r = c.post("/v1/txn", json={"ops": ops})  # b's lease moved on: the whole transaction is refused
    assert r.status_code == 409 and r.json()["error"]["code"] == "fence_stale"
    assert r.json()["error"]["details"]["resource"] == "res/b"
    assert c.get("/v1/kv/t/n").json()["value"] == 1 and c.get("/v1/kv/t/x").json()["version"] == 1
    # an op's own fence wins over the header, which fences the ops that name none
    r = c.post("/v1/txn", json={"ops": [ops[0], {"op": "put", "namespace": "t", "key": "y", "value": 2}]},
               headers={"X-Stigmer-Fence": "res/b:2"})
    assert r.status_code == 200 and c.get("/v1/kv/t/y").json()["value"] == 2
    r = c.post("/v1/txn", json={"ops": [{"op": "put", "namespace": "t", "key": "y", "value": 3, "fence": "bad"}]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "fence"
