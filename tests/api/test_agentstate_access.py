"""AgentState surface conventions (specs/agentstate.md §2–3, D1–D3, D22, D23, D31): open and keyed
authentication, scopes, capability tokens, the rate limit, request ids, CORS, bodies and unknown paths."""

from __future__ import annotations

import re
import time

import pytest

from agentstate_support import V1, agentstate_app, err, live_key
from support import ADMIN_KEY

LIVE = "as_live_" + "A1b2C3d4E5" * 4
ID = re.compile(r"[A-Za-z0-9_-]{21}")


@pytest.fixture
def open_app(tmp_path):
    with agentstate_app(tmp_path, "open") as (c, clock):
        yield c


@pytest.fixture
def keyed(tmp_path):
    with agentstate_app(tmp_path, "keyed", admin_key=ADMIN_KEY) as (c, clock):
        yield c


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def timed(fn):
    start = time.monotonic()
    r = fn()
    return r, time.monotonic() - start


def test_health_document_needs_no_credential(keyed, open_app):
    for c in (keyed, open_app):
        r = c.get("/api")
        assert r.status_code == 200 and r.json() == {"name": "agentstate", "version": "0.1.4", "status": "ok"}


@pytest.mark.parametrize("method,path", [("GET", "/nothing"), ("PATCH", "/states/k"), ("POST", "/states/k"),
                                         ("GET", "/leases/x"), ("GET", "/keys"), ("GET", ""), ("PUT", "/claims"),
                                         ("GET", "/projects"), ("POST", "/webhooks"), ("GET", "/organizations")])
def test_unknown_paths_and_methods_are_json_404s(open_app, method, path):
    err(open_app.request(method, V1 + path), 404, "NOT_FOUND", "Not found")


def test_open_mode_credentials(open_app):
    c = open_app
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer    "}, bearer("as_live_anything-1_x")):
        r = c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}}, headers=headers)
        assert r.status_code == 200, (headers, r.text)
    for headers in (bearer("garbage"), {"Authorization": "Basic dXNlcjpwYXNz"}, bearer("as_live_" + "x" * 201),
                    bearer("as_cap_unknown")):
        r, took = timed(lambda: c.get(f"{V1}/states/k", headers=headers))
        err(r, 401, "UNAUTHORIZED", "Unauthorized")
        assert took >= 0.3  # D3
        assert "x-ratelimit-limit" not in r.headers


def test_keyed_mode_credentials_and_scopes(keyed):
    c = keyed
    r, took = timed(lambda: c.get(f"{V1}/states/k"))
    err(r, 401, "UNAUTHORIZED", "Unauthorized")
    assert took >= 0.3 and "x-ratelimit-limit" not in r.headers
    err(c.get(f"{V1}/states/k", headers=bearer(LIVE)), 401, "UNAUTHORIZED")  # a well-formed key unknown here
    full = live_key(c, LIVE, ["*"])
    assert c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}}, headers=bearer(full)).status_code == 200
    reader = live_key(c, "as_live_" + "R" * 40, ["state:read"])
    assert c.get(f"{V1}/states/k", headers=bearer(reader)).status_code == 200
    r, took = timed(lambda: c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}}, headers=bearer(reader)))
    err(r, 403, "FORBIDDEN", "Missing required scope: state:write")
    assert took >= 0.3
    # scope comes before the body: a bad body to a route the key may not use is still a 403
    err(c.put(f"{V1}/states/k", content=b"", headers=bearer(reader)), 403, "FORBIDDEN")
    err(c.post(f"{V1}/states/k/lease", json={"holder": "h"}, headers=bearer(reader)), 403, "FORBIDDEN",
        "Missing required scope: lease:write")
    nothing = live_key(c, "as_live_" + "N" * 40, ["claim:read"])
    err(c.get(f"{V1}/states/k", headers=bearer(nothing)), 403, "FORBIDDEN", "Missing required scope: state:read")
    assert c.get(f"{V1}/claims", headers=bearer(nothing)).status_code == 200
    # `state:*` covers read, write and watch; write never implies read
    star = live_key(c, "as_live_" + "S" * 40, ["state:*"])
    assert c.get(f"{V1}/states/k", headers=bearer(star)).status_code == 200
    writer = live_key(c, "as_live_" + "W" * 40, ["state:write"])
    err(c.get(f"{V1}/states/k", headers=bearer(writer)), 403, "FORBIDDEN")


def test_projects_are_isolated(keyed):
    c = keyed
    a = live_key(c, "as_live_" + "a" * 40, ["*"], tenant="proj-a")
    b = live_key(c, "as_live_" + "b" * 40, ["*"], tenant="proj-b")
    assert c.put(f"{V1}/states/shared", json={"agent_id": "w", "data": {"who": "a"}}, headers=bearer(a)).status_code == 200
    err(c.get(f"{V1}/states/shared", headers=bearer(b)), 404, "NOT_FOUND", "State not found")
    assert c.post(f"{V1}/states/query", json={}, headers=bearer(b)).json()["data"] == []
    assert c.get(f"{V1}/states/shared/events", headers=bearer(b)).json()["data"] == []
    lease = c.post(f"{V1}/states/shared/lease", json={"holder": "a"}, headers=bearer(a)).json()
    err(c.post(f"{V1}/leases/{lease['id']}/renew", json={}, headers=bearer(b)), 404, "NOT_FOUND")
    err(c.delete(f"{V1}/leases/{lease['id']}", headers=bearer(b)), 404, "NOT_FOUND")
    # sequences are per project (D8): a's twenty writes do not show in b's numbering
    for i in range(20):
        c.put(f"{V1}/states/n{i}", json={"agent_id": "w", "data": {}}, headers=bearer(a))
    b_seq = c.put(f"{V1}/states/x", json={"agent_id": "w", "data": {}}, headers=bearer(b)).json()["latest_sequence"]
    assert b_seq <= 2
    assert c.get(f"{V1}/states/watch", params={"once": "true"}, headers=bearer(b)).text.count("event: state.") == 1


def test_capability_tokens(keyed):
    c = keyed
    admin = live_key(c, LIVE, ["*"])
    r = c.post(f"{V1}/capability-tokens", json={"name": "sub", "scopes": ["state:read", "claim:write", "state:read"]},
               headers=bearer(admin))
    err(r, 400, "BAD_REQUEST", "scopes must be unique; allowed scopes: state:read, state:write, state:watch, "
        "lease:write, claim:read, claim:write")
    r = c.post(f"{V1}/capability-tokens", json={"name": "sub", "scopes": ["state:read", "claim:write"],
                                                "expires_at": 9999999999999}, headers=bearer(admin))
    assert r.status_code == 201, r.text
    tok = r.json()
    assert list(tok) == ["id", "name", "key_prefix", "scopes", "expires_at", "created_at", "last_used_at",
                         "revoked_at", "token"]
    assert ID.fullmatch(tok["id"]) and re.fullmatch(r"as_cap_[A-Za-z0-9]{40}", tok["token"])
    assert tok["key_prefix"] == tok["token"][:12] and tok["scopes"] == ["claim:write", "state:read"]
    assert tok["expires_at"] == 9999999999999 and tok["last_used_at"] is None and tok["revoked_at"] is None
    secret = tok.pop("token")
    c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {"v": 1}}, headers=bearer(admin))
    assert c.get(f"{V1}/states/k", headers=bearer(secret)).json()["data"] == {"v": 1}
    r, took = timed(lambda: c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}}, headers=bearer(secret)))
    err(r, 403, "FORBIDDEN", "Capability token does not have required scope")
    assert took >= 0.3
    # tokens are refused where only API keys go (D2)
    err(c.get(f"{V1}/capability-tokens", headers=bearer(secret)), 401, "UNAUTHORIZED", "Unauthorized")
    err(c.post(f"{V1}/capability-tokens", json={"name": "x", "scopes": ["state:read"]}, headers=bearer(secret)), 401,
        "UNAUTHORIZED")
    listed = c.get(f"{V1}/capability-tokens", headers=bearer(admin)).json()
    assert [t["id"] for t in listed["data"]] == [tok["id"]]
    deadline = time.monotonic() + 10  # the use is recorded without making the request wait (at most 5 s late)
    while listed["data"][0]["last_used_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
        listed = c.get(f"{V1}/capability-tokens", headers=bearer(admin)).json()
    assert listed["data"][0]["last_used_at"] is not None
    assert "token" not in listed["data"][0] and listed["data"][0]["key_prefix"] == tok["key_prefix"]
    assert c.delete(f"{V1}/capability-tokens/{tok['id']}", headers=bearer(admin)).status_code == 204
    err(c.get(f"{V1}/states/k", headers=bearer(secret)), 401, "UNAUTHORIZED")  # at once
    assert c.delete(f"{V1}/capability-tokens/{tok['id']}", headers=bearer(admin)).status_code == 204
    err(c.delete(f"{V1}/capability-tokens/nope", headers=bearer(admin)), 404, "NOT_FOUND", "Capability token not found")
    assert c.get(f"{V1}/capability-tokens", headers=bearer(admin)).json() == {"data": []}
    # a past expiry is accepted and yields an unusable token
    past = c.post(f"{V1}/capability-tokens", json={"name": "old", "scopes": ["state:read"], "expires_at": 1},
                  headers=bearer(admin)).json()
    err(c.get(f"{V1}/states/k", headers=bearer(past["token"])), 401, "UNAUTHORIZED")
    assert [t["name"] for t in c.get(f"{V1}/capability-tokens", headers=bearer(admin)).json()["data"]] == ["old"]


def test_tokens_never_wider_than_the_caller(keyed):
    c = keyed
    narrow = live_key(c, "as_live_" + "n" * 40, ["keys:write", "keys:read", "state:read"])
    err(c.post(f"{V1}/capability-tokens", json={"name": "x", "scopes": ["state:write"]}, headers=bearer(narrow)),
        403, "FORBIDDEN", "Cannot grant scopes beyond the calling key's own scopes")
    assert c.post(f"{V1}/capability-tokens", json={"name": "x", "scopes": ["state:read"]},
                  headers=bearer(narrow)).status_code == 201
    no_keys = live_key(c, "as_live_" + "k" * 40, ["state:read"])
    err(c.post(f"{V1}/capability-tokens", json={"name": "x", "scopes": ["state:read"]}, headers=bearer(no_keys)),
        403, "FORBIDDEN", "Missing required scope: keys:write")


@pytest.mark.parametrize("body,message", [
    ({"scopes": ["state:read"]}, "Required"),
    ({"name": "", "scopes": ["state:read"]}, "String must contain at least 1 character(s)"),
    ({"name": "x"}, "Required"),
    ({"name": "x", "scopes": []}, "Array must contain at least 1 element(s)"),
    ({"name": "x", "scopes": ["state:read"] * 7}, "Array must contain at most 6 element(s)"),
    ({"name": "x", "scopes": ["*"]}, "Invalid enum value. Expected 'state:read' | 'state:write' | 'state:watch' | "
                                     "'lease:write' | 'claim:read' | 'claim:write', received '*'"),
    ({"name": "x", "scopes": ["state:read"], "expires_at": 0}, "Number must be greater than 0"),
    ({"name": "x", "scopes": ["state:read"], "expires_at": 1.5}, "Expected integer, received float"),
])
def test_token_validation(open_app, body, message):
    err(open_app.post(f"{V1}/capability-tokens", json=body), 400, "BAD_REQUEST", message)


def test_open_mode_tokens_are_real_and_checked(open_app):
    c = open_app
    tok = c.post(f"{V1}/capability-tokens", json={"name": "w", "scopes": ["state:watch"]}).json()["token"]
    c.post(f"{V1}/capability-tokens", json={"name": "second", "scopes": ["claim:read"]})
    assert [t["name"] for t in c.get(f"{V1}/capability-tokens").json()["data"]] == ["w", "second"]  # D27
    c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}})
    err(c.get(f"{V1}/states/k", headers=bearer(tok)), 403, "FORBIDDEN", "Capability token does not have required scope")
    # the watch stream takes a capability token in ?token= when no Authorization header is sent
    r = c.get(f"{V1}/states/watch", params={"once": "true", "token": tok})
    assert r.status_code == 200 and "event: state.upsert" in r.text
    err(c.get(f"{V1}/states/watch", params={"once": "true", "token": LIVE}), 401, "UNAUTHORIZED")


def test_watch_token_in_query_on_keyed_server(keyed):
    c = keyed
    admin = live_key(c, LIVE, ["*"])
    tok = c.post(f"{V1}/capability-tokens", json={"name": "w", "scopes": ["state:watch"]},
                 headers=bearer(admin)).json()["token"]
    assert c.get(f"{V1}/states/watch", params={"once": "true", "token": tok}).status_code == 200
    err(c.get(f"{V1}/states/watch", params={"once": "true", "token": admin}), 401, "UNAUTHORIZED")
    err(c.get(f"{V1}/states/k", params={"token": tok}), 401, "UNAUTHORIZED")  # only the watch reads ?token=


def test_fixed_window_rate_limit(tmp_path):
    with agentstate_app(tmp_path, "rl", agentstate_rate_limit="3") as (c, clock):
        for _ in range(5):  # a window can roll over between two requests: then start again
            answers = [c.get(f"{V1}/states/k") for _ in range(4)]
            if len({r.headers["x-ratelimit-reset"] for r in answers}) == 1:
                break
        assert [r.status_code for r in answers] == [404, 404, 404, 429]  # counted after auth, errors included
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in answers)
        reset = int(answers[0].headers["x-ratelimit-reset"])
        assert reset % 60 == 0 and 0 < reset - time.time() <= 60
        limited = answers[3]
        retry = int(limited.headers["retry-after"])
        assert 1 <= retry <= 60
        err(limited, 429, "RATE_LIMITED", f"Rate limit exceeded. Maximum 3 requests per minute. Retry after {retry} seconds.")
    for raw in ("", "abc", "0", "-5"):
        with agentstate_app(tmp_path, f"rl{raw}", agentstate_rate_limit=raw) as (c, clock):
            assert c.get(f"{V1}/states/k").headers["x-ratelimit-limit"] == "1000"  # D23


def test_request_ids(open_app):
    c = open_app
    r = c.get(f"{V1}/states/k", headers={"X-Request-Id": "abc_DEF-123"})
    assert r.headers["x-request-id"] == "abc_DEF-123"
    for bad in ("has space", "x" * 65, "dot.ted", "sl/ash"):
        r = c.get(f"{V1}/states/k", headers={"X-Request-Id": bad})
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", r.headers["x-request-id"]), r.headers["x-request-id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", c.get(f"{V1}/nothing").headers["x-request-id"])
    r = c.get(f"{V1}/states/k", headers=bearer("garbage"))
    assert r.status_code == 401 and re.fullmatch(r"[A-Za-z0-9_-]{16}", r.headers["x-request-id"])


def test_cors_preflight(tmp_path):
    with agentstate_app(tmp_path, "cors", agentstate_cors_origins="https://app.example") as (c, clock):
        r = c.options(f"{V1}/states/k", headers={"Origin": "https://app.example",
                                                 "Access-Control-Request-Method": "PUT"})
        assert r.status_code == 204
        assert r.headers["access-control-allow-headers"] == ("Authorization, Content-Type, X-Request-Id, "
                                                             "Idempotency-Key, X-Lease-Id, Last-Event-ID")
        assert r.headers["access-control-allow-methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        # a write from an origin that is not allowed is refused (a browser could send it cross-site)
        r = c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
        ok = c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}}, headers={"Origin": "https://app.example"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"


def test_body_limit_and_sdk_habits(open_app):
    c = open_app
    err(c.put(f"{V1}/states/k", content=b" " * ((10 << 20) + 1)), 413, "PAYLOAD_TOO_LARGE", "Request body too large")
    # the TypeScript SDK sends Content-Type: application/json on every request, bodies or not
    c.put(f"{V1}/states/k", json={"agent_id": "w", "data": {}})
    json_ct = {"Content-Type": "application/json"}
    assert c.get(f"{V1}/states/k", headers=json_ct).status_code == 200
    assert c.request("DELETE", f"{V1}/states/k", headers=json_ct, content=b"").status_code == 200


def test_prefix_limited_credentials(keyed):
    c = keyed
    team = bearer(live_key(c, "as_live_" + "T" * 40, ["*"]))
    c.portal.call(lambda: c.app.state.services.keys.create("default", ["*"], ["_states/team-a/"],
                                                            secret="as_live_" + "P" * 40))
    limited = bearer("as_live_" + "P" * 40)
    assert c.put(f"{V1}/states/team-a%2Fx", json={"agent_id": "w", "data": {}}, headers=limited).status_code == 200
    assert c.get(f"{V1}/states/team-a%2Fx", headers=limited).status_code == 200
    assert c.post(f"{V1}/states/team-a%2Fx/lease", json={"holder": "h"}, headers=limited).status_code == 201
    c.put(f"{V1}/states/team-b%2Fx", json={"agent_id": "w", "data": {}}, headers=team)
    for r in (c.put(f"{V1}/states/team-b%2Fx", json={"agent_id": "w", "data": {}}, headers=limited),
              c.get(f"{V1}/states/team-b%2Fx", headers=limited),
              c.get(f"{V1}/states/team-b%2Fx/events", headers=limited),
              c.post(f"{V1}/states/query", json={}, headers=limited),
              c.get(f"{V1}/states/watch", params={"once": "true"}, headers=limited),
              c.post(f"{V1}/leases/any/renew", json={}, headers=limited),
              c.post(f"{V1}/claims", json={"subject_type": "t", "subject_id": "i", "statement": "s", "evidence": [
                  {"kind": "text_hash", "source": "s", "data": "d", "hash": "0" * 64}]}, headers=limited)):
        err(r, 403, "FORBIDDEN")


def test_claims_and_tokens_are_isolated_by_project(keyed):
    c = keyed
    a = bearer(live_key(c, "as_live_" + "c" * 40, ["*"], tenant="proj-a"))
    b = bearer(live_key(c, "as_live_" + "d" * 40, ["*"], tenant="proj-b"))
    claim = c.post(f"{V1}/claims", headers=a, json={"subject_type": "t", "subject_id": "i", "statement": "s",
                   "evidence": [{"kind": "text_hash", "source": "s", "data": "d", "hash": "0" * 64}]}).json()
    tok = c.post(f"{V1}/capability-tokens", headers=a, json={"name": "a", "scopes": ["state:read"]}).json()
    err(c.get(f"{V1}/claims/{claim['id']}", headers=b), 404, "NOT_FOUND", "Claim not found")
    err(c.post(f"{V1}/claims/{claim['id']}/verify", headers=b), 404, "NOT_FOUND", "Claim not found")
    err(c.get(f"{V1}/claims/{claim['id']}/verifications", headers=b), 404, "NOT_FOUND", "Claim not found")
    assert c.get(f"{V1}/claims", headers=b).json()["data"] == []
    assert c.get(f"{V1}/capability-tokens", headers=b).json() == {"data": []}
    err(c.delete(f"{V1}/capability-tokens/{tok['id']}", headers=b), 404, "NOT_FOUND", "Capability token not found")
    assert c.get(f"{V1}/states/k", headers=bearer(tok["token"])).status_code == 404  # still a's, still valid
    assert c.get(f"{V1}/claims/{claim['id']}", headers=a).json()["status"] == "pending"
