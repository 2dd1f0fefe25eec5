"""Hostile input on every AgentState route: whatever the body, query or path, the answer is the surface's own
error envelope (or a success), never a 500 and never a hang."""

from __future__ import annotations

import json
import random

from agentstate_support import V1, agentstate_app

ROUTES = [("PUT", "states/{}"), ("GET", "states/{}"), ("DELETE", "states/{}"), ("GET", "states/{}/events"),
          ("POST", "states/query"), ("POST", "states/{}/lease"), ("POST", "leases/{}/renew"), ("DELETE", "leases/{}"),
          ("POST", "capability-tokens"), ("GET", "capability-tokens"), ("DELETE", "capability-tokens/{}"),
          ("POST", "claims"), ("GET", "claims"), ("GET", "claims/{}"), ("POST", "claims/{}/verify"),
          ("GET", "claims/{}/verifications"), ("GET", "states/watch")]
SEGMENTS = ["k", "%FF", "%C3%28", "%00", "a%2Fb", "%25", "x" * 1100, "%E2%9C%93", "..", "%20", "watch", "query"]
SCALARS = [None, True, False, 0, -1, 1.5, 2**64, 1e308, "", "x", "\u0000", "$..a", "$.a[99999999999999999999]",
           "as_cap_x", "9" * 400, [], {}]
MEMBERS = ["agent_id", "data", "metadata", "tags", "lease_id", "holder", "ttl_ms", "name", "scopes", "expires_at",
           "subject_type", "subject_id", "statement", "evidence", "kind", "source", "hash", "json_path",
           "expected_value", "predicates", "path", "equals", "json_equals", "at_sequence", "at_time", "limit", "cursor",
           "updated_after", "updated_before"]
PARAMS = ["after", "limit", "at_sequence", "at_time", "cursor", "order", "once", "lease_id", "subject_type"]


def value(rng: random.Random, depth: int = 0):
    pick = rng.random()
    if depth < 3 and pick < 0.2:
        return [value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if depth < 3 and pick < 0.4:
        return {rng.choice(MEMBERS): value(rng, depth + 1) for _ in range(rng.randrange(0, 5))}
    return rng.choice(SCALARS)


VALID = [{"agent_id": "w", "data": {"a": [1, {"b": None}]}, "tags": ["t"]}, {}, {"holder": "h", "ttl_ms": 5000},
         {"name": "n", "scopes": ["state:read"]},
         {"subject_type": "t", "subject_id": "i", "statement": "s", "evidence": [
             {"kind": "json_value", "source": "s", "data": {"a": 1}, "json_path": "$.a", "expected_value": 1},
             {"kind": "state_event", "source": "1", "json_path": "$.a", "expected_value": 1}]},
         {"predicates": [{"path": "$.a[0]", "equals": 1}], "at_sequence": 3, "limit": 2}]


def body(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick > 0.5:  # a valid body of some route with one member changed: gets past the first checks
        obj = dict(rng.choice(VALID))
        if rng.random() < 0.7:
            obj[rng.choice(MEMBERS)] = value(rng)
        return json.dumps(obj).encode()
    if pick < 0.1:
        return rng.choice([b"", b"{", b"nul", b"\xff\xfe", b"[1,2", b'{"a":1,"a":2}', b"1e999", b'"\\ud800"'])
    obj = {rng.choice(MEMBERS): value(rng) for _ in range(rng.randrange(0, 8))}
    if pick < 0.3:
        obj["evidence"] = [{"kind": rng.choice(["text_hash", "json_value", "state_event", "x"]),
                            **{rng.choice(MEMBERS): value(rng) for _ in range(4)}} for _ in range(rng.randrange(1, 4))]
    return json.dumps(obj).encode()


def test_ids_no_store_can_hold_are_unknown(tmp_path):
    with agentstate_app(tmp_path, "nul") as (c, clock):
        for method, path, message in (("POST", "leases/%00/renew", "Lease not found"),
                                      ("DELETE", "leases/a%00b", "Lease not found"),
                                      ("GET", "claims/%00", "Claim not found"),
                                      ("POST", "claims/%00/verify", "Claim not found"),
                                      ("GET", "claims/%00/verifications", "Claim not found")):
            r = c.request(method, f"{V1}/{path}", json={})
            assert r.status_code == 404 and r.json()["error"]["message"] == message, (path, r.text)
        r = c.delete(f"{V1}/capability-tokens/%00")
        assert r.status_code == 404 and r.json()["error"]["message"] == "Capability token not found"


def test_no_input_is_a_500(tmp_path):
    rng = random.Random(20261201)  # fixed: a failure is reproducible
    with agentstate_app(tmp_path, "fuzz", agentstate_rate_limit="1000000") as (c, clock):
        for i in range(3000):
            method, template = rng.choice(ROUTES)
            path = V1 + "/" + template.format(rng.choice(SEGMENTS))
            params = {rng.choice(PARAMS): str(rng.choice(SCALARS)) for _ in range(rng.randrange(0, 3))}
            if path == V1 + "/states/watch":
                params["once"] = "true"  # a live stream never ends: the fuzz takes the replay only
            headers = {"Idempotency-Key": "k%d" % rng.randrange(3)} if rng.random() < 0.3 else {}
            r = c.request(method, path, content=body(rng), params=params, headers=headers)
            assert r.status_code < 500, (i, method, path, params, r.status_code, r.text[:300])
            if r.headers.get("content-type", "").startswith("application/json") and r.status_code >= 400:
                err = r.json()["error"]
                assert set(err) == {"code", "message"} and err["code"].isupper(), (i, path, err)
