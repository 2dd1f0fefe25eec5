"""statevec surface (specs/statevec.md), in-process with the app's lifespan: every status and error body."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import httpx
import pytest
from support import ADMIN_KEY, app_settings, new_key, stored

from stigmer.app import create_app

SECRET = "demo:board:k7Qp2vXr9LmT4wZa"
H = "9fea0be54ab75af70b2560d112efbf66c684861964ab19fef5f8118c9dcd4a2d"
EXPOSE = "ETag, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"


@pytest.fixture
def sv(make_client):
    return make_client(statevec_rate_limit_anon=0, statevec_rate_limit_key=0)


def err(r, status, message):
    assert r.status_code == status, r.text
    assert r.json() == {"ok": False, "error": message}
    assert r.headers["content-type"] == "application/json"


def put(c, key=SECRET, val=None, **extra):
    return c.put("/v", json={"key": key, "val": val, **extra})


def patch(c, **body):
    return c.patch("/v", json={"key": SECRET, **body})


def test_address_is_sha256_of_secret_and_put_roundtrip(sv):
    r = put(sv, val={"status": "running"}, ttl=3600)
    assert r.status_code == 200 and r.json() == {"ok": True, "hash": H}
    assert hashlib.sha256(SECRET.encode()).hexdigest() == H
    etag = r.headers["etag"]
    g = sv.get("/v/" + H.upper())
    assert g.status_code == 200 and set(g.json()) == {"val", "ts"}
    assert g.json()["val"] == {"status": "running"}
    assert g.headers["etag"] == etag and g.headers["cache-control"] == "no-cache"
    assert abs(g.json()["ts"] - time.time()) < 5
    assert g.headers["access-control-allow-origin"] == "*"
    assert g.headers["access-control-expose-headers"] == EXPOSE


def test_values_round_trip_exactly(sv):
    raw = b'{"key":"rt","val":{"z":1,"a":[1.5,12345678901234567890,"\xc3\xa9",null,true],"m":{}}}'
    assert sv.put("/v", content=raw).status_code == 200
    body = sv.get("/v/" + hashlib.sha256(b"rt").hexdigest()).content
    assert body.startswith(b'{"val":{"z":1,"a":[1.5,12345678901234567890,"\xc3\xa9",null,true],"m":{}},"ts":')


def test_body_parsed_whatever_content_type(sv):
    r = sv.put("/v", content=json.dumps({"key": "ct", "val": 1}), headers={"content-type": "text/plain"})
    assert r.status_code == 200
    r = sv.put("/v", content=json.dumps({"key": "ct", "val": 2}),
               headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200


@pytest.mark.parametrize("raw", [b"", b"{", b"NaN", b'{"key":"a","val":NaN}', b'{"key":"a","val":Infinity}',
                                 b'{"key":"a","val":"\\ud800"}', b'{"key":"a","val":"\xff"}'])
def test_invalid_json(sv, raw):
    err(sv.put("/v", content=raw), 400, "invalid JSON")


@pytest.mark.parametrize("raw", [b"[]", b"1", b"null", b'"x"'])
def test_body_must_be_object(sv, raw):
    err(sv.put("/v", content=raw), 400, "body must be a JSON object")
    err(sv.post("/v/batch", content=raw), 400, "body must be a JSON object")


@pytest.mark.parametrize("key", [None, "", 5, ["a"], "x" * 1025, "MISSING"])
def test_key_rules(sv, key):
    body = {"val": 1} if key == "MISSING" else {"key": key, "val": 1}
    err(sv.put("/v", json=body), 400, "key must be a string of 1-1024 characters")
    err(sv.patch("/v", json={**body, "op": "incr"}), 400, "key must be a string of 1-1024 characters")
    err(sv.request("DELETE", "/v", json=body), 400, "key must be a string of 1-1024 characters")


def test_key_of_1024_code_points_is_accepted(sv):
    assert put(sv, key="é" * 1024, val=1).status_code == 200


def test_val_required_and_null_is_a_value(sv):
    err(sv.put("/v", json={"key": SECRET}), 400, "val is required")
    assert put(sv, val=None).status_code == 200
    assert sv.get("/v/" + H).json()["val"] is None
    err(patch(sv, op="merge"), 400, "val is required")
    err(patch(sv, op="append"), 400, "val is required")


@pytest.mark.parametrize("ttl", [0, -1, 1.5, "60", True, [1]])
def test_ttl_must_be_positive_integer(sv, ttl):
    err(put(sv, val=1, ttl=ttl), 400, "ttl must be a positive integer")
    err(patch(sv, op="incr", ttl=ttl), 400, "ttl must be a positive integer")


def test_ttl_maximum_and_integral_float(sv):
    err(put(sv, val=1, ttl=2592001), 400, "ttl exceeds maximum of 2592000 seconds")
    assert put(sv, val=1, ttl=2592000).status_code == 200
    assert put(sv, val=1, ttl=60.0).status_code == 200
    assert put(sv, val=1, ttl=None).status_code == 200


def test_expiry_is_set_from_every_write(make_client):
    c = make_client(statevec_rate_limit_anon=0)
    t0 = time.time()
    put(c, val=1)  # default 86400
    e = stored(c, "default", "statevec", H)
    assert abs(e.expires_at - (t0 + 86400)) < 5
    patch(c, op="incr", ttl=100)  # shortens
    assert abs(stored(c, "default", "statevec", H).expires_at - (t0 + 100)) < 5
    patch(c, op="incr")  # PATCH without ttl: now + default
    assert abs(stored(c, "default", "statevec", H).expires_at - (t0 + 86400)) < 5


def test_default_ttl_zero_is_persistent(make_client):
    c = make_client(statevec_rate_limit_anon=0, statevec_default_ttl=0)
    put(c, val=1)
    assert stored(c, "default", "statevec", H).expires_at is None
    put(c, val=1, ttl=50)
    assert stored(c, "default", "statevec", H).expires_at is not None


def test_expired_is_missing_everywhere_and_patch_starts_fresh(sv):
    put(sv, val=41, ttl=1)
    put(sv, key="other", val={"a": 1}, ttl=1)
    time.sleep(1.1)
    err(sv.get("/v/" + H), 404, "not found")
    assert sv.post("/v/batch", json={"hashes": [H]}).json() == {"results": [None]}
    err(sv.request("DELETE", "/v", json={"key": SECRET}), 404, "not found")
    assert patch(sv, op="incr").json()["val"] == 1
    assert sv.patch("/v", json={"key": "other", "op": "merge", "val": {"b": 2}}).json()["val"] == {"b": 2}


def test_invalid_hash(sv):
    for bad in ["abc", H[:-1], H + "0", "g" * 64]:
        err(sv.get("/v/" + bad), 400, "invalid hash")
    err(sv.post("/v/batch", json={"hashes": [H, "abc"]}), 400, "invalid hash")
    err(sv.post("/v/batch", json={"hashes": [H, 5]}), 400, "invalid hash")


def test_etag_and_if_none_match(sv):
    tag = put(sv, val=1).headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    inner = tag.strip('"')
    for header in [tag, f"W/{tag}", inner, "*", f'"nope", {tag}']:
        r = sv.get("/v/" + H, headers={"If-None-Match": header})
        assert r.status_code == 304 and r.content == b"", header
        assert r.headers["etag"] == tag and r.headers["cache-control"] == "no-cache"
    assert sv.get("/v/" + H, headers={"If-None-Match": '"nope"'}).status_code == 200
    # every write changes it, also an identical PUT and an empty merge
    tags = {tag, put(sv, val=1).headers["etag"]}
    tags.add(put(sv, key=SECRET, val={}).headers["etag"])
    tags.add(patch(sv, op="merge", val={}).headers["etag"])
    assert len(tags) == 4
    assert sv.get("/v/" + H).headers["etag"] in tags


def test_etag_never_reused_after_delete(sv):
    t1 = put(sv, val=1).headers["etag"]
    sv.request("DELETE", "/v", json={"key": SECRET})
    t2 = put(sv, val=1).headers["etag"]
    assert t1 != t2
    err(sv.get("/v/" + "0" * 64, headers={"If-None-Match": "*"}), 404, "not found")


def test_head(sv):
    put(sv, val={"a": 1})
    r = sv.head("/v/" + H)
    assert r.status_code == 200 and r.content == b"" and r.headers["etag"]
    assert sv.head("/v/" + "0" * 64).status_code == 404


def test_batch(sv):
    put(sv, val={"status": "running"})
    h2 = put(sv, key="b", val=7).json()["hash"]
    r = sv.post("/v/batch", json={"hashes": [H, "0" * 64, h2.upper(), H]})
    assert r.status_code == 200 and "etag" not in r.headers
    res = r.json()["results"]
    assert res[1] is None and res[0]["val"] == {"status": "running"} and res[2]["val"] == 7 and res[3] == res[0]
    assert set(res[0]) == {"val", "ts"}
    for hashes in [None, "x", [], [H] * 21]:
        err(sv.post("/v/batch", json={} if hashes is None else {"hashes": hashes}), 400,
            "hashes must be a list of 1-20 hashes")
    assert sv.post("/v/batch", json={"hashes": [H] * 20}).status_code == 200


def test_incr(sv):
    r = patch(sv, op="incr", field="count", amount=1)
    assert r.status_code == 200 and r.json() == {"ok": True, "hash": H, "val": {"count": 1}}
    assert r.headers["etag"] == sv.get("/v/" + H).headers["etag"]
    assert patch(sv, op="incr", field="count", amount=-0.5).json()["val"] == {"count": 0.5}
    assert patch(sv, op="incr", field="a.b").json()["val"] == {"count": 0.5, "a.b": 1}
    put(sv, val=2**63 - 1)
    assert patch(sv, op="incr").json()["val"] == float(2**63)
    put(sv, val=0.1)
    assert patch(sv, op="incr", amount=0.2).json()["val"] == 0.30000000000000004
    put(sv, val=5)
    assert patch(sv, op="incr", amount=None, field=None).json()["val"] == 6


def test_incr_errors(sv):
    err(patch(sv, op="incr", field=""), 400, "field must be a non-empty string")
    err(patch(sv, op="incr", field=3), 400, "field must be a non-empty string")
    err(patch(sv, op="incr", amount="1"), 400, "amount must be a number")
    err(patch(sv, op="incr", amount=True), 400, "amount must be a number")
    put(sv, val="x")
    err(patch(sv, op="incr"), 409, "cannot incr: value is not a number")
    put(sv, val=True)
    err(patch(sv, op="incr"), 409, "cannot incr: value is not a number")
    err(patch(sv, op="incr", field="a"), 409, "cannot incr: value is not an object")
    put(sv, val={"a": "1", "b": False})
    err(patch(sv, op="incr", field="a"), 409, "cannot incr: field is not a number")
    err(patch(sv, op="incr", field="b"), 409, "cannot incr: field is not a number")
    assert sv.get("/v/" + H).json()["val"] == {"a": "1", "b": False}  # nothing changed


def test_merge(sv):
    assert patch(sv, op="merge", val={"users": {"alice": 1}, "z": 0}).json()["val"] == {"users": {"alice": 1}, "z": 0}
    assert patch(sv, op="merge", val={"users": {"bob": 2}}).json()["val"] == {"users": {"bob": 2}, "z": 0}
    r = patch(sv, op="merge", val={"users": {"carol": 3}, "n": None, "z": [1]}, deep=True)
    assert r.json()["val"] == {"users": {"bob": 2, "carol": 3}, "z": [1], "n": None}
    assert list(r.json()["val"]) == ["users", "z", "n"]
    assert patch(sv, op="merge", val={}, deep=None).json()["val"] == {"users": {"bob": 2, "carol": 3}, "z": [1], "n": None}
    for bad in [None, [], 1, "x"]:
        err(patch(sv, op="merge", val=bad), 400, "merge val must be an object")
    err(patch(sv, op="merge", val={}, deep="yes"), 400, "deep must be a boolean")
    put(sv, val=[1])
    err(patch(sv, op="merge", val={"a": 1}), 409, "cannot merge: value is not an object")


def test_append(sv):
    assert patch(sv, op="append", val=[1, 2]).json()["val"] == [[1, 2]]
    assert patch(sv, op="append", val=None).json()["val"] == [[1, 2], None]
    put(sv, val=["a", "b", "c", "x", "y"])
    assert patch(sv, op="append", val="d", max=3).json()["val"] == ["x", "y", "d"]
    assert patch(sv, op="append", val="e", max=3.0).json()["val"] == ["y", "d", "e"]
    for bad in [0, -1, 1.5, "3", True]:
        err(patch(sv, op="append", val=1, max=bad), 400, "max must be a positive integer")
    put(sv, val={"a": 1})
    err(patch(sv, op="append", val=1), 409, "cannot append: value is not a list")


@pytest.mark.parametrize("op", [None, "INCR", "set", 3, "MISSING"])
def test_op_must_be_known(sv, op):
    body = {"key": SECRET} if op == "MISSING" else {"key": SECRET, "op": op}
    err(sv.patch("/v", json=body), 400, "op must be one of: incr, merge, append")


def test_unknown_and_inapplicable_members_ignored(sv):
    assert patch(sv, op="incr", max="junk", deep="junk", val="junk", extra={}).status_code == 200
    assert put(sv, val=1, op="junk", field=5).status_code == 200


def test_validation_order(sv):
    # op before params; params before ttl; ttl before depth; depth before size
    err(patch(sv, op="bad", ttl=-1), 400, "op must be one of: incr, merge, append")
    err(patch(sv, op="incr", field="", amount="x"), 400, "field must be a non-empty string")
    err(patch(sv, op="merge", val=1, deep=1), 400, "merge val must be an object")
    err(patch(sv, op="append", val=1, max=0, ttl=0), 400, "max must be a positive integer")
    deep = 1
    for _ in range(65):
        deep = [deep]
    err(put(sv, val=deep, ttl=0), 400, "ttl must be a positive integer")
    err(put(sv, val=deep), 400, "val nested too deeply")
    err(sv.put("/v", json={"val": 1}), 400, "key must be a string of 1-1024 characters")


def test_depth_limit(sv):
    v = 1
    for _ in range(64):
        v = [v]
    assert put(sv, val=v).status_code == 200
    err(put(sv, val=[v]), 400, "val nested too deeply")
    err(patch(sv, op="merge", val={"a": v}), 400, "val nested too deeply")
    err(sv.put("/v", content=b'{"key":"a","val":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 400,
        "val nested too deeply")


def test_value_size_limit(sv):
    assert put(sv, val="x" * 65534).status_code == 200
    err(put(sv, val="x" * 65535), 413, "val exceeds 65536 bytes")
    # measured on compact UTF-8: escaped non-ASCII in the body does not count against it
    body = json.dumps({"key": "u", "val": "é" * 32767}, ensure_ascii=True)
    assert sv.put("/v", content=body).status_code == 200
    err(sv.put("/v", content=json.dumps({"key": "u", "val": "é" * 32768})), 413, "val exceeds 65536 bytes")
    # the resulting value of a PATCH is measured too, and nothing is written
    put(sv, val=["x" * 65000])
    before = sv.get("/v/" + H).headers["etag"]
    err(patch(sv, op="append", val="y" * 1000), 413, "val exceeds 65536 bytes")
    err(patch(sv, op="append", val="y" * 70000), 413, "val exceeds 65536 bytes")
    assert sv.get("/v/" + H).headers["etag"] == before


def test_request_body_too_large(sv):
    err(sv.put("/v", content=b" " * 278529), 413, "request body too large")
    err(sv.post("/v/batch", content=b" " * 278529), 413, "request body too large")
    assert put(sv, key="big", val="x").status_code == 200


def test_delete(sv):
    put(sv, val=1)
    r = sv.request("DELETE", "/v", json={"key": SECRET})
    assert r.status_code == 200 and r.json() == {"ok": True} and "etag" not in r.headers
    err(sv.request("DELETE", "/v", json={"key": SECRET}), 404, "not found")
    err(sv.get("/v/" + H), 404, "not found")


def test_methods_paths_and_allow(sv):
    cases = [("GET", "/v", "PUT, PATCH, DELETE, OPTIONS"), ("POST", "/v", "PUT, PATCH, DELETE, OPTIONS"),
             ("GET", "/v/batch", "POST, OPTIONS"), ("PUT", "/v/batch", "POST, OPTIONS"),
             ("PUT", "/v/" + H, "GET, HEAD, OPTIONS"), ("PATCH", "/v/" + H, "GET, HEAD, OPTIONS"),
             ("DELETE", "/v/" + H, "GET, HEAD, OPTIONS"), ("POST", "/v/" + H, "GET, HEAD, OPTIONS"),
             ("TRACE", "/v", "PUT, PATCH, DELETE, OPTIONS"), ("PUT", "/v/zz", "GET, HEAD, OPTIONS")]
    for method, path, allow in cases:
        r = sv.request(method, path, json={"key": SECRET, "val": 1})
        err(r, 405, "method not allowed")
        assert r.headers["allow"] == allow
    for path in ["/v/x/y", "/v/", "/v/" + H + "/", "/v/batch/x"]:
        err(sv.get(path), 404, "not found")
    assert sv.get("/v/" + H + "?foo=bar").status_code == 404  # query ignored: missing entry
    put(sv, val=1)
    assert sv.get("/v/" + H + "?foo=bar").status_code == 200


def test_options_preflight(sv):
    for path in ["/v", "/v/batch", "/v/" + H]:
        r = sv.options(path)
        assert r.status_code == 204 and r.content == b""
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["access-control-allow-methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        assert r.headers["access-control-allow-headers"] == "Content-Type, If-None-Match, x-statevec-key"
        assert r.headers["access-control-max-age"] == "86400"
    r = sv.options("/v", headers={"Access-Control-Request-Headers": "x-custom"})
    assert r.headers["access-control-allow-headers"] == "x-custom"


def test_configured_cors_origins(make_client):
    c = make_client(statevec_rate_limit_anon=0, statevec_cors_origins="https://a.example")
    assert c.get("/v/" + H, headers={"Origin": "https://a.example"}).headers[
        "access-control-allow-origin"] == "https://a.example"
    assert "access-control-allow-origin" not in c.get("/v/" + H, headers={"Origin": "https://b.example"}).headers


def test_internal_error_shape(sv, monkeypatch):
    svc = sv.app.state.services

    def boom(*a, **k):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(svc.kv, "get", boom)
    err(sv.get("/v/" + H), 500, "internal error")


def test_one_global_namespace_and_native_visibility(make_client):
    c = make_client(statevec_rate_limit_anon=0, admin_key=ADMIN_KEY)
    k1, k2 = new_key(c, "t1"), new_key(c, "t2")
    put(c, val={"a": 1}, **{})
    c.put("/v", json={"key": SECRET, "val": {"a": 2}}, headers={"x-statevec-key": k1, "X-Tenant": "t9"})
    assert c.get("/v/" + H, headers={"x-statevec-key": k2}).json()["val"] == {"a": 2}
    assert c.get("/v/" + H, headers={"x-statevec-key": "unknown"}).json()["val"] == {"a": 2}
    # the native API of the default tenant reads an address it names, and nothing more
    reader = {"Authorization": f"Bearer {new_key(c, 'default')}"}
    n = c.get("/v1/kv/statevec/" + H, headers=reader)
    assert n.status_code == 200 and n.json()["value"] == {"a": 2}
    assert c.get("/v1/kv/statevec", headers=reader).status_code == 403
    assert c.put("/v1/kv/statevec/" + H, json=1, headers=reader).status_code == 403


def test_no_request_body_or_secret_in_responses(sv):
    r = put(sv, val=1)
    assert SECRET not in r.text


# --- concurrency (§6.1), over the real ASGI app with concurrent requests


def _async_client(tmp_path):
    app = create_app(app_settings({"data_dir": str(tmp_path / "conc"), "statevec_rate_limit_anon": 0}))
    return app


async def _run_concurrent(tmp_path, bodies):
    app = _async_client(tmp_path)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            rs = await asyncio.gather(*[c.patch("/v", json=b) for b in bodies])
            final = await c.get("/v/" + H)
    return rs, final


def test_concurrent_incr_all_counted_distinct(tmp_path):
    rs, final = asyncio.run(_run_concurrent(tmp_path, [{"key": SECRET, "op": "incr"}] * 50))
    assert all(r.status_code == 200 for r in rs)
    assert sorted(r.json()["val"] for r in rs) == list(range(1, 51))
    assert final.json()["val"] == 50


def test_concurrent_merges_of_distinct_members_all_kept(tmp_path):
    bodies = [{"key": SECRET, "op": "merge", "val": {f"m{i}": i}} for i in range(40)]
    rs, final = asyncio.run(_run_concurrent(tmp_path, bodies))
    assert all(r.status_code == 200 for r in rs)
    assert final.json()["val"] == {f"m{i}": i for i in range(40)} | {}
    assert len(final.json()["val"]) == 40


def test_concurrent_appends_each_once(tmp_path):
    bodies = [{"key": SECRET, "op": "append", "val": i} for i in range(40)]
    rs, final = asyncio.run(_run_concurrent(tmp_path, bodies))
    assert sorted(final.json()["val"]) == list(range(40))
    assert sorted(len(r.json()["val"]) for r in rs) == list(range(1, 41))
