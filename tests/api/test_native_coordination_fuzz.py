"""Hostile input on the native coordination routes (leases, tokens, claims, transactions with fences,
Idempotency-Key): the native error envelope or a success, never a 500, on both stores."""

from __future__ import annotations

import random

from test_agentstate_fuzz import SCALARS, SEGMENTS, body

ROUTES = [("POST", "/v1/leases/{}"), ("PATCH", "/v1/leases/{}"), ("DELETE", "/v1/leases/{}"), ("GET", "/v1/leases/{}"),
          ("POST", "/v1/tokens"), ("GET", "/v1/tokens"), ("DELETE", "/v1/tokens/{}"),
          ("POST", "/v1/claims"), ("GET", "/v1/claims"), ("GET", "/v1/claims/{}"), ("POST", "/v1/claims/{}/verify"),
          ("GET", "/v1/claims/{}/runs"), ("POST", "/v1/txn"), ("PUT", "/v1/kv/ns/{}"), ("PATCH", "/v1/kv/ns/{}")]
PARAMS = ["lease_id", "fencing_token", "limit", "cursor", "order", "subject_type", "subject_id"]
HEADERS = ["Idempotency-Key", "X-Stigmer-Fence", "If-Match"]


def test_no_input_is_a_500(make_client):
    c = make_client()
    rng = random.Random(20261201)  # fixed: a failure is reproducible
    for i in range(2000):
        method, template = rng.choice(ROUTES)
        path = template.format(rng.choice(SEGMENTS))
        params = {rng.choice(PARAMS): str(rng.choice(SCALARS)) for _ in range(rng.randrange(0, 3))}
        headers = {rng.choice(HEADERS): str(rng.choice(SCALARS)).replace("\x00", "%00") for _ in range(rng.randrange(0, 2))}
        headers["Content-Type"] = "application/json"
        r = c.request(method, path, content=body(rng), params=params, headers=headers)
        assert r.status_code < 500, (i, method, path, params, headers, r.status_code, r.text[:300])
        if r.status_code >= 400:
            err = r.json()["error"]
            assert {"code", "message", "request_id"} <= set(err) and err["code"].islower(), (i, path, err)
