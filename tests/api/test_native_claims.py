"""The native claim routes through the whole app (both stores under `make test-postgres`), and the SDK's claim
methods over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from stigmer.clock import ManualClock
from support import ADMIN_KEY, app_settings, live_app, new_key

HELLO = hashlib.sha256(b"hello world").hexdigest()


def text(source="summary", data="hello world", digest=HELLO):
    return {"kind": "text_hash", "source": source, "data": data, "hash": digest}


def key_value(key="cfg", path="$.mode", expected="on", namespace="app"):
    return {"kind": "key_value", "namespace": namespace, "key": key, "json_path": path, "expected_value": expected}


def body(evidence=None, subject_type="doc", subject_id="d1", statement="the summary is accurate"):
    return {"subject_type": subject_type, "subject_id": subject_id, "statement": statement,
            "evidence": [text()] if evidence is None else evidence}


@pytest.fixture
def clocked(tmp_path):
    from starlette.testclient import TestClient

    from stigmer.app import create_app

    clock = ManualClock()
    settings = app_settings({"data_dir": str(tmp_path / "app")})
    with TestClient(create_app(settings, clock), base_url="http://localhost", raise_server_exceptions=False) as c:
        yield c, clock


def test_create_get_verify_and_runs(clocked):
    c, clock = clocked
    evidence = [text(), text("other", digest="F" * 64),
                {"kind": "json_value", "source": "j", "data": {"b": None, "a": 1}, "json_path": "$.b",
                 "expected_value": None},
                {"kind": "state_event", "source": "7", "hash": HELLO.upper()}, key_value()]
    r = c.post("/v1/claims", json=body(evidence))
    assert r.status_code == 201, r.text
    claim = r.json()
    assert int(r.headers["x-stigmer-revision"]) >= 1
    assert (claim["status"], claim["created_at"]) == ("pending", claim["updated_at"])
    assert claim["created_at"] == "2023-11-14T22:13:20.000Z"  # the server clock, RFC 3339 like every native time
    ev = claim["evidence"]
    assert [e["kind"] for e in ev] == ["text_hash", "text_hash", "json_value", "state_event", "key_value"]
    assert ev[1]["hash"] == "f" * 64 and ev[3]["hash"] == HELLO  # stored lowercase
    assert ev[2]["data"] == {"b": None, "a": 1} and list(ev[2]["data"]) == ["b", "a"] and ev[2]["expected_value"] is None
    assert ev[3]["data"] is None and ev[3]["json_path"] is None and ev[3]["namespace"] is None
    assert (ev[4]["source"], ev[4]["namespace"], ev[4]["key"]) == ("app/cfg", "app", "cfg")
    assert c.get(f"/v1/claims/{claim['id']}").json() == claim

    clock.advance(1)
    run = c.post(f"/v1/claims/{claim['id']}/verify")
    assert run.status_code == 201, run.text
    assert [(x["passed"], x["message"]) for x in run.json()["results"]] == [
        (True, "hash matched"), (False, "hash mismatch"), (True, "json value matched"),
        (False, "state event not found"), (False, "key not found")]
    assert run.json()["status"] == "failed" and run.json()["created_at"] == "2023-11-14T22:13:21.000Z"
    assert [x["evidence_id"] for x in run.json()["results"]] == [e["id"] for e in ev]
    got = c.get(f"/v1/claims/{claim['id']}").json()
    assert (got["status"], got["updated_at"]) == ("failed", run.json()["created_at"])

    ok = c.post("/v1/claims", json=body([text(), key_value()])).json()
    assert c.put("/v1/kv/app/cfg", json={"mode": "on"}).status_code == 201
    second = c.post(f"/v1/claims/{ok['id']}/verify").json()
    assert second["status"] == "verified" and second["results"][1]["message"] == "key value matched"
    c.put("/v1/kv/app/cfg", json={"mode": "off"})
    third = c.post(f"/v1/claims/{ok['id']}/verify").json()
    assert third["status"] == "failed" and third["results"][1]["message"] == "json value mismatch"
    runs = c.get(f"/v1/claims/{ok['id']}/runs").json()
    assert [x["id"] for x in runs["runs"]] == [third["id"], second["id"]] and runs["next_cursor"] is None
    assert c.get(f"/v1/claims/{ok['id']}").json()["status"] == "failed"


def test_fifty_evidence_items_in_one_request(clocked):
    c, _ = clocked
    items = [text(f"s{i}") if i % 2 else key_value(f"k{i}", "$", i) for i in range(50)]
    r = c.post("/v1/claims", json=body(items))
    assert r.status_code == 201, r.text
    assert [e["source"] for e in r.json()["evidence"]] == [e.get("source") or f"app/k{i}" for i, e in enumerate(items)]
    for i in range(0, 50, 2):
        c.put(f"/v1/kv/app/k{i}", json=i)
    run = c.post(f"/v1/claims/{r.json()['id']}/verify").json()
    assert run["status"] == "verified" and len(run["results"]) == 50
    assert c.post("/v1/claims", json=body([text()] * 51)).status_code == 400


def test_the_claim_is_mirrored_in_the_reserved_namespace(clocked):
    c, _ = clocked
    claim = c.post("/v1/claims", json=body()).json()
    mirror = c.get(f"/v1/kv/_claims/{claim['id']}")
    assert mirror.status_code == 200 and mirror.json()["value"]["status"] == "pending"
    run = c.post(f"/v1/claims/{claim['id']}/verify").json()
    doc = c.get(f"/v1/kv/_claims/{claim['id']}").json()
    assert doc["version"] == 2 and doc["value"]["status"] == "verified" and doc["value"]["latest_run_id"] == run["id"]
    history = c.get(f"/v1/history/_claims/{claim['id']}").json()["history"]
    assert [h["value"]["status"] for h in history] == ["verified", "pending"]
    for attempt in (c.put(f"/v1/kv/_claims/{claim['id']}", json={"status": "verified"}),
                    c.delete(f"/v1/kv/_claims/{claim['id']}"),
                    c.post("/v1/txn", json={"ops": [{"op": "put", "namespace": "_claims", "key": "x", "value": 1}]})):
        assert attempt.status_code == 403 and attempt.json()["error"]["code"] == "forbidden", attempt.text


def test_pages_and_filters(clocked):
    c, clock = clocked
    made = []
    for i in range(5):
        made.append(c.post("/v1/claims", json=body(subject_id=f"d{i % 2}")).json())
        clock.advance(0.001 * (i % 2))  # pairs share a millisecond
    ordered = sorted(made, key=lambda m: (m["created_at"], m["id"]))
    for order, expect in (("asc", ordered), ("desc", ordered[::-1]), (None, ordered[::-1])):
        seen, cursor = [], None
        while True:
            params = {"limit": "2", **({"order": order} if order else {}), **({"cursor": cursor} if cursor else {})}
            page = c.get("/v1/claims", params=params).json()
            seen += page["claims"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [x["id"] for x in seen] == [x["id"] for x in expect]
        assert all("evidence" not in x for x in seen)
    full = c.get("/v1/claims", params={"limit": "5"}).json()
    assert len(full["claims"]) == 5 and full["next_cursor"] is None  # exact: no cursor before an empty page
    d1 = c.get("/v1/claims", params={"subject_type": "doc", "subject_id": "d1", "order": "asc"}).json()["claims"]
    assert [x["id"] for x in d1] == [x["id"] for x in ordered if x["subject_id"] == "d1"]
    assert c.get("/v1/claims", params={"subject_type": "other"}).json() == {"claims": [], "next_cursor": None}
    for params in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"order": "up"}, {"cursor": "!!"},
                   {"cursor": "YzE6eA"}):  # the last one is a well-formed cursor of no claim page ("x")
        r = c.get("/v1/claims", params=params)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", (params, r.text)
    claim = made[0]["id"]
    for _ in range(3):
        c.post(f"/v1/claims/{claim}/verify")
    first = c.get(f"/v1/claims/{claim}/runs", params={"limit": "2", "order": "asc"}).json()
    rest = c.get(f"/v1/claims/{claim}/runs", params={"limit": "2", "order": "asc", "cursor": first["next_cursor"]}).json()
    assert len(first["runs"]) == 2 and len(rest["runs"]) == 1 and rest["next_cursor"] is None
    times = [x["created_at"] for x in first["runs"] + rest["runs"]]
    assert times == sorted(times) and len(set(times)) == 3
    assert c.get(f"/v1/claims/{claim}/runs", params={"cursor": "!!"}).status_code == 400


@pytest.mark.parametrize(("payload", "field"), [
    ({"subject_type": "doc"}, None),
    (body(subject_type=""), "subject_type"),
    (body(statement="x" * 5001), "statement"),
    (body([]), "evidence"),
    (body([{"kind": "nope", "source": "s"}]), "evidence[0].kind"),
    (body([text(digest="xyz")]), "evidence[0].hash"),
    (body([text(), {"kind": "json_value", "source": "s", "json_path": "$", "expected_value": 1}]), "evidence[1].data"),
    (body([{"kind": "json_value", "source": "s", "data": 1, "json_path": "$.a-b", "expected_value": 1}]),
     "evidence[0].json_path"),
    (body([{"kind": "state_event", "source": "1"}]), "evidence[0]"),
    (body([key_value(namespace="no/slash")]), "evidence[0].namespace"),
    (body([{**text(), "extra": 1}]), "evidence[0].extra"),
    (body([text(source=5)]), "evidence[0].source"),
])
def test_invalid_bodies_are_400_naming_the_field(clocked, payload, field):
    c, _ = clocked
    r = c.post("/v1/claims", json=payload)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", r.text
    if field:
        assert r.json()["error"]["details"]["field"] == field
    assert c.get("/v1/claims").json()["claims"] == []


def test_unknown_claims_wrong_methods_and_bad_json(clocked):
    c, _ = clocked
    for r in (c.get("/v1/claims/nope"), c.post("/v1/claims/nope/verify"), c.get("/v1/claims/nope/runs")):
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert c.post("/v1/claims", content=b"{").json()["error"]["code"] == "invalid_json"
    for method, path in (("PUT", "/v1/claims"), ("DELETE", "/v1/claims/x"), ("GET", "/v1/claims/x/verify"),
                         ("POST", "/v1/claims/x/runs")):
        r = c.request(method, path)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed", (method, path)


def test_scopes_prefixes_and_tenants(tmp_path):
    from starlette.testclient import TestClient

    from stigmer.app import create_app

    settings = app_settings({"data_dir": str(tmp_path / "keyed"), "admin_key": ADMIN_KEY})
    with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as c:
        def h(key):
            return {"Authorization": f"Bearer {key}"}

        full = h(new_key(c, "ta"))
        reader, writer = h(new_key(c, "ta", scopes=["read"])), h(new_key(c, "ta", scopes=["write"]))
        narrow = h(new_key(c, "ta", prefixes=["app/"]))
        granted = h(new_key(c, "ta", prefixes=["app/", "_claims"]))
        other = h(new_key(c, "tb"))
        claim = c.post("/v1/claims", json=body([key_value()]), headers=full).json()
        cid = claim["id"]
        assert c.post("/v1/claims", json=body(), headers=reader).status_code == 403
        assert c.get(f"/v1/claims/{cid}", headers=reader).status_code == 200
        assert c.get(f"/v1/claims/{cid}/runs", headers=reader).status_code == 200
        assert c.post(f"/v1/claims/{cid}/verify", headers=reader).status_code == 403
        assert c.get("/v1/claims", headers=writer).status_code == 403
        assert c.post("/v1/claims", json=body(), headers=writer).status_code == 201  # text evidence reads nothing
        # A verify result tells whether a value matched: reading the key is needed to verify it.
        assert c.post("/v1/claims", json=body([key_value()]), headers=writer).status_code == 403
        assert c.post(f"/v1/claims/{cid}/verify", headers=writer).status_code == 403
        assert c.post(f"/v1/claims/{cid}/verify", headers=full).status_code == 201
        # Claims are the keys `_claims/<id>`: a prefix-limited key needs that namespace.
        assert c.get("/v1/claims", headers=narrow).status_code == 403
        assert c.post("/v1/claims", json=body(), headers=narrow).status_code == 403
        assert c.get(f"/v1/claims/{cid}", headers=granted).status_code == 200
        assert c.post(f"/v1/claims/{cid}/verify", headers=granted).status_code == 201
        outside = body([key_value(namespace="elsewhere")])
        assert c.post("/v1/claims", json=outside, headers=granted).status_code == 403
        state = body([{"kind": "state_event", "source": "1", "hash": HELLO}])
        assert c.post("/v1/claims", json=state, headers=granted).status_code == 403  # state events are tenant-wide
        assert c.post("/v1/claims", json=state, headers=full).status_code == 201
        # Another tenant sees nothing of it.
        assert c.get(f"/v1/claims/{cid}", headers=other).status_code == 404
        assert c.post(f"/v1/claims/{cid}/verify", headers=other).status_code == 404
        assert c.get(f"/v1/claims/{cid}/runs", headers=other).status_code == 404
        assert c.get("/v1/claims", headers=other).json()["claims"] == []
        assert len(c.get(f"/v1/claims/{cid}/runs", headers=full).json()["runs"]) == 2


def test_concurrent_verifies_over_http(tmp_path):
    import httpx

    with live_app(app_settings({"data_dir": str(tmp_path / "live")})) as url:
        async def main():
            async with httpx.AsyncClient(base_url=url) as h:
                cid = (await h.post("/v1/claims", json=body([text(), key_value()]))).json()["id"]
                await h.put("/v1/kv/app/cfg", json={"mode": "on"})
                runs = await asyncio.gather(*(h.post(f"/v1/claims/{cid}/verify") for _ in range(16)))
                assert all(r.status_code == 201 for r in runs)
                kept = (await h.get(f"/v1/claims/{cid}/runs", params={"order": "asc"})).json()["runs"]
                assert {r["id"] for r in kept} == {r.json()["id"] for r in runs} and len(kept) == 16
                assert len({r["created_at"] for r in kept}) == 16
                claim = (await h.get(f"/v1/claims/{cid}")).json()
                assert claim["updated_at"] == kept[-1]["created_at"] and claim["status"] == "verified"

        asyncio.run(main())


def test_the_sdk_claim_methods(tmp_path):
    from stigmer.client import AsyncClient, Client, NotFoundError

    with live_app(app_settings({"data_dir": str(tmp_path / "sdk")})) as url:
        with Client(url) as c:
            claim = c.create_claim("doc", "d1", "accurate", [text(), key_value()])
            assert claim.status == "pending" and [e.kind for e in claim.evidence] == ["text_hash", "key_value"]
            assert claim.evidence[1].namespace == "app" and c.get_claim(claim.id) == claim
            c.put("app", "cfg", {"mode": "on"})
            run = c.verify_claim(claim.id)
            assert run.status == "verified" and [r.message for r in run.results] == ["hash matched", "key value matched"]
            assert c.get_claim(claim.id).status == "verified"
            c.create_claim("doc", "d2", "another", [text()])
            page = c.list_claims(limit=1, order="asc")
            assert [x.id for x in page.claims] == [claim.id] and page.next_cursor
            rest = c.list_claims(limit=1, order="asc", cursor=page.next_cursor)
            assert len(rest.claims) == 1 and rest.next_cursor is None and rest.claims[0].evidence == []
            assert [x.id for x in c.list_claims(subject_id="d1").claims] == [claim.id]
            assert [r.id for r in c.claim_runs(claim.id).runs] == [run.id]
            with pytest.raises(NotFoundError):
                c.get_claim("nope")

        async def main():
            async with AsyncClient(url) as a:
                run2 = await a.verify_claim(claim.id)
                assert (await a.get_claim(claim.id)).updated_at == run2.created_at
                assert [r.id for r in (await a.claim_runs(claim.id, order="asc")).runs] == [run.id, run2.id]
                made = await a.create_claim("doc", "d3", "third", [text()])
                assert (await a.list_claims(limit=10)).claims[0].id == made.id
                with pytest.raises(NotFoundError):
                    await a.verify_claim("nope")

        asyncio.run(main())
