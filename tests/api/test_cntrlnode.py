"""CntrlNode surface (specs/cntrlnode.md) in-process: statuses, error bodies, ids, list paging, auth, limits."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from support import app_settings, new_key

from stigmer.app import create_app


def err(r, status, code, message):
    assert r.status_code == status, r.text
    assert r.json() == {"error": code, "message": message}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"]


@pytest.fixture
def cn(make_client):
    return make_client()


def test_set_get_delete_versions(cn):
    r = cn.post("/v1/state/wf-1/status", json={"value": {"step": "researching"}, "ttl": 0})
    assert r.status_code == 200 and set(r.json()) == {"version", "revision"} and r.json()["version"] == 1
    rev = r.json()["revision"]
    r = cn.get("/v1/state/wf-1/status")
    assert r.json() == {"value": {"step": "researching"}, "version": 1, "revision": rev}
    r2 = cn.post("/v1/state/wf-1/status", content=b'{"value": null, "value": 7}', headers={"content-type": "text/plain"})
    assert r2.json()["version"] == 2 and r2.json()["revision"] > rev
    assert cn.get("/v1/state/wf-1/status").json()["value"] == 7
    assert cn.post("/v1/state/wf-1/status", json={"value": None}).status_code == 200
    assert cn.get("/v1/state/wf-1/status").json()["value"] is None
    r = cn.delete("/v1/state/wf-1/status")
    assert r.status_code == 204 and r.content == b""
    err(cn.delete("/v1/state/wf-1/status"), 404, "NOT_FOUND", "key not found")
    err(cn.get("/v1/state/wf-1/status"), 404, "NOT_FOUND", "key not found")
    assert cn.post("/v1/state/wf-1/status", json={"value": 1}).json()["version"] == 1
    # visible in the native API under namespace cntrlnode, key {wf}/{key}
    assert cn.get("/v1/kv/cntrlnode/wf-1/status").json()["value"] == 1


def test_stream_and_version_are_ordinary_keys(cn):
    assert cn.post("/v1/state/wf/version", json={"value": "v"}).status_code == 200
    assert cn.get("/v1/state/wf/version").json()["value"] == "v"
    assert cn.post("/v1/state/wf/stream", json={"value": "s"}).status_code == 200
    assert cn.get("/v1/state/wf/stream").json()["value"] == "s"


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"1", b"null"])
def test_body_must_be_object(cn, body):
    err(cn.post("/v1/state/wf/k", content=body), 400, "INVALID_REQUEST", "request body must be a JSON object")


def test_body_errors(cn):
    err(cn.post("/v1/state/wf/k", json={"ttl": 0}), 400, "INVALID_REQUEST", "value is required")
    for ttl in [-1, 2147483648, 1.5, "1", True]:
        err(cn.post("/v1/state/wf/k", json={"value": 1, "ttl": ttl}), 400, "INVALID_REQUEST",
            "ttl must be an integer between 0 and 2147483647")
    for ev in [None, -1, 1.5, "1", "MISSING"]:
        body = {"value": 1} if ev == "MISSING" else {"value": 1, "expectedVersion": ev}
        err(cn.post("/v1/state/wf/k/version", json=body), 400, "INVALID_REQUEST",
            "expectedVersion must be a non-negative integer")
    err(cn.post("/v1/state/wf/k/version", json={"expectedVersion": 0}), 400, "INVALID_REQUEST", "value is required")
    assert cn.post("/v1/state/wf/k", json={"value": 1, "ttl": 2147483647}).status_code == 200


def test_size_limits(make_client):
    c = make_client(cntrlnode_max_value_bytes=100)
    assert c.post("/v1/state/wf/k", json={"value": "x" * 98}).status_code == 200
    err(c.post("/v1/state/wf/k", json={"value": "x" * 99}), 413, "PAYLOAD_TOO_LARGE", "value exceeds 100 bytes")
    err(c.post("/v1/state/wf/k", content=b" " * 65637), 413, "PAYLOAD_TOO_LARGE", "request body exceeds 65636 bytes")
    err(c.post("/v1/state/wf/k/version", json={"value": "x" * 99, "expectedVersion": 9}), 413,
        "PAYLOAD_TOO_LARGE", "value exceeds 100 bytes")  # value size before state (409)
    assert c.get("/v1/state/wf/k").json()["version"] == 1


def test_default_limits_messages(cn):
    err(cn.post("/v1/state/wf/k", content=b" " * 1114113), 413, "PAYLOAD_TOO_LARGE",
        "request body exceeds 1114112 bytes")
    err(cn.post("/v1/state/wf/k", json={"value": "x" * 1048575}), 413, "PAYLOAD_TOO_LARGE",
        "value exceeds 1048576 bytes")


def test_compare_and_set(cn):
    assert cn.post("/v1/state/wf/c/version", json={"value": 1, "expectedVersion": 0}).json()["version"] == 1
    r = cn.post("/v1/state/wf/c/version", json={"value": 1, "expectedVersion": 0})
    assert r.status_code == 409 and r.json() == {"error": "VERSION_CONFLICT",
                                                 "message": "expected version 0, current version 1",
                                                 "currentVersion": 1}
    assert cn.post("/v1/state/wf/c/version", json={"value": 2, "expectedVersion": 1}).json()["version"] == 2
    r = cn.post("/v1/state/wf/absent/version", json={"value": 1, "expectedVersion": 3})
    assert r.status_code == 409 and r.json()["currentVersion"] == 0
    assert cn.get("/v1/state/wf/c").json()["value"] == 2


def test_ids(cn):
    long = "a" * 257
    err(cn.get(f"/v1/state/{long}/k"), 400, "INVALID_REQUEST", "invalid workflowId")
    err(cn.get(f"/v1/state/wf/{long}"), 400, "INVALID_REQUEST", "invalid key")
    assert cn.post(f"/v1/state/wf/{'a' * 256}", json={"value": 1}).status_code == 200
    err(cn.get("/v1/state/wf/a%2Fb"), 400, "INVALID_REQUEST", "invalid key")
    err(cn.get("/v1/state/a%2Fb/k"), 400, "INVALID_REQUEST", "invalid workflowId")
    err(cn.get("/v1/state/wf/%2E%2E"), 400, "INVALID_REQUEST", "invalid key")
    err(cn.get("/v1/state/wf/a%01b"), 400, "INVALID_REQUEST", "invalid key")
    err(cn.get("/v1/state/wf/a%7Fb"), 400, "INVALID_REQUEST", "invalid key")
    err(cn.get("/v1/state/wf/%FF"), 400, "INVALID_REQUEST", "invalid key")
    err(cn.get("/v1/state/%2E/k"), 400, "INVALID_REQUEST", "invalid workflowId")
    for name in ["a b", "x:y@z~", "ключ", "Straße"]:
        assert cn.post(f"/v1/state/wf/{name}", json={"value": name}).status_code == 200
        assert cn.get(f"/v1/state/wf/{name}").json()["value"] == name


def test_unknown_paths_and_methods(cn):
    for path in ["/v1/state/wf/", "/v1/state//k", "/v1/state/wf/k/other", "/v1/state/wf/k/stream/x",
                 "/v1/state", "/v1/state/"]:
        err(cn.get(path), 404, "NOT_FOUND", "route not found")
    for method, path, allow in [("PUT", "/v1/state/wf/k", "GET, POST, DELETE"), ("POST", "/v1/state/wf", "GET"),
                                ("DELETE", "/v1/state/wf", "GET"), ("POST", "/v1/state/wf/k/stream", "GET"),
                                ("GET", "/v1/state/wf/k/version", "POST"), ("PATCH", "/v1/state/wf/k", "GET, POST, DELETE")]:
        r = cn.request(method, path)
        err(r, 405, "METHOD_NOT_ALLOWED", "method not allowed")
        assert r.headers["allow"] == allow


def test_state_context_with_a_session_id_is_semvecs(cn):
    # semvec §2: /v1/state/context is semvec's only when the query names session_id (even empty);
    # /v1/state/metrics is always CntrlNode's (the workflow `metrics`).
    r = cn.get("/v1/state/context?session_id=")
    assert r.status_code == 404 and r.json() == {"detail": "Session not found"}
    assert cn.get("/v1/state/metrics?session_id=abc").json() == {"keys": []}
    cn.post("/v1/state/context/k", json={"value": 1})
    assert cn.get("/v1/state/context").json()["keys"][0]["key"] == "k"
    assert cn.get("/v1/state/context?limit=5").json()["keys"][0]["key"] == "k"
    assert cn.get("/v1/state/metrics").json() == {"keys": []}


def test_list_order_shape_and_paging(cn):
    names = ["b", "aa", "_", "a", "Z", "B"]
    for n in names:
        cn.post(f"/v1/state/wf/{n}", json={"value": 1, "ttl": 100 if n == "a" else 0})
    cn.post("/v1/state/wf2/zz", json={"value": 1})
    r = cn.get("/v1/state/wf").json()
    assert list(r) == ["keys"]
    assert [k["key"] for k in r["keys"]] == ["B", "Z", "_", "a", "aa", "b"]
    entry = r["keys"][3]
    assert set(entry) == {"key", "version", "createdAt", "updatedAt", "expiresAt"}
    assert entry["createdAt"].endswith("Z") and len(entry["createdAt"]) == 24 and entry["expiresAt"] is not None
    assert r["keys"][0]["expiresAt"] is None
    assert cn.get("/v1/state/unknown").json() == {"keys": []}
    assert [k["key"] for k in cn.get("/v1/state/wf?prefix=a").json()["keys"]] == ["a", "aa"]
    seen, cursor = [], None
    while True:
        page = cn.get("/v1/state/wf", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [k["key"] for k in page["keys"]]
        cursor = page["nextCursor"]
        if cursor is None:
            assert len(page["keys"]) == 2  # a full last page ends with null
            break
    assert seen == ["B", "Z", "_", "a", "aa", "b"]
    page = cn.get("/v1/state/wf", params={"cursor": cn.get("/v1/state/wf?limit=1").json()["nextCursor"]}).json()
    assert [k["key"] for k in page["keys"]] == ["Z", "_", "a", "aa", "b"] and page["nextCursor"] is None
    for bad in ["0", "1001", "x", "-1", ""]:
        err(cn.get(f"/v1/state/wf?limit={bad}"), 400, "INVALID_REQUEST", "limit must be an integer between 1 and 1000")
    err(cn.get("/v1/state/wf?cursor=!!!"), 400, "INVALID_REQUEST", "invalid cursor")
    err(cn.get("/v1/state/wf?cursor=YWJj"), 400, "INVALID_REQUEST", "invalid cursor")


def test_ttl_expiry_and_clear(cn):
    cn.post("/v1/state/wf/t", json={"value": 1, "ttl": 1})
    cn.post("/v1/state/wf/keep", json={"value": 1, "ttl": 1})
    cn.post("/v1/state/wf/keep", json={"value": 2})  # absent ttl clears the expiry
    assert cn.get("/v1/state/wf").json()["keys"][0]["expiresAt"] is None
    time.sleep(1.1)
    err(cn.get("/v1/state/wf/t"), 404, "NOT_FOUND", "key not found")
    assert [k["key"] for k in cn.get("/v1/state/wf").json()["keys"]] == ["keep"]
    err(cn.delete("/v1/state/wf/t"), 404, "NOT_FOUND", "key not found")
    assert cn.post("/v1/state/wf/t/version", json={"value": 1, "expectedVersion": 0}).json()["version"] == 1


def test_auth(keyed_client):
    c = keyed_client
    k1, k2 = new_key(c, "ta"), new_key(c, "tb")
    for headers in [{}, {"Authorization": "Bearer nope"}, {"X-CntrlNode-Key": "nope"}, {"Authorization": "Basic k1"}]:
        r = c.get("/v1/state/wf/k", headers=headers)
        err(r, 401, "UNAUTHORIZED", "missing or invalid API key")
        assert r.headers["www-authenticate"] == "Bearer"
    err(c.get("/v1/state/wf/k/x/y"), 401, "UNAUTHORIZED", "missing or invalid API key")  # 401 before 404
    err(c.get(f"/v1/state/wf/k?apiKey={k1}"), 401, "UNAUTHORIZED", "missing or invalid API key")  # stream only
    assert c.post("/v1/state/wf/k", json={"value": "a"}, headers={"Authorization": f"bearer {k1}"}).status_code == 200
    assert c.get("/v1/state/wf/k", headers={"X-CntrlNode-Key": k1}).json()["value"] == "a"
    # k2 is another tenant: it does not see ta's key
    err(c.get("/v1/state/wf/k", headers={"X-CntrlNode-Key": k2}), 404, "NOT_FOUND", "key not found")
    assert c.get("/v1/state/wf/k", headers={"X-CntrlNode-Key": "bad", "Authorization": f"Bearer {k2}"}).status_code == 404
    # a read-only key may read but not write, in this surface's shape
    ro = new_key(c, "ta", scopes=["read"])
    assert c.get("/v1/state/wf/k", headers={"X-CntrlNode-Key": ro}).json()["value"] == "a"
    err(c.post("/v1/state/wf/k", json={"value": "b"}, headers={"X-CntrlNode-Key": ro}), 403, "FORBIDDEN",
        "this credential lacks the write scope")
    assert c.get("/health").json() == {"status": "ok"}


def test_rate_limit_off_by_default_and_configurable(make_client):
    c = make_client(cntrlnode_rate_limit=2)
    assert c.get("/v1/state/wf").status_code == 200
    assert c.get("/v1/state/wf").status_code == 200
    r = c.get("/v1/state/wf")
    err(r, 429, "RATE_LIMITED", "rate limit exceeded")
    assert int(r.headers["retry-after"]) >= 1
    assert "x-ratelimit-limit" not in r.headers
    assert c.get("/health").status_code == 200  # never limited


def test_request_id_echo(cn):
    assert cn.get("/v1/state/wf", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert cn.get("/v1/state/wf/x").headers["x-request-id"]


def test_cors_only_when_configured(make_client):
    c = make_client()
    assert "access-control-allow-origin" not in c.get("/v1/state/wf", headers={"Origin": "https://a.example"}).headers
    c2 = make_client(cors_origins="https://a.example")
    r = c2.options("/v1/state/wf/k", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://a.example"
    assert "X-CntrlNode-Key" in r.headers["access-control-allow-headers"]
    assert c2.get("/v1/state/wf", headers={"Origin": "https://a.example"}).headers[
        "access-control-allow-origin"] == "https://a.example"


def test_stream_errors(make_client):
    c = make_client(cntrlnode_max_streams=0)
    err(c.get("/v1/state/wf/k/stream?fromRevision=x"), 400, "INVALID_REQUEST", "fromRevision must be a non-negative integer")
    err(c.get("/v1/state/wf/k/stream", headers={"Last-Event-ID": "-1"}), 400, "INVALID_REQUEST", "invalid Last-Event-ID")
    r = c.get("/v1/state/wf/k/stream")
    err(r, 429, "RATE_LIMITED", "too many open streams")
    assert r.headers["retry-after"] == "1"


def test_stream_compacted_for_future_position(cn):
    cn.post("/v1/state/wf/k", json={"value": 1})
    r = cn.get("/v1/state/wf/k/stream", headers={"Last-Event-ID": "999"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text == ("retry: 3000\nid: 1\n\nevent: compacted\nid: 1\ndata: "
                      '{"workflowId":"wf","key":"k","oldestRevision":1,"currentRevision":1}\n\n')


async def _cas_race(tmp_path, n):
    app = create_app(app_settings({"data_dir": str(tmp_path / "race")}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            await c.post("/v1/state/wf/c", json={"value": 0})
            cas = await asyncio.gather(*[c.post("/v1/state/wf/c/version", json={"value": i, "expectedVersion": 1})
                                         for i in range(n)])
            sets = await asyncio.gather(*[c.post("/v1/state/wf/s", json={"value": i}) for i in range(n)])
    return cas, sets


def test_concurrent_cas_exactly_one_winner_and_sets_distinct(tmp_path):
    cas, sets = asyncio.run(_cas_race(tmp_path, 30))
    wins = [r for r in cas if r.status_code == 200]
    assert len(wins) == 1 and wins[0].json()["version"] == 2
    losers = [r.json() for r in cas if r.status_code != 200]
    assert len(losers) == 29 and all(x["error"] == "VERSION_CONFLICT" and x["currentVersion"] == 2 for x in losers)
    assert sorted(r.json()["version"] for r in sets) == list(range(1, 31))
