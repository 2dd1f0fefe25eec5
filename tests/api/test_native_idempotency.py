"""Idempotency-Key on the native writes, through the whole app in-process (both stores under
`make test-postgres`): replays, conflicts, released keys, and the key never skipping a check."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from stigmer.app import create_app
from stigmer.clock import ManualClock
from support import app_settings, new_key, revision, stored

K = {"Idempotency-Key": "req-1"}


def keyed(key: str = "req-1", **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


def test_a_repeated_put_replays_the_first_answer_and_writes_nothing(client):
    first = client.put("/v1/kv/app/a", json={"x": 1}, headers=K)
    assert first.status_code == 201 and "idempotency-replayed" not in first.headers
    rev = revision(client, "default")
    again = client.put("/v1/kv/app/a", json={"x": 1}, headers=K)
    assert again.status_code == 201 and again.headers["idempotency-replayed"] == "true"
    assert again.content == first.content
    for name in ("etag", "x-stigmer-revision", "content-type"):
        assert again.headers[name] == first.headers[name], name
    assert again.headers["x-request-id"] != first.headers["x-request-id"]  # per request, not replayed
    assert revision(client, "default") == rev  # the replay did not write
    assert stored(client, "default", "app", "a").version == 1
    plain = client.put("/v1/kv/app/a", json={"x": 1})  # no key: a write like any other
    assert plain.status_code == 200 and stored(client, "default", "app", "a").version == 2


def test_member_order_and_spacing_do_not_change_the_request(client):
    first = client.put("/v1/kv/app/o", content=b'{"a": 1, "b": {"c": 2, "d": 3}}', headers=K)
    again = client.put("/v1/kv/app/o", content=b'{"b":{"d":3,"c":2},"a":1}', headers=K)
    assert again.headers.get("idempotency-replayed") == "true" and again.content == first.content


@pytest.mark.parametrize("other", [
    {"json": {"x": 2}},  # another body
    {"path": "/v1/kv/app/b"},  # another key
    {"headers": keyed(**{"If-Match": '"1"'})},  # another precondition
    {"params": {"ttl": "30"}},  # another query
    {"method": "PATCH", "json": {"op": "incr"}},  # another method
])
def test_the_same_key_for_another_request_is_refused(client, other):
    assert client.put("/v1/kv/app/a", json={"x": 1}, headers=K).status_code == 201
    r = client.request(other.get("method", "PUT"), other.get("path", "/v1/kv/app/a"), json=other.get("json", {"x": 1}),
                       params=other.get("params"), headers=other.get("headers", K))
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "idempotency_conflict" and err["request_id"] and "Idempotency-Key" in err["message"]
    assert stored(client, "default", "app", "a").version == 1 and stored(client, "default", "app", "b") is None


def test_incr_with_a_key_twice_increments_once(client):
    answers = [client.patch("/v1/kv/app/n", json={"op": "incr", "amount": 5}, headers=K) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201] and answers[0].content == answers[1].content
    assert answers[1].headers["idempotency-replayed"] == "true"
    assert stored(client, "default", "app", "n").value == b"5"
    other = client.patch("/v1/kv/app/n", json={"op": "incr", "amount": 5}, headers=keyed("req-2"))
    assert other.json()["value"] == 10  # another key is another request


def test_a_refused_request_does_not_consume_the_key(client):
    client.put("/v1/kv/app/a", json=1)
    stale = client.put("/v1/kv/app/a", json=2, headers=keyed(**{"If-Match": '"9"'}))
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    again = client.put("/v1/kv/app/a", json=2, headers=keyed(**{"If-Match": '"9"'}))
    assert again.status_code == 409 and "idempotency-replayed" not in again.headers  # run again, not replayed
    bad = client.put("/v1/kv/app/a", content=b"{", headers=K)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    fixed = client.put("/v1/kv/app/a", json=2, headers=keyed(**{"If-Match": '"1"'}))  # the corrected retry
    assert fixed.status_code == 200 and stored(client, "default", "app", "a").version == 2
    assert client.put("/v1/kv/app/a", json=2, headers=keyed(**{"If-Match": '"1"'})).headers["idempotency-replayed"]


def test_the_key_header_is_checked(client):
    too_long = client.put("/v1/kv/app/a", json=1, headers=keyed("k" * 256))
    assert too_long.status_code == 400
    err = too_long.json()["error"]
    assert err["code"] == "invalid_argument" and err["details"]["field"] == "Idempotency-Key"
    assert err["message"] == "Idempotency-Key must be at most 255 characters"
    assert stored(client, "default", "app", "a") is None
    assert client.put("/v1/kv/app/a", json=1, headers=keyed("k" * 255)).status_code == 201
    for _ in range(2):  # empty = absent: both run
        assert client.put("/v1/kv/app/e", json=1, headers=keyed("")).status_code in (200, 201)
    assert stored(client, "default", "app", "e").version == 2


def test_delete_txn_and_leases_replay(client):
    client.put("/v1/kv/app/d", json=1)
    gone = client.delete("/v1/kv/app/d", headers=K)
    again = client.delete("/v1/kv/app/d", headers=K)
    assert gone.status_code == again.status_code == 200 and again.content == gone.content  # not a 404
    body = {"ops": [{"op": "incr", "namespace": "app", "key": "t"}, {"op": "put", "namespace": "app", "key": "u",
                                                                       "value": True}]}
    txns = [client.post("/v1/txn", json=body, headers=keyed("txn-1")) for _ in range(2)]
    assert txns[0].status_code == 200 and txns[1].content == txns[0].content
    assert txns[1].headers["idempotency-replayed"] == "true" and stored(client, "default", "app", "t").value == b"1"
    taken = [client.post("/v1/leases/jobs/1", json={"holder": "w1", "ttl": 30}, headers=keyed("acq")) for _ in range(2)]
    assert [t.status_code for t in taken] == [201, 201] and taken[1].json()["lease_id"] == taken[0].json()["lease_id"]
    lease_id = taken[0].json()["lease_id"]
    renewed = [client.patch("/v1/leases/jobs/1", json={"lease_id": lease_id}, headers=keyed("ren")) for _ in range(2)]
    assert renewed[1].content == renewed[0].content and renewed[1].headers["idempotency-replayed"] == "true"
    released = [client.delete("/v1/leases/jobs/1", params={"lease_id": lease_id}, headers=keyed("rel"))
                for _ in range(2)]
    assert [r.status_code for r in released] == [200, 200]  # the second would be a 404 without the key


def test_keys_belong_to_a_tenant_and_a_credential(keyed_client):
    c = keyed_client
    a, b = new_key(c, "t1"), new_key(c, "t1")
    other_tenant = new_key(c, "t2")
    auth = {k: {"Authorization": f"Bearer {v}", **K} for k, v in (("a", a), ("b", b), ("t2", other_tenant))}
    assert c.put("/v1/kv/app/a", json=1, headers=auth["a"]).status_code == 201
    assert c.put("/v1/kv/app/a", json=1, headers=auth["a"]).headers["idempotency-replayed"] == "true"
    # Another credential of the tenant never gets this credential's answer.
    refused = c.put("/v1/kv/app/a", json=1, headers=auth["b"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "idempotency_conflict"
    assert c.put("/v1/kv/app/a", json=1, headers=auth["t2"]).status_code == 201  # another tenant's own key
    assert stored(c, "t1", "app", "a").version == 1 and stored(c, "t2", "app", "a").version == 1


def test_a_record_expires_after_the_retention(tmp_path):
    clock = ManualClock()
    settings = app_settings({"data_dir": str(tmp_path / "app"), "idempotency_retention_seconds": 60})
    with TestClient(create_app(settings, clock), base_url="http://localhost", raise_server_exceptions=False) as c:
        assert c.put("/v1/kv/app/a", json=1, headers=K).status_code == 201
        clock.advance(59)
        assert c.put("/v1/kv/app/a", json=2, headers=K).status_code == 409
        clock.advance(1)
        fresh = c.put("/v1/kv/app/a", json=2, headers=K)  # expired: the key is new again
        assert fresh.status_code == 200 and "idempotency-replayed" not in fresh.headers


def test_cors_lets_browsers_send_the_key(make_client):
    c = make_client(cors_origins="https://app.example")
    r = c.options("/v1/kv/app/a", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
                                           "Access-Control-Request-Headers": "idempotency-key"})
    assert "idempotency-key" in r.headers["access-control-allow-headers"].lower()
    put = c.put("/v1/kv/app/a", json=1, headers={"Origin": "https://app.example", **K})
    assert "idempotency-replayed" in put.headers.get("access-control-expose-headers", "").lower()


def test_claims_tokens_and_keys_routes(keyed_client):
    """Every other native write takes the key too; the two calls that show a secret once refuse it."""
    from support import ADMIN_KEY
    c = keyed_client
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    body = {"subject_type": "t", "subject_id": "i", "statement": "s",
            "evidence": [{"kind": "text_hash", "source": "s", "data": "d", "hash": "0" * 64}]}
    first = c.post("/v1/claims", json=body, headers={**admin, "Idempotency-Key": "c1"})
    again = c.post("/v1/claims", json=body, headers={**admin, "Idempotency-Key": "c1"})
    assert first.status_code == 201 and again.content == first.content
    assert again.headers["idempotency-replayed"] == "true"
    assert len(c.get("/v1/claims", headers=admin).json()["claims"]) == 1
    cid = first.json()["id"]
    runs = [c.post(f"/v1/claims/{cid}/verify", headers={**admin, "Idempotency-Key": "v1"}) for _ in range(2)]
    assert runs[0].content == runs[1].content
    assert len(c.get(f"/v1/claims/{cid}/runs", headers=admin).json()["runs"]) == 1
    for path, payload in (("/v1/tokens", {"name": "t", "scopes": ["read"]}),
                          ("/v1/admin/keys", {"tenant": "default", "scopes": ["read"]})):
        r = c.post(path, json=payload, headers={**admin, "Idempotency-Key": "secret"})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "Idempotency-Key", r.text
    tok = c.post("/v1/tokens", json={"name": "t", "scopes": ["read"]}, headers=admin).json()["token"]["id"]
    gone = [c.delete(f"/v1/tokens/{tok}", headers={**admin, "Idempotency-Key": "r1"}) for _ in range(2)]
    assert gone[0].status_code == 200 and gone[1].headers["idempotency-replayed"] == "true"
