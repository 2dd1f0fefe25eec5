"""/v1/tokens: mint, list, revoke over the real app; tokens checked on every route of the access table."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from support import ADMIN_KEY, new_key

from test_access import ROUTES, ROUTES_BY_SCOPE

SECRET = re.compile(r"as_cap_[A-Za-z0-9]{40}")


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def mint(c, by: str | None, **body):
    body.setdefault("name", "t")
    return c.post("/v1/tokens", json=body, headers=auth(by) if by else {})


@pytest.fixture
def c(keyed_client):
    return keyed_client


def test_mint_list_revoke(c):
    key = new_key(c, "tenant-m")
    r = mint(c, key, name="worker", scopes=["state:read", "read", "read"], prefixes=["app/"])
    assert r.status_code == 201, r.text
    body = r.json()
    secret, token = body["secret"], body["token"]
    assert SECRET.fullmatch(secret) and token["key_prefix"] == secret[:12]
    assert (token["name"], token["tenant"], token["scopes"], token["prefixes"], token["parent_id"], token["active"]) == (
        "worker", "tenant-m", ["read", "state:read"], ["app"], None, True)
    assert token["expires_at"] is None and token["last_used_at"] is None and token["revoked_at"] is None
    assert "digest" not in json.dumps(body)
    who = c.get("/v1/whoami", headers=auth(secret)).json()
    assert (who["kind"], who["key_id"], who["tenant"], who["prefixes"]) == ("token", token["id"], "tenant-m", ["app"])
    c.put("/v1/kv/app/k", json=1, headers=auth(key))
    assert c.get("/v1/kv/app/k", headers=auth(secret)).json()["value"] == 1
    assert c.get("/v1/kv/other/k", headers=auth(secret)).status_code == 403
    assert c.put("/v1/kv/app/k", json=2, headers=auth(secret)).status_code == 403
    listed = c.get("/v1/tokens", headers=auth(key)).json()["tokens"]
    assert [t["id"] for t in listed] == [token["id"]]
    assert c.get("/v1/tokens", headers=auth(new_key(c, "tenant-other"))).json()["tokens"] == []
    gone = c.delete(f"/v1/tokens/{token['id']}", headers=auth(key))
    assert gone.status_code == 200 and gone.json()["token"]["active"] is False
    assert c.get("/v1/kv/app/k", headers=auth(secret)).status_code == 401
    assert c.delete(f"/v1/tokens/{token['id']}", headers=auth(key)).status_code == 200  # idempotent
    assert c.get("/v1/tokens", headers=auth(key)).json()["tokens"] == []
    assert c.delete("/v1/tokens/nope", headers=auth(key)).json()["error"]["code"] == "not_found"


def test_a_child_minted_by_a_token_is_never_wider_and_dies_with_its_parent(c):
    key = new_key(c, "tenant-c")
    parent = mint(c, key, scopes=["read", "write"], prefixes=["app/"]).json()
    wider = mint(c, parent["secret"], scopes=["watch"])
    assert wider.status_code == 403 and wider.json()["error"]["details"]["reason"] == "beyond_caller"
    assert mint(c, parent["secret"], scopes=["read"], prefixes=["elsewhere/"]).status_code == 403
    child = mint(c, parent["secret"], scopes=["read"], prefixes=["app/a/"]).json()
    assert child["token"]["parent_id"] == parent["token"]["id"] and child["token"]["prefixes"] == ["app/a/"]
    grandchild = mint(c, child["secret"], scopes=["state:read"]).json()
    assert grandchild["token"]["prefixes"] == ["app/a/"]  # prefixes left out are inherited
    c.put("/v1/kv/app/a/1", json=1, headers=auth(key))
    assert c.get("/v1/kv/app/a/1", headers=auth(child["secret"])).status_code == 200
    # a child sees and may revoke only its own line
    assert c.delete(f"/v1/tokens/{parent['token']['id']}", headers=auth(child["secret"])).status_code == 403
    assert [t["id"] for t in c.get("/v1/tokens", headers=auth(child["secret"])).json()["tokens"]] == [
        child["token"]["id"], grandchild["token"]["id"]]
    assert c.delete(f"/v1/tokens/{parent['token']['id']}", headers=auth(key)).status_code == 200
    for t in (parent, child, grandchild):
        assert c.get("/v1/kv/app/a/1", headers=auth(t["secret"])).status_code == 401


def test_expiry_forms(c):
    key = new_key(c, "tenant-e")
    now = c.app.state.services.clock.now()
    at = mint(c, key, scopes=["read"], expires_at="2100-01-02T03:04:05Z").json()["token"]
    assert at["expires_at"] == "2100-01-02T03:04:05.000Z"
    seconds = mint(c, key, scopes=["read"], expires_at=4102444800).json()["token"]
    assert seconds["expires_at"] == "2100-01-01T00:00:00.000Z"
    assert mint(c, key, scopes=["read"], expires_in=60).json()["token"]["expires_at"] is not None
    past = mint(c, key, scopes=["read"], expires_at=now - 10)
    assert past.status_code == 201 and c.get("/v1/revision", headers=auth(past.json()["secret"])).status_code == 401
    for bad in ({"expires_at": "soon"}, {"expires_at": "2100-01-01T00:00:00"}, {"expires_in": -1},
                {"expires_at": 1, "expires_in": 1}, {"scopes": []}, {"scopes": ["fly"]}, {"name": ""},
                {"scopes": ["admin"]}, {"prefixes": ["/x"]}, {"other": 1}):
        r = mint(c, key, **{"scopes": ["read"], **bad})
        assert r.status_code == 400, (bad, r.text)
    assert c.post("/v1/tokens", json={"scopes": ["read"]}, headers=auth(key)).status_code == 400  # name needed


@pytest.mark.parametrize("scope", ["read", "write", "watch"])
def test_a_token_lacking_the_scope_is_refused_on_every_route(c, scope):
    key = new_key(c, "tenant-s")
    lacking = mint(c, key, scopes=[s for s in ("read", "write", "watch") if s != scope]).json()["secret"]
    having = mint(c, key, scopes=[scope]).json()["secret"]
    for route in ROUTES_BY_SCOPE[scope]:
        r = route.request(c, "ns", "k", lacking)
        assert r.status_code == 403, (route, r.status_code, r.text)
        assert route.request(c, "ns", "k", having).status_code not in (401, 403), route


def test_revoked_unknown_and_expired_tokens_are_refused_on_every_route(c):
    key = new_key(c, "tenant-r")
    token = mint(c, key, scopes=["read", "write", "watch"]).json()
    short = mint(c, key, scopes=["read", "write", "watch"], expires_in=60).json()["secret"]
    for route in ROUTES:
        assert route.request(c, "ns", "k", token["secret"]).status_code not in (401, 403), route
    c.delete(f"/v1/tokens/{token['token']['id']}", headers=auth(key))
    keys_engine = c.app.state.services.keys
    real_clock = keys_engine.clock
    keys_engine.clock = lambda: real_clock() + 61
    try:
        for route in ROUTES:
            for gone in (token["secret"], short, "as_cap_" + "x" * 40, "as_cap_short"):
                assert route.request(c, "ns", "k", gone).status_code == 401, (route, gone)
    finally:
        keys_engine.clock = real_clock


def test_open_mode_tokens_are_honoured_and_narrower(client):
    r = mint(client, None, scopes=["read"], prefixes=["app/"])
    assert r.status_code == 201 and r.json()["token"]["tenant"] == "default" and r.json()["token"]["key_id"] is None
    secret = r.json()["secret"]
    assert client.put("/v1/kv/app/k", json=1).status_code == 201
    assert client.get("/v1/kv/app/k", headers=auth(secret)).status_code == 200
    assert client.put("/v1/kv/app/k", json=2, headers=auth(secret)).status_code == 403
    assert client.get("/v1/kv/other/k", headers=auth(secret)).status_code == 403
    assert client.get("/v1/kv/app/k", headers=auth("as_cap_" + "y" * 40)).status_code == 401
    assert client.delete(f"/v1/tokens/{r.json()['token']['id']}").status_code == 200
    assert client.get("/v1/kv/app/k", headers=auth(secret)).status_code == 401
    assert client.get("/v1/kv/app/k").status_code == 200  # open mode itself is unchanged


def test_keys_with_fine_scopes_and_the_agentstate_format(c):
    r = c.post("/v1/admin/keys", json={"scopes": ["state:read"], "format": "agentstate"}, headers=auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert re.fullmatch(r"as_live_[A-Za-z0-9]{40}", secret) and r.json()["key"]["scopes"] == ["state:read"]
    assert c.get("/v1/kv/app/k", headers=auth(secret)).status_code == 403  # state:read is not native read
    assert mint(c, secret, scopes=["state:read"]).status_code == 201
    assert mint(c, secret, scopes=["state:write"]).status_code == 403
    assert c.post("/v1/admin/keys", json={"scopes": ["read"], "format": "x"}, headers=auth(ADMIN_KEY)).status_code == 400
    assert c.post("/v1/admin/keys", json={"scopes": ["state:fly"]}, headers=auth(ADMIN_KEY)).status_code == 400
    star = c.post("/v1/admin/keys", json={"scopes": ["*"]}, headers=auth(ADMIN_KEY)).json()["secret"]
    assert c.get("/v1/admin/keys", headers=auth(star)).status_code == 200  # `*` is full access


def test_no_response_contains_a_token_secret_or_digest(c):
    key = new_key(c, "tenant-d")
    made = mint(c, key, scopes=["read"]).json()
    secret = made["secret"]
    digests = [hashlib.sha256(secret.encode()).hexdigest()]
    responses = [c.get("/v1/tokens", headers=auth(key)), c.get("/v1/whoami", headers=auth(secret)),
                 c.delete(f"/v1/tokens/{made['token']['id']}", headers=auth(key)),
                 c.get("/v1/tokens", headers=auth(ADMIN_KEY))]
    for r in responses:
        blob = r.text + json.dumps(dict(r.headers))
        assert secret not in blob and all(d not in blob for d in digests), r.request.url


def test_the_cli_creates_agentstate_keys_with_fine_scopes(tmp_path):
    from click.testing import CliRunner

    from stigmer.cli import main

    data = str(tmp_path / "data")
    r = CliRunner().invoke(main, ["keys", "create", "--data-dir", data, "--scope", "state:read,claim:*", "--format",
                                  "agentstate", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert re.fullmatch(r"as_live_[A-Za-z0-9]{40}", out["secret"]) and out["key"]["scopes"] == ["state:read", "claim:*"]
    r = CliRunner().invoke(main, ["keys", "create", "--data-dir", data, "--scope", "read", "--format", "other"])
    assert r.exit_code != 0
