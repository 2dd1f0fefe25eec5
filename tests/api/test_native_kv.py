"""The native /v1 key routes, in-process with the real app and a real SQLite file."""

import pytest
from support import ADMIN_KEY


def test_put_get_roundtrip_exact_value_and_etag(client):
    r = client.put("/v1/kv/app/agents/1/status", content=b'{"b":1,"a":[1.0,2,"\xc3\xa9"],"n":null}')
    assert r.status_code == 201 and r.headers["etag"] == '"1.1"' and r.headers["x-stigmer-revision"] == "1"
    assert r.json()["version"] == 1 and "value" not in r.json()
    g = client.get("/v1/kv/app/agents/1/status")
    assert g.status_code == 200
    assert b'"value":{"b":1,"a":[1.0,2,"\xc3\xa9"],"n":null}' in g.content
    body = g.json()
    assert body["key"] == "agents/1/status" and body["namespace"] == "app" and body["expires_at"] is None
    assert body["created_at"].endswith("Z") and g.headers["etag"] == '"1.1"'
    r2 = client.put("/v1/kv/app/agents/1/status", content=b"2")
    assert r2.status_code == 200 and r2.headers["etag"] == '"2.2"'
    assert "x-request-id" in g.headers


def test_conditional_requests(client):
    client.put("/v1/kv/app/k", content=b"1")
    assert client.get("/v1/kv/app/k", headers={"If-None-Match": '"1.1"'}).status_code == 304
    assert client.get("/v1/kv/app/k", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get("/v1/kv/app/k", headers={"If-None-Match": '"9.9"'}).status_code == 200
    r = client.put("/v1/kv/app/k", content=b"2", headers={"If-Match": '"2"'})
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_conflict"
    assert r.json()["error"]["details"]["current_version"] == 1
    assert client.put("/v1/kv/app/k", content=b"2", headers={"If-Match": '"1.1"'}).status_code == 200
    assert client.put("/v1/kv/app/k", content=b"3", headers={"If-Match": '"2.1"'}).status_code == 409  # wrong revision
    assert client.put("/v1/kv/app/new", content=b"1", headers={"If-None-Match": "*"}).status_code == 201
    assert client.put("/v1/kv/app/new", content=b"1", headers={"If-None-Match": "*"}).status_code == 409
    assert client.put("/v1/kv/app/absent", content=b"1", headers={"If-Match": "*"}).status_code == 412
    assert client.delete("/v1/kv/app/k", headers={"If-Match": '"1"'}).status_code == 409
    d = client.delete("/v1/kv/app/k", headers={"If-Match": '"2"'})
    assert d.status_code == 200 and d.json() == {"deleted": True, "revision": 4, "version": 2}


def test_patch_operations(client):
    r = client.patch("/v1/kv/app/c", json={"op": "incr", "amount": 5})
    assert r.status_code == 201 and r.json()["value"] == 5
    assert client.patch("/v1/kv/app/c", json={"op": "incr"}).json()["value"] == 6
    assert client.patch("/v1/kv/app/o", json={"op": "incr", "field": "n", "amount": 2}).json()["value"] == {"n": 2}
    assert client.patch("/v1/kv/app/o", json={"op": "incr", "path": ["d", "e"]}).json()["value"] == {"n": 2, "d": {"e": 1}}
    r = client.patch("/v1/kv/app/o", json={"op": "merge", "value": {"d": {"f": 1}}, "deep": True})
    assert r.json()["value"] == {"n": 2, "d": {"e": 1, "f": 1}}
    r = client.patch("/v1/kv/app/o", content=b'{"n":null}', headers={"Content-Type": "application/merge-patch+json"})
    assert r.json()["value"] == {"d": {"e": 1, "f": 1}}
    r = client.patch("/v1/kv/app/o", content=b'[{"op":"add","path":"/z","value":[1]}]',
                     headers={"Content-Type": "application/json-patch+json"})
    assert r.json()["value"] == {"d": {"e": 1, "f": 1}, "z": [1]}
    assert client.patch("/v1/kv/app/l", json={"op": "append", "value": "a", "max": 2}).json()["value"] == ["a"]
    client.patch("/v1/kv/app/l", json={"op": "append", "value": "b", "max": 2})
    assert client.patch("/v1/kv/app/l", json={"op": "append", "value": "c", "max": 2}).json()["value"] == ["b", "c"]
    r = client.patch("/v1/kv/app/l", json={"op": "incr"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "type_mismatch"
    r = client.patch("/v1/kv/app/o", json={"op": "patch", "patch": [{"op": "test", "path": "/z", "value": 0}]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "patch_failed"
    r = client.patch("/v1/kv/app/missing", json={"op": "patch", "patch": []})
    assert r.status_code == 404


def test_ttl(client):
    r = client.put("/v1/kv/app/t?ttl=60", content=b"1")
    assert r.json()["expires_at"] is not None
    assert client.put("/v1/kv/app/t?ttl=-1", content=b"1").status_code == 400
    assert client.put("/v1/kv/app/t?ttl=abc", content=b"1").status_code == 400
    assert client.put("/v1/kv/app/t", content=b"1").json()["expires_at"] is None


def test_list_pagination_and_batch(client):
    for k in ["a/1", "a/2", "a/3", "b"]:
        client.put(f"/v1/kv/app/{k}", content=b'"' + k.encode() + b'"')
    page = client.get("/v1/kv/app", params={"prefix": "a/", "limit": 2}).json()
    assert [e["key"] for e in page["entries"]] == ["a/1", "a/2"] and page["next_cursor"]
    page2 = client.get("/v1/kv/app", params={"prefix": "a/", "limit": 2, "cursor": page["next_cursor"]}).json()
    assert [e["key"] for e in page2["entries"]] == ["a/3"] and page2["next_cursor"] is None
    bare = client.get("/v1/kv/app", params={"values": "false"}).json()
    assert "value" not in bare["entries"][0]
    b = client.post("/v1/kv/app:batch", json={"keys": ["b", "nope", "a/1"]}).json()
    assert [e and e["value"] for e in b["entries"]] == ["b", None, "a/1"]
    assert client.post("/v1/kv/app:batch", json={"keys": []}).status_code == 400
    assert client.get("/v1/kv/app", params={"cursor": "!!!"}).status_code == 400
    assert client.get("/v1/kv/app", params={"limit": "0"}).status_code == 400


def test_history(client):
    for i in range(3):
        client.put("/v1/kv/app/h", content=str(i).encode())
    h = client.get("/v1/history/app/h", params={"limit": 2}).json()
    assert [c["value"] for c in h["history"]] == [2, 1] and h["next_before"] == 2
    h2 = client.get("/v1/history/app/h", params={"before": h["next_before"]}).json()
    assert [c["value"] for c in h2["history"]] == [0] and h2["next_before"] is None


def test_txn(client):
    client.put("/v1/kv/app/a", content=b"1")
    r = client.post("/v1/txn", json={
        "compare": [{"namespace": "app", "key": "a", "version": 1}],
        "ops": [{"op": "put", "namespace": "app", "key": "b", "value": {"x": 1}},
                {"op": "incr", "namespace": "app", "key": "a"},
                {"op": "delete", "namespace": "other", "key": "zz"}]})
    assert r.status_code == 404  # deleting an absent key fails the whole transaction
    assert client.get("/v1/kv/app/b").status_code == 404
    r = client.post("/v1/txn", json={
        "compare": [{"namespace": "app", "key": "a", "version": 1}],
        "ops": [{"op": "put", "namespace": "app", "key": "b", "value": {"x": 1}},
                {"op": "incr", "namespace": "app", "key": "a"}]})
    assert r.status_code == 200
    body = r.json()
    assert body["revision"] == 2 and [x["mod_revision"] for x in body["results"]] == [2, 2]
    r = client.post("/v1/txn", json={"compare": [{"namespace": "app", "key": "a", "version": 1}], "ops": []})
    assert r.status_code == 409 and r.json()["error"]["code"] == "compare_failed"
    assert client.post("/v1/txn", json={"ops": [{"op": "nope", "namespace": "a", "key": "b"}]}).status_code == 400


@pytest.mark.parametrize("method,path,kwargs,status,code", [
    ("get", "/v1/kv/app/missing", {}, 404, "not_found"),
    ("get", "/nowhere", {}, 404, "not_found"),
    ("post", "/v1/kv/app/k", {}, 405, "method_not_allowed"),
    ("put", "/v1/kv/app/k", {"content": b"{bad"}, 400, "invalid_json"),
    ("put", "/v1/kv/app/k", {"content": b""}, 400, "invalid_json"),
    ("put", "/v1/kv/app/k", {"content": b"NaN"}, 400, "invalid_json"),
    ("put", "/v1/kv/bad$ns/k", {"content": b"1"}, 400, "invalid_argument"),
    ("put", "/v1/kv/app/" + "k" * 1025, {"content": b"1"}, 400, "invalid_argument"),
    ("put", "/v1/kv/app/k", {"content": b'"' + b"x" * 2000 + b'"'}, 413, "value_too_large"),
    ("put", "/v1/kv/app/k", {"content": b"[" * 70 + b"]" * 70}, 400, "invalid_argument"),
    ("put", "/v1/kv/app/k", {"content": b" " * 70000}, 413, "payload_too_large"),
    ("patch", "/v1/kv/app/k", {"json": {"op": "explode"}}, 400, "invalid_argument"),
    ("patch", "/v1/kv/app/k", {"json": {"op": "incr", "amount": "1"}}, 400, "invalid_argument"),
    ("patch", "/v1/kv/app/k", {"json": {"op": "merge", "value": [1]}}, 400, "invalid_argument"),
    ("patch", "/v1/kv/app/k", {"json": {"op": "append", "value": 1, "max": 0}}, 400, "invalid_argument"),
    ("delete", "/v1/kv/app/missing", {}, 404, "not_found"),
])
def test_errors_use_one_envelope(make_client, method, path, kwargs, status, code):
    client = make_client(max_value_bytes=1000)
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["request_id"] == r.headers["x-request-id"]


def test_request_id_is_echoed_when_valid(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id"}).headers["x-request-id"] != "bad id"


def test_health_ready_openapi_docs_settings(client, keyed_client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"][0]["name"] == "database"
    spec = client.get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0" and "/v1/txn" in spec["paths"] and "EntryOut" in spec["components"]["schemas"]
    assert "/docs/docs.js" in client.get("/docs").text  # the page renders the documents below
    assert "/v1/watch" in client.get("/docs/openapi/native.json").json()["paths"]
    assert client.get("/v1/settings").status_code == 403  # open mode has no admin
    settings = keyed_client.get("/v1/settings", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert settings["max_value_bytes"] == 1_048_576 and settings["admin_key"] == "(set)"


def test_fast_path_and_full_route_answer_alike(client):
    """Plain GET/PUT/PATCH take the pure-ASGI fast path; a query string sends them through the router."""
    fast_put = client.put("/v1/kv/app/same", content=b'{"a":1}')
    slow_put = client.put("/v1/kv/app/same?ttl=", content=b'{"a":1}')
    assert (fast_put.status_code, slow_put.status_code) == (201, 200)
    assert fast_put.headers["etag"] == '"1.1"' and slow_put.headers["etag"] == '"2.2"'
    fast, slow = client.get("/v1/kv/app/same"), client.get("/v1/kv/app/same?x=1")
    assert fast.content == slow.content and fast.headers["etag"] == slow.headers["etag"]
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    for path in ("/v1/kv/app/nope", "/v1/kv/app/nope?x=1"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"]["details"] == {"namespace": "app", "key": "nope"}
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    assert client.put("/v1/kv/bad$/k", content=b"1").json()["error"]["code"] == "invalid_argument"
    fast, slow = client.patch("/v1/kv/app/n", json={"op": "incr"}), client.patch("/v1/kv/app/n?x=1", json={"op": "incr"})
    assert (fast.status_code, slow.status_code, fast.json()["value"], slow.json()["value"]) == (201, 200, 1, 2)
    assert fast.json().keys() == slow.json().keys() and fast.headers.keys() == slow.headers.keys()
    for path in ("/v1/kv/app/m", "/v1/kv/app/m?x=1"):
        merged = client.patch(path, content=b'{"a":{"b":1},"c":null}', headers={"Content-Type": "application/merge-patch+json"})
        assert merged.json()["value"] == {"a": {"b": 1}}
        patched = client.patch(path, json=[{"op": "add", "path": "/d", "value": 2}],
                               headers={"Content-Type": "application/json-patch+json"})
        assert patched.json()["value"] == {"a": {"b": 1}, "d": 2}
        bad = client.patch(path, json={"op": "incr", "amount": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "amount"
        client.delete(path)


def test_validation_errors_name_the_field_and_unknown_members_are_refused(client):
    r = client.post("/v1/txn", json={"compares": [{"namespace": "a", "key": "k", "exists": True}]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "compares"  # a typo never drops a guard
    r = client.post("/v1/txn", json={"ops": [{"op": "put", "namespace": "a", "key": 1, "value": 1}]})
    assert r.json()["error"]["details"]["field"] == "ops[0].key"
    r = client.patch("/v1/kv/a/b", json={"op": "incr", "amount": "x"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "amount"
    assert "<class" not in r.text


def test_list_starts_after_a_key(client):
    for k in ["s/1", "s/2", "s/3", "t"]:
        client.put(f"/v1/kv/app/{k}", content=b"1")
    page = client.get("/v1/kv/app", params={"prefix": "s/", "start_after": "s/1", "limit": 1}).json()
    assert [e["key"] for e in page["entries"]] == ["s/2"] and page["next_cursor"]
    rest = client.get("/v1/kv/app", params={"prefix": "s/", "cursor": page["next_cursor"]}).json()
    assert [e["key"] for e in rest["entries"]] == ["s/3"]
    between = client.get("/v1/kv/app", params={"prefix": "s/", "start_after": "s/15"}).json()
    assert [e["key"] for e in between["entries"]] == ["s/2", "s/3"]  # any key, not only a stored one
    assert [e["key"] for e in client.get("/v1/kv/app", params={"start_after": "s/3"}).json()["entries"]] == ["t"]
    r = client.get("/v1/kv/app", params={"start_after": "s/1", "cursor": page["next_cursor"]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "start_after"
