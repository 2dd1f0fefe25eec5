"""The engine's edge rules as each surface shows them, through the whole app in-process."""

import pytest

from stigmer.engine.kv import MAX_TTL_SECONDS


def _put(client, key="k", value=1):
    r = client.put(f"/v1/kv/ns/{key}", json=value)
    assert r.status_code in (200, 201)
    return r.json()


def test_native_watch_from_a_future_revision_is_400_future_revision(client):
    rev = _put(client)["mod_revision"]
    for params, headers in [({"index": rev + 1, "wait": 0}, {}), ({"namespace": "ns"}, {"Last-Event-ID": str(rev + 1)}),
                            ({"from": rev + 2}, {})]:
        r = client.get("/v1/watch", params=params, headers=headers)
        assert r.status_code == 400, (params, headers)
        err = r.json()["error"]
        assert err["code"] == "future_revision" and err["details"]["current_revision"] == rev


@pytest.mark.parametrize("path, params", [
    ("/v1/watch", {"index": 2**70, "wait": 0}), ("/v1/watch", {"from": 2**70}),
    ("/v1/history/ns/k", {"before": 2**70}), ("/v1/history/ns/k", {"before": 2**63}),
])
def test_revisions_beyond_int64_are_400_not_500(client, path, params):
    _put(client)
    r = client.get(path, params=params)
    assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_argument", "future_revision")


def test_cntrlnode_stream_from_a_future_revision_is_still_compacted(client):
    r = client.post("/v1/state/wf/k", json={"value": 1})
    assert r.status_code == 200
    with client.stream("GET", "/v1/state/wf/k/stream", params={"fromRevision": 99}) as s:
        body = b"".join(s.iter_bytes())
    assert b"event: compacted" in body and b'"currentRevision":1' in body


@pytest.mark.parametrize("ttl", [str(MAX_TTL_SECONDS + 1), "1e400", "1e300", "inf", "nan"])
def test_native_ttl_beyond_the_maximum_is_400_and_nothing_is_stored(client, ttl):
    r = client.put("/v1/kv/ns/t", params={"ttl": ttl}, json=1)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    assert client.get("/v1/kv/ns/t").status_code == 404
    assert client.get("/v1/kv/ns/other").status_code == 404  # and the server still answers


def test_native_incr_by_a_huge_integer_is_400(client):
    _put(client, "n", 1)
    r = client.patch("/v1/kv/ns/n", content=b'{"op":"incr","amount":1' + b"0" * 400 + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument"
    assert client.get("/v1/kv/ns/n").json()["value"] == 1


def test_native_json_patch_test_failure_message_is_clean(client):
    _put(client, "p", {"a": 2, "f": True})
    r = client.patch("/v1/kv/ns/p", json=[{"op": "test", "path": "/a", "value": 1}],
                     headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 409 and r.json()["error"]["message"] == "test failed at /a: value differs"
    r = client.patch("/v1/kv/ns/p", json=[{"op": "test", "path": "/f", "value": 1}],
                     headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 409
