"""Access at one edge: tenant isolation, scopes, prefixes, revocation and expiry on every route of every surface.

The routes are a table: a new surface adds its rows here, not a new test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from support import ADMIN_KEY, app_settings, new_key

B_MARK = "value-of-tenant-b"


@dataclasses.dataclass(frozen=True)
class R:
    """One route: method, path (with {ns} and {key}), body, the scope it needs, and its credential header."""

    surface: str
    method: str
    path: str
    scope: str
    body: Callable[[str, str], object] | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def request(self, c, ns: str, key: str, credential: str | None, **kw):
        path = self.path.format(ns=ns, key=key)
        headers = {**dict(self.headers), **dict(kw.pop("headers", {}))}
        if credential is not None:
            if self.surface == "cntrlnode":
                headers["X-CntrlNode-Key"] = credential
            else:
                headers["Authorization"] = f"Bearer {credential}"
        body = self.body(ns, key) if self.body else None
        if self.content_type:
            headers["Content-Type"] = self.content_type
        content = None if body is None else json.dumps(body).encode()
        return c.request(self.method, path, content=content, headers=headers, **kw)


ROUTES = [
    R("native", "GET", "/v1/kv/{ns}/{key}", "read"),
    R("native", "GET", "/v1/kv/{ns}/{key}?x=1", "read"),  # the routed path, not the fast path
    R("native", "PUT", "/v1/kv/{ns}/{key}", "write", lambda ns, k: {"from": "a"}),
    R("native", "PUT", "/v1/kv/{ns}/{key}?ttl=60", "write", lambda ns, k: {"from": "a"}),
    R("native", "PATCH", "/v1/kv/{ns}/{key}", "write", lambda ns, k: {"op": "merge", "value": {"from": "a"}}),
    R("native", "PATCH", "/v1/kv/{ns}/{key}", "write", lambda ns, k: {"from": "a"}, "application/merge-patch+json"),
    R("native", "DELETE", "/v1/kv/{ns}/{key}", "write"),
    R("native", "PUT", "/v1/kv/{ns}/{key}", "write", lambda ns, k: {"from": "a"}, headers=(("X-Stigmer-Fence", "k:1"),)),
    R("native", "DELETE", "/v1/kv/{ns}/{key}", "write", headers=(("X-Stigmer-Fence", "k:1"),)),
    R("native", "POST", "/v1/leases/{key}", "write", lambda ns, k: {"holder": "a", "ttl": 5}),
    R("native", "PATCH", "/v1/leases/{key}", "write", lambda ns, k: {"fencing_token": 1}),
    R("native", "DELETE", "/v1/leases/{key}?fencing_token=1", "write"),
    R("native", "GET", "/v1/leases/{key}", "read"),
    R("native", "POST", "/v1/claims", "write", lambda ns, k: {
        "subject_type": "s", "subject_id": k, "statement": "x",
        "evidence": [{"kind": "json_value", "source": "s", "data": 1, "json_path": "$", "expected_value": 1}]}),
    R("native", "GET", "/v1/claims", "read"),
    R("native", "GET", "/v1/claims/{key}", "read"),
    R("native", "POST", "/v1/claims/{key}/verify", "write"),
    R("native", "GET", "/v1/claims/{key}/runs", "read"),
    R("native", "GET", "/v1/kv/{ns}", "read"),
    R("native", "GET", "/v1/kv/{ns}?prefix=k", "read"),
    R("native", "POST", "/v1/kv/{ns}:batch", "read", lambda ns, k: {"keys": [k]}),
    R("native", "GET", "/v1/history/{ns}/{key}", "read"),
    R("native", "POST", "/v1/txn", "write", lambda ns, k: {"ops": [{"op": "put", "namespace": ns, "key": k, "value": 1}]}),
    R("native", "POST", "/v1/txn", "write", lambda ns, k: {"ops": [{"op": "put", "namespace": ns, "key": k, "value": 1}]},
      headers=(("X-Stigmer-Fence", "k:1"),)),
    R("native", "POST", "/v1/txn", "read",
      lambda ns, k: {"compare": [{"namespace": ns, "key": k, "exists": True}], "ops": []}),
    R("native", "GET", "/v1/watch?namespace={ns}&index=0&wait=0", "watch"),
    R("native", "GET", "/v1/watch?namespace={ns}&key={key}&index=0&wait=0", "watch"),
    R("native", "GET", "/v1/watch?index=0&wait=0", "watch"),
    R("native", "GET", "/v1/revision", "read"),
    R("native", "GET", "/v1/namespaces", "read"),
    R("native", "GET", "/v1/semantic-sessions", "read"),
    R("native", "GET", "/v1/semantic-sessions/{key}", "read"),
    R("cntrlnode", "GET", "/v1/state/wf/{key}", "read"),
    R("cntrlnode", "POST", "/v1/state/wf/{key}", "write", lambda ns, k: {"value": "from-a"}),
    R("cntrlnode", "POST", "/v1/state/wf/{key}/version", "write", lambda ns, k: {"value": "a", "expectedVersion": 1}),
    R("cntrlnode", "DELETE", "/v1/state/wf/{key}", "write"),
    R("cntrlnode", "GET", "/v1/state/wf", "read"),
]
ROUTES_BY_SCOPE = {s: [r for r in ROUTES if r.scope == s] for s in ("read", "write", "watch")}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One keyed app; tenant B owns data in native `ns`/`k` and CntrlNode `wf/k`; A, B and C keys."""
    from starlette.testclient import TestClient

    from stigmer.app import create_app

    settings = app_settings({"data_dir": str(tmp_path_factory.mktemp("access")), "admin_key": ADMIN_KEY})
    with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as c:
        keys = {"a": new_key(c, "tenant-a"), "b": new_key(c, "tenant-b")}
        for ns, k in (("ns", "k"), ("ns", "k2"), ("cntrlnode", "wf/k")):
            assert c.put(f"/v1/kv/{ns}/{k}", json={"mark": B_MARK}, headers=auth(keys["b"])).status_code == 201
        claim = {"subject_type": "s", "subject_id": "k", "statement": B_MARK,
                 "evidence": [{"kind": "key_value", "namespace": "ns", "key": "k", "expected_value": {"mark": B_MARK}}]}
        assert c.post("/v1/claims", json=claim, headers=auth(keys["b"])).status_code == 201
        yield c, keys


def b_state(c, keys) -> list:
    rows = c.get("/v1/kv/ns", headers=auth(keys["b"])).json()["entries"]
    rows += [c.get("/v1/kv/cntrlnode/wf/k", headers=auth(keys["b"])).json()]
    return [(e["key"], e["version"], e["value"]) for e in rows]


names = st.sampled_from(["k", "k2", "x", "wf/k"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), ns=st.sampled_from(["ns", "cntrlnode"]), key=names)
def test_tenant_a_never_reads_or_changes_tenant_b(world, route, ns, key):
    c, keys = world
    before = b_state(c, keys)
    r = route.request(c, ns, key, keys["a"])
    assert r.status_code < 500, (route, r.text)
    assert B_MARK not in r.text, (route, r.text)
    assert b_state(c, keys) == before


@pytest.mark.parametrize("scope", ["read", "write", "watch"])
def test_a_key_lacking_the_scope_is_refused_on_every_route(world, scope):
    c, keys = world
    others = [s for s in ("read", "write", "watch") if s != scope]
    lacking, having = new_key(c, "tenant-s", scopes=others), new_key(c, "tenant-s", scopes=[scope])
    for route in ROUTES_BY_SCOPE[scope]:
        r = route.request(c, "ns", "k", lacking)
        assert r.status_code == 403, (route, r.status_code, r.text)
        if route.surface == "cntrlnode":
            assert r.json()["error"] == "FORBIDDEN"
        else:
            assert r.json()["error"]["code"] == "forbidden" and r.json()["error"]["details"]["scope"] == scope
        assert route.request(c, "ns", "k", having).status_code not in (401, 403), route


def test_missing_unknown_revoked_and_expired_keys_are_refused_at_once(world):
    c, keys = world
    key = new_key(c, "tenant-r")
    short = new_key(c, "tenant-r", expires_in=60)
    for route in ROUTES:
        assert route.request(c, "ns", "k", key).status_code not in (401, 403), route
        for bad in (None, "stg_not-a-key", ""):
            r = route.request(c, "ns", "k", bad)
            assert r.status_code == 401, (route, bad, r.text)
    listed = c.get("/v1/admin/keys?tenant=tenant-r", headers=auth(ADMIN_KEY)).json()["keys"]
    assert c.delete(f"/v1/admin/keys/{listed[0]['id']}", headers=auth(ADMIN_KEY)).json()["key"]["active"] is False
    keys_engine = c.app.state.services.keys
    real_clock = keys_engine.clock
    assert route.request(c, "ns", "k", short).status_code != 401
    keys_engine.clock = lambda: real_clock() + 61  # advance the clock past the expiry
    try:
        for route in ROUTES:
            for gone in (key, short):
                r = route.request(c, "ns", "k", gone)
                assert r.status_code == 401, (route, r.text)
                assert (r.json()["error"] if route.surface == "cntrlnode" else r.json()["error"]["code"]) in (
                    "UNAUTHORIZED", "unauthenticated")
    finally:
        keys_engine.clock = real_clock


def test_prefix_limited_keys(world):
    c, _ = world
    k = new_key(c, "tenant-p", prefixes=["app/agents/"])
    h = auth(k)
    assert c.put("/v1/kv/app/agents/1", json=1, headers=h).status_code == 201
    assert c.get("/v1/kv/app/agents/1", headers=h).json()["value"] == 1
    assert c.put("/v1/kv/app/other", json=1, headers=h).status_code == 403
    assert c.put("/v1/kv/elsewhere/agents/1", json=1, headers=h).status_code == 403
    assert c.get("/v1/kv/app?prefix=agents/", headers=h).status_code == 200
    assert c.get("/v1/kv/app", headers=h).status_code == 403
    assert c.get("/v1/watch?namespace=app&prefix=agents/&index=0&wait=0", headers=h).status_code == 200
    assert c.get("/v1/watch?namespace=app&index=0&wait=0", headers=h).status_code == 403
    assert c.get("/v1/watch?index=0&wait=0", headers=h).status_code == 403
    txn = {"ops": [{"op": "put", "namespace": "app", "key": "agents/2", "value": 1},
                   {"op": "put", "namespace": "app", "key": "x", "value": 1}]}
    assert c.post("/v1/txn", json=txn, headers=h).status_code == 403
    assert c.get("/v1/kv/app/agents/2", headers=h).status_code == 404  # all or nothing
    assert c.get("/v1/state/wf", headers={"X-CntrlNode-Key": k}).status_code == 403


def test_admin_keys_manage_their_tenant_and_never_mint_wider(world):
    c, keys = world
    tenant_admin = new_key(c, "tenant-t", scopes=["admin"])
    h = auth(tenant_admin)
    r = c.post("/v1/admin/keys", json={"tenant": "tenant-a", "scopes": ["read"]}, headers=h)
    assert r.status_code == 403
    r = c.post("/v1/admin/keys", json={"scopes": ["read"], "prefixes": ["app/"]}, headers=h)
    assert r.status_code == 201 and r.json()["key"]["tenant"] == "tenant-t"
    limited_admin = new_key(c, "tenant-t", scopes=["admin"], prefixes=["app/"])
    wider = c.post("/v1/admin/keys", json={"scopes": ["read"]}, headers=auth(limited_admin))
    assert wider.status_code == 403 and "wider" in wider.json()["error"]["message"]
    listed = c.get("/v1/admin/keys", headers=h).json()["keys"]
    assert {k["tenant"] for k in listed} == {"tenant-t"}
    assert c.get("/v1/admin/keys", headers=auth(keys["a"])).status_code == 403
    assert c.get("/v1/settings", headers=auth(keys["a"])).status_code == 403
    other = c.get("/v1/admin/keys?tenant=tenant-a", headers=auth(ADMIN_KEY)).json()["keys"][0]["id"]
    assert c.delete(f"/v1/admin/keys/{other}", headers=h).status_code == 404  # not its tenant's key


def test_no_response_contains_a_secret(world):
    c, keys = world
    secrets = [ADMIN_KEY, *keys.values()]
    digests = [hashlib.sha256(s.encode()).hexdigest() for s in secrets]
    responses = [c.get("/v1/settings", headers=auth(ADMIN_KEY)), c.get("/v1/admin/keys", headers=auth(ADMIN_KEY)),
                 c.get("/v1/whoami", headers=auth(keys["a"])), c.get("/openapi.json"), c.get("/docs"),
                 c.get("/v1/watch?index=0&wait=0", headers=auth(ADMIN_KEY))]
    for route in ROUTES:
        for k in (keys["a"], "stg_wrong"):
            responses.append(route.request(c, "ns", "k", k))
    for r in responses:
        blob = r.text + json.dumps(dict(r.headers))
        for s in secrets + digests:
            assert s not in blob, r.request.url


# --- statevec data is reserved ----------------------------------------------------------------------

SECRET = "demo:board:k7Qp2vXr9LmT4wZa"
H = hashlib.sha256(SECRET.encode()).hexdigest()


def test_statevec_data_is_written_only_with_its_secret_and_listed_only_by_admins(world):
    c, keys = world
    assert c.put("/v", json={"key": SECRET, "val": {"n": 1}}).status_code == 200
    reader = auth(new_key(c, "default"))
    admin = auth(ADMIN_KEY)
    for headers in (reader, admin):
        assert c.put(f"/v1/kv/statevec/{H}", json=2, headers=headers).status_code == 403
        assert c.put(f"/v1/kv/statevec/{H}?ttl=5", json=2, headers=headers).status_code == 403
        assert c.patch(f"/v1/kv/statevec/{H}", json={"op": "incr", "field": "n"}, headers=headers).status_code == 403
        assert c.delete(f"/v1/kv/statevec/{H}", headers=headers).status_code == 403
        txn = {"ops": [{"op": "delete", "namespace": "statevec", "key": H}]}
        assert c.post("/v1/txn", json=txn, headers=headers).status_code == 403
    assert c.get(f"/v/{H}").json()["val"] == {"n": 1}
    # naming the address is its read capability; everything wider needs admin
    assert c.get(f"/v1/kv/statevec/{H}", headers=reader).json()["value"] == {"n": 1}
    assert c.get(f"/v1/history/statevec/{H}", headers=reader).status_code == 200
    for path in ("/v1/kv/statevec", f"/v1/kv/statevec?prefix={H[:8]}", "/v1/watch?namespace=statevec&index=0&wait=0",
                 f"/v1/watch?namespace=statevec&prefix={H[:8]}&index=0&wait=0"):
        assert c.get(path, headers=reader).status_code == 403, path
        assert c.get(path, headers=admin).status_code == 200, path
    everything = c.get("/v1/watch?index=0&wait=0", headers=reader).json()
    assert all(ch["namespace"] != "statevec" for ev in everything["events"] for ch in ev["changes"])
    assert any(ch["namespace"] == "statevec" for ev in c.get("/v1/watch?index=0&wait=0", headers=admin).json()["events"]
               for ch in ev["changes"])


def test_statevec_rules_hold_in_open_mode(client):
    assert client.put("/v", json={"key": SECRET, "val": 1}).status_code == 200
    assert client.put(f"/v1/kv/statevec/{H}", json=2).status_code == 403
    assert client.delete(f"/v1/kv/statevec/{H}").status_code == 403
    assert client.get("/v1/kv/statevec").status_code == 403
    assert client.get("/v1/watch?namespace=statevec&index=0&wait=0").status_code == 403
    assert client.get(f"/v1/kv/statevec/{H}").json()["value"] == 1
    events = client.get("/v1/watch?index=0&wait=0").json()["events"]
    assert events == []


# --- browsers, hosts, proxies --------------------------------------------------------------------------


@pytest.mark.parametrize("path,body", [("/v1/txn", {"ops": [{"op": "put", "namespace": "a", "key": "k", "value": 1}]}),
                                       ("/v1/state/wf/k", {"value": 1}), ("/v1/kv/a/k", 1)])
def test_a_cross_origin_simple_post_does_not_write(client, path, body):
    method = "PUT" if path.startswith("/v1/kv") else "POST"
    for headers in ({"Origin": "https://evil.example", "Content-Type": "text/plain"},
                    {"Origin": "null", "Content-Type": "text/plain"},
                    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}):
        r = client.request(method, path, content=json.dumps(body), headers=headers)
        assert r.status_code == 403, r.text
    assert client.get("/v1/kv/a/k").status_code == 404
    assert client.get("/v1/state/wf/k").status_code == 404
    # same-origin and non-browser clients still write
    assert client.put("/v1/kv/a/k", json=1, headers={"Origin": "http://localhost"}).status_code == 201


def test_configured_cors_origin_may_write(make_client):
    c = make_client(cors_origins="https://app.example")
    r = c.put("/v1/kv/a/k", json=1, headers={"Origin": "https://app.example"})
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "https://app.example"


def test_open_mode_answers_only_loopback_host_names(make_client):
    c = make_client()
    for host in ("localhost", "localhost:7474", "127.0.0.1:7474", "[::1]:7474", "api.localhost"):
        assert c.get("/v1/revision", headers={"Host": host}).status_code == 200, host
    r = c.get("/v1/kv/a/k", headers={"Host": "rebind.evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_host"
    assert c.put("/v", json={"key": SECRET, "val": 1}, headers={"Host": "evil.example"}).status_code == 403
    c2 = make_client(allowed_hosts="stigmer.internal")
    assert c2.get("/v1/revision", headers={"Host": "stigmer.internal:7474"}).status_code == 200
    keyed = make_client(admin_key=ADMIN_KEY)  # with keys in force the name no longer matters
    assert keyed.get("/v1/revision", headers={"Host": "rebind.evil.example", **auth(ADMIN_KEY)}).status_code == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies(make_client):
    c = make_client(native_rate_limit=2)  # TestClient's peer is "testclient": never a trusted proxy
    for i in range(2):
        assert c.get("/v1/revision", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code == 200
    assert c.get("/v1/revision", headers={"X-Forwarded-For": "10.0.0.9", "Forwarded": "for=10.0.0.8"}).status_code == 429
    from stigmer.api.edge import forwarded_for

    scope = {"headers": [(b"forwarded", b'for="[2001:db8::1]:443";proto=https, for=192.0.2.1:80')]}
    assert forwarded_for(scope) == "2001:db8::1,192.0.2.1"


def test_non_utf8_percent_escapes_in_a_key_are_refused(client):
    client.put("/v1/kv/a/%EF%BF%BD", json="replacement-char")
    for raw in ("%FF", "%FE", "%C3"):
        r = client.get(f"/v1/kv/a/{raw}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path"
        assert client.put(f"/v1/kv/a/{raw}", json=1).status_code == 400
    assert client.get("/v1/kv/a/%EF%BF%BD").json()["value"] == "replacement-char"


def test_leases_are_checked_as_keys_of_the_lease_namespace(world):
    c, _ = world
    narrow = auth(new_key(c, "tenant-l", prefixes=["app/"]))
    wide = auth(new_key(c, "tenant-l", prefixes=["app/", "_leases/app/"]))
    assert c.post("/v1/leases/app/x", json={"holder": "n"}, headers=narrow).status_code == 403
    lease = c.post("/v1/leases/app/x", json={"holder": "w", "ttl": 30}, headers=wide)
    assert lease.status_code == 201 and c.post("/v1/leases/other", json={"holder": "w"}, headers=wide).status_code == 403
    fence = {"X-Stigmer-Fence": lease.json()["fence"]}
    assert c.put("/v1/kv/app/out", json=1, headers={**narrow, **fence}).status_code == 403  # may not use that lease
    assert c.put("/v1/kv/app/out", json=1, headers={**wide, **fence}).status_code == 201
    assert c.get("/v1/kv/_leases/app/x", headers=wide).json()["value"]["holder"] == "w"
    admin = auth(ADMIN_KEY)
    assert c.put("/v1/kv/_leases/app/x", json=1, headers=admin).status_code == 403  # even for admin keys
