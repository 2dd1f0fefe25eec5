"""GET /v1/semantic-sessions and /v1/semantic-sessions/{id} over HTTP: sessions made on the semvec surface,
listed and charted natively (the edge routes these paths to the native surface, not semvec's /v1/session),
per tenant, read scope, clear 400s and 404s in the native error shape."""

from __future__ import annotations

from support import new_key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_sessions_made_on_semvec_are_listed_and_charted_natively(keyed_client):
    c = keyed_client
    a, b = new_key(c, "sem-a"), new_key(c, "sem-b")
    sid = None
    for text in ("plan the trip to lisbon", "book the lisbon hotel", "fix the kitchen sink"):
        r = c.post("/v1/run", json={"message": f"next: {text}", "session_id": sid, "response": text}, headers=auth(a))
        assert r.status_code == 200, r.text
        sid = r.json()["session_id"]
    assert c.post("/v1/session/create", json={"session_id": "b-only"}, headers=auth(b)).status_code == 200

    listed = c.get("/v1/semantic-sessions", headers=auth(a))
    assert listed.status_code == 200 and "x-request-id" in listed.headers
    body = listed.json()
    assert [s["session_id"] for s in body["sessions"]] == [sid] and body["next_cursor"] is None
    assert body["sessions"][0]["turns"] == 3 and body["sessions"][0]["created_at"].endswith("Z")

    d = c.get(f"/v1/semantic-sessions/{sid}", headers=auth(a)).json()
    assert [p["turn"] for p in d["drift"]] == [1, 2, 3]
    assert d["session"]["drift"] == d["drift"][-1]["drift"]
    metrics = c.get(f"/v1/metrics/{sid}", headers=auth(a)).json()  # the same turns semvec reports
    assert [p["similarity"] for p in d["drift"]] == metrics["similarity_history"]

    assert [s["session_id"] for s in c.get("/v1/semantic-sessions", headers=auth(b)).json()["sessions"]] == ["b-only"]
    other = c.get(f"/v1/semantic-sessions/{sid}", headers=auth(b))
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"


def test_paging_validation_and_scope(keyed_client):
    c = keyed_client
    key = new_key(c, "sem-p")
    for i in range(3):
        assert c.post("/v1/session/create", json={"session_id": f"s{i}"}, headers=auth(key)).status_code == 200
    first = c.get("/v1/semantic-sessions", params={"limit": 2}, headers=auth(key)).json()
    rest = c.get("/v1/semantic-sessions", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth(key)).json()
    ids = [s["session_id"] for s in first["sessions"] + rest["sessions"]]
    assert sorted(ids) == ["s0", "s1", "s2"] and len(set(ids)) == 3 and rest["next_cursor"] is None
    # the last two: cursors of our codec holding [1, 2] and "x", not a (created_at, id) pair
    for params in ({"limit": 0}, {"limit": "x"}, {"limit": 201}, {"cursor": "!!"}, {"kind": "nope"},
                   {"cursor": "YzE6WzEsIDJd"}, {"cursor": "YzE6eA"}):
        r = c.get("/v1/semantic-sessions", params=params, headers=auth(key))
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_argument", (params, r.text)
    assert c.get("/v1/semantic-sessions", params={"kind": "cluster"}, headers=auth(key)).json()["sessions"] == []
    watcher = new_key(c, "sem-p", scopes=["watch"])
    r = c.get("/v1/semantic-sessions", headers=auth(watcher))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert c.get("/v1/semantic-sessions").status_code == 401
