"""The Statewave surface in-process (specs/statewave.md §3, §5.1–§5.11): statuses, bodies, error envelopes,
validation items, tenancy, auth, request ids, and the Decisions they carry. Runs on SQLite, and on
PostgreSQL with TEST_STORE=postgres."""

from __future__ import annotations

import re
import uuid

import pytest

from statewave_support import episode, err, locs
from support import ADMIN_KEY, new_key

Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


@pytest.fixture
def sw(make_client):
    return make_client()


def test_create_episode_shape(sw):
    r = sw.post("/v1/episodes", json=episode(payload={"messages": [{"role": "user", "content": "Hello"}]},
                                             session_id="s1", metadata={"a": 1}))
    assert r.status_code == 201, r.text
    e = r.json()
    assert list(e) == ["id", "subject_id", "source", "type", "payload", "metadata", "provenance", "session_id",
                       "created_at"]
    assert str(uuid.UUID(e["id"])) == e["id"] and uuid.UUID(e["id"]).version == 4
    assert e["payload"] == {"messages": [{"role": "user", "content": "Hello"}]} and e["metadata"] == {"a": 1}
    assert e["provenance"] == {} and e["session_id"] == "s1" and Z.match(e["created_at"])
    # an empty session id is stored as null (Decision 32); non-ASCII comes back as UTF-8, not escaped
    r = sw.post("/v1/episodes", json=episode(text="São Paulo ☃", session_id=""))
    assert r.json()["session_id"] is None and "São Paulo ☃".encode() in r.content


def test_episode_validation(sw):
    assert locs(sw.post("/v1/episodes", json=episode(subject="x" * 257))) == [("string_too_long", ["body", "subject_id"])]
    assert locs(sw.post("/v1/episodes", json=episode(subject=""))) == [("string_too_short", ["body", "subject_id"])]
    assert locs(sw.post("/v1/episodes", json=episode(type="t" * 129))) == [("string_too_long", ["body", "type"])]
    assert locs(sw.post("/v1/episodes", json=episode(payload=[1]))) == [("dict_type", ["body", "payload"])]
    body = episode()
    del body["payload"]
    assert locs(sw.post("/v1/episodes", json=body)) == [("missing", ["body", "payload"])]
    assert locs(sw.post("/v1/episodes", json=episode(subject=7))) == [("string_type", ["body", "subject_id"])]
    assert locs(sw.post("/v1/episodes", json=episode(session_id="s" * 257))) == [
        ("string_too_long", ["body", "session_id"])]
    assert locs(sw.post("/v1/episodes", content=b'{"subject_id": ')) == [("json_invalid", ["body", 15])]
    # U+0000 fits no PostgreSQL text column, so both stores refuse it in a text field; JSON objects escape it
    assert locs(sw.post("/v1/episodes", json=episode(source="a\x00b"))) == [("value_error", ["body", "source"])]
    assert sw.post("/v1/episodes", json=episode(payload={"text": "a\x00b"})).json()["payload"] == {"text": "a\x00b"}
    # unknown members are ignored; receipts-era fields are accepted and ignored (§1)
    r = sw.post("/v1/episodes", json=episode(idempotency_key="k", occurred_at="2020-01-01T00:00:00Z", extra=1))
    assert r.status_code == 201 and "idempotency_key" not in r.json()


def test_batch(sw):
    items = [episode("a", "one"), episode("b", "two"), episode("a", "three")]
    r = sw.post("/v1/episodes/batch", json={"episodes": items})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["episodes_created"] == 3 and [e["payload"]["text"] for e in body["episodes"]] == ["one", "two", "three"]
    assert len({e["created_at"] for e in body["episodes"]}) == 1  # one batch, one created_at (§3.4)
    assert locs(sw.post("/v1/episodes/batch", json={"episodes": []})) == [("too_short", ["body", "episodes"])]
    assert locs(sw.post("/v1/episodes/batch", json={"episodes": [episode()] * 101})) == [("too_long", ["body", "episodes"])]
    # all or nothing: one bad item stores nothing
    bad = [episode("c"), episode("c"), episode("c"), episode("c", subject_id="")]
    bad[3]["subject_id"] = ""
    assert locs(sw.post("/v1/episodes/batch", json={"episodes": bad})) == [
        ("string_too_short", ["body", "episodes", 3, "subject_id"])]
    assert sw.get("/v1/timeline", params={"subject_id": "c"}).json()["episodes"] == []


def test_compile_sync(sw):
    sw.post("/v1/episodes", json=episode(text="I work at Initech"))
    sw.post("/v1/episodes", json=episode(text="I work at Globex"))
    r = sw.post("/v1/memories/compile", json={"subject_id": "user-42"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["subject_id"] == "user-42" and body["memories_created"] == len(body["memories"]) == 4
    m = body["memories"][0]
    assert list(m) == ["id", "subject_id", "kind", "content", "summary", "confidence", "valid_from", "valid_to",
                       "source_episode_ids", "metadata", "status", "created_at", "updated_at"]
    assert [(m["kind"], m["content"], m["status"]) for m in body["memories"]] == [
        ("episode_summary", "I work at Initech", "active"), ("profile_fact", "I work at Initech", "superseded"),
        ("episode_summary", "I work at Globex", "active"), ("profile_fact", "I work at Globex", "active")]
    assert body["memories"][1]["valid_to"] == body["memories"][3]["valid_from"]
    assert isinstance(m["confidence"], float) and Z.match(m["created_at"])
    assert sw.post("/v1/memories/compile", json={"subject_id": "user-42"}).json() == {
        "subject_id": "user-42", "memories_created": 0, "memories": []}
    assert locs(sw.post("/v1/memories/compile", json={})) == [("missing", ["body", "subject_id"])]
    assert locs(sw.post("/v1/memories/compile", json={"subject_id": ""})) == [("string_too_short", ["body", "subject_id"])]
    # `async_mode` is not `async`: a sync compile
    assert sw.post("/v1/memories/compile", json={"subject_id": "user-42", "async_mode": True}).status_code == 200


def test_timeline_windows(sw):
    for i in range(5):
        sw.post("/v1/episodes", json=episode(text=f"note {i}"))
    t = sw.get("/v1/timeline", params={"subject_id": "user-42"}).json()
    assert [e["payload"]["text"] for e in t["episodes"]] == [f"note {i}" for i in range(5)]
    assert t["memories"] == [] and t["episodes_has_more"] is False and t["memories_has_more"] is False
    t = sw.get("/v1/timeline", params={"subject_id": "user-42", "limit": 2, "offset": 1}).json()
    assert [e["payload"]["text"] for e in t["episodes"]] == ["note 1", "note 2"] and t["episodes_has_more"] is True
    t = sw.get("/v1/timeline", params={"subject_id": "user-42", "limit": 2, "offset": 1, "newest_first": "true"}).json()
    assert [e["payload"]["text"] for e in t["episodes"]] == ["note 2", "note 3"] and t["episodes_has_more"] is True
    t = sw.get("/v1/timeline", params={"subject_id": "user-42", "limit": 2, "offset": 3, "newest_first": "true"}).json()
    assert [e["payload"]["text"] for e in t["episodes"]] == ["note 0", "note 1"] and t["episodes_has_more"] is False
    sw.post("/v1/memories/compile", json={"subject_id": "user-42"})
    t = sw.get("/v1/timeline", params={"subject_id": "user-42"}).json()
    assert len(t["memories"]) == 5  # every status
    assert sw.get("/v1/timeline", params={"subject_id": "nobody"}).json() == {
        "subject_id": "nobody", "episodes": [], "memories": [], "episodes_has_more": False, "memories_has_more": False}
    assert locs(sw.get("/v1/timeline")) == [("missing", ["query", "subject_id"])]
    assert locs(sw.get("/v1/timeline", params={"subject_id": "u", "limit": 201})) == [("less_than_equal", ["query", "limit"])]
    assert locs(sw.get("/v1/timeline", params={"subject_id": "u", "limit": "x"})) == [("int_parsing", ["query", "limit"])]
    assert locs(sw.get("/v1/timeline", params={"subject_id": "u", "offset": -1})) == [("greater_than_equal", ["query", "offset"])]
    assert locs(sw.get("/v1/timeline", params={"subject_id": "u", "newest_first": "maybe"})) == [
        ("bool_parsing", ["query", "newest_first"])]


def test_subjects_list_and_delete(sw):
    for s in ["b", "a", "é", "Z", "a/b"]:
        sw.post("/v1/episodes", json=episode(s, "I use vim"))
    sw.post("/v1/memories/compile", json={"subject_id": "a"})
    r = sw.get("/v1/subjects").json()
    assert [s["subject_id"] for s in r["subjects"]] == ["Z", "a", "a/b", "b", "é"] and r["total"] == 5
    assert r["subjects"][1] == {"subject_id": "a", "episode_count": 1, "memory_count": 2}
    page = sw.get("/v1/subjects", params={"limit": 2, "offset": 2}).json()
    assert [s["subject_id"] for s in page["subjects"]] == ["a/b", "b"] and page["total"] == 5  # Decision 28
    assert locs(sw.get("/v1/subjects", params={"limit": 0})) == [("greater_than_equal", ["query", "limit"])]
    # the path's %2F stays inside one segment (Decision 50)
    r = sw.delete("/v1/subjects/a%2Fb")
    assert r.json() == {"subject_id": "a/b", "episodes_deleted": 1, "memories_deleted": 0, "resolutions_deleted": 0,
                        "compile_jobs_deleted": 0, "webhook_events_deleted": 0}
    r = sw.delete("/v1/subjects/a")
    assert r.status_code == 200 and r.json()["episodes_deleted"] == 1 and r.json()["memories_deleted"] == 2
    again = sw.delete("/v1/subjects/a").json()  # idempotent, never 404
    assert again == {"subject_id": "a", **dict.fromkeys(list(again)[1:], 0)}
    assert [s["subject_id"] for s in sw.get("/v1/subjects").json()["subjects"]] == ["Z", "b", "é"]
    assert sw.get("/v1/timeline", params={"subject_id": "a"}).json()["episodes"] == []


def test_errors_envelope(sw):
    err(sw.put("/v1/episodes", json={}), 405, "method_not_allowed", "Method Not Allowed")
    err(sw.get("/v1/episodes/nope"), 404, "not_found", "Not Found")
    err(sw.get("/v1/receipts"), 404, "not_found", "Not Found")  # out of scope (§1)
    err(sw.get("/v1/memories/compile/abcdef12"), 404, "not_found", "Job not found or expired")
    err(sw.post("/v1/episodes", content=b" " * (10 * 1024 * 1024 + 1)), 413, "payload_too_large",
        "Request body exceeds 10485760 bytes.")
    assert locs(sw.post("/v1/episodes", content=b"")) == [("missing", ["body"])]


def test_request_ids(sw):
    r = sw.get("/v1/subjects")
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])
    r = sw.get("/v1/subjects", headers={"X-Request-ID": "my id/1"})
    assert r.headers["x-request-id"] == "my id/1"
    e = err(sw.get("/v1/nope-nope", headers={"X-Request-ID": "abc"}), 404, "not_found") if False else None
    r = sw.get("/v1/timeline", headers={"X-Request-ID": "abc"})
    assert r.headers["x-request-id"] == "abc" and r.json()["error"]["request_id"] == "abc"
    assert e is None


def test_tenancy(sw):
    a, b = {"X-Tenant-ID": "team-a"}, {"X-Tenant-ID": "team-b"}
    sw.post("/v1/episodes", json=episode(text="I work at Initech"), headers=a)
    sw.post("/v1/episodes", json=episode(text="I work at Globex"), headers=b)
    # a compile in tenant b supersedes nothing of tenant a (§8)
    assert sw.post("/v1/memories/compile", json={"subject_id": "user-42"}, headers=a).json()["memories_created"] == 2
    mems = sw.post("/v1/memories/compile", json={"subject_id": "user-42"}, headers=b).json()["memories"]
    assert [m["status"] for m in mems] == ["active", "active"]
    ta = sw.get("/v1/timeline", params={"subject_id": "user-42"}, headers=a).json()
    assert [e["payload"]["text"] for e in ta["episodes"]] == ["I work at Initech"]
    assert all(m["status"] == "active" for m in ta["memories"])
    # unscoped sees every tenant's rows (§3.2)
    assert len(sw.get("/v1/timeline", params={"subject_id": "user-42"}).json()["episodes"]) == 2
    assert sw.get("/v1/subjects", headers={"X-Tenant-ID": "team-c"}).json() == {"subjects": [], "total": 0}
    # job polling is tenant-scoped (Decision 30)
    job = sw.post("/v1/memories/compile", json={"subject_id": "user-42", "async": True}, headers=a).json()
    assert job["status"] == "pending" and re.fullmatch(r"[0-9a-f]{8}", job["job_id"])
    err(sw.get(f"/v1/memories/compile/{job['job_id']}", headers=b), 404, "not_found", "Job not found or expired")
    assert sw.get(f"/v1/memories/compile/{job['job_id']}", headers=a).status_code == 200
    assert sw.get(f"/v1/memories/compile/{job['job_id']}").status_code == 200
    # a delete in tenant b leaves tenant a's rows
    d = sw.delete("/v1/subjects/user-42", headers=b).json()
    assert d["episodes_deleted"] == 1 and d["memories_deleted"] == 2 and d["compile_jobs_deleted"] == 0
    assert len(sw.get("/v1/timeline", params={"subject_id": "user-42"}, headers=a).json()["episodes"]) == 1
    locs_ = locs(sw.get("/v1/subjects", headers={"X-Tenant-ID": "t" * 257}))
    assert locs_ == [("string_too_long", ["header", "X-Tenant-ID"])]


def test_require_tenant(make_client):
    c = make_client(statewave_require_tenant=True, statewave_tenant_header="X-Org")
    err(c.get("/v1/subjects"), 400, "missing_tenant", "X-Org header is required.")
    err(c.get("/v1/subjects", headers={"X-Org": ""}), 400, "missing_tenant")
    assert c.get("/v1/subjects", headers={"X-Org": "o"}).status_code == 200
    assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_api_keys(make_client):
    c = make_client(admin_key=ADMIN_KEY)
    err(c.get("/v1/subjects"), 401, "missing_api_key", "X-API-Key header is required.")
    err(c.get("/v1/subjects", headers={"X-API-Key": ""}), 401, "missing_api_key")
    err(c.get("/v1/subjects", headers={"X-API-Key": "wrong"}), 403, "invalid_api_key", "Invalid API key.")
    err(c.get("/v1/subjects", params={"api_key": "wrong"}), 403, "invalid_api_key")
    key = new_key(c, tenant="acme")
    assert c.get("/v1/subjects", headers={"X-API-Key": key}).status_code == 200
    assert c.get("/v1/subjects", params={"api_key": key}).status_code == 200
    # the header is checked first
    err(c.get("/v1/subjects", params={"api_key": key}, headers={"X-API-Key": "wrong"}), 403, "invalid_api_key")
    assert c.get("/v1/subjects", params={"api_key": key}, headers={"X-API-Key": ""}).status_code == 200
    # public paths need no key
    assert c.get("/healthz").json() == {"status": "ok"} and c.get("/ready").json()["status"] == "ready"
    # a key's Stigmer tenant is a wall: another tenant's key sees nothing of acme's
    c.post("/v1/episodes", json=episode(), headers={"X-API-Key": key})
    other = new_key(c, tenant="globex")
    assert c.get("/v1/subjects", headers={"X-API-Key": other}).json()["total"] == 0
    assert c.get("/v1/subjects", headers={"X-API-Key": key}).json()["total"] == 1
    # a read-only key cannot write
    reader = new_key(c, tenant="acme", scopes=("read",))
    err(c.post("/v1/episodes", json=episode(), headers={"X-API-Key": reader}), 403, "forbidden")
    assert c.get("/v1/subjects", headers={"X-API-Key": reader}).status_code == 200
    # a key limited to other namespaces reaches none of it; one limited to `statewave` does
    narrow = new_key(c, tenant="acme", prefixes=("cntrlnode",))
    err(c.get("/v1/subjects", headers={"X-API-Key": narrow}), 403, "forbidden")
    mine = new_key(c, tenant="acme", prefixes=("statewave",))
    assert c.get("/v1/subjects", headers={"X-API-Key": mine}).json()["total"] == 1


@pytest.mark.parametrize("strategy", ["distributed", "memory"])
def test_rate_limit(make_client, strategy):
    c = make_client(statewave_rate_limit_rpm=2, statewave_rate_limit_strategy=strategy)
    assert c.get("/v1/subjects").status_code == 200
    assert c.get("/v1/subjects", params={"limit": 0}).status_code == 422  # a rejected request counts too
    r = c.get("/v1/subjects")
    err(r, 429, "rate_limited", "Rate limit exceeded. Max 2 requests per minute.")
    assert 1 <= int(r.headers["retry-after"]) <= 61
    assert not any(h.startswith("x-ratelimit") for h in r.headers)
    assert c.get("/healthz").status_code == 200  # exempt
    assert c.get("/v1/nope").status_code == 404  # not this surface's path: not counted here


def test_rate_limit_windows(tmp_path):
    """§6.11: `distributed` is a fixed window per UTC minute (Retry-After to its end); `memory` a sliding 60 s
    log of allowed requests (Retry-After = floor(60 - age of the oldest) + 1)."""
    from starlette.testclient import TestClient

    from stigmer.app import create_app
    from stigmer.clock import ManualClock
    from support import app_settings

    for strategy, first_retry in [("distributed", 45), ("memory", 51)]:
        clock = ManualClock(1_795_459_980.0 + 5)  # 5 s into a UTC minute
        settings = app_settings({"data_dir": str(tmp_path / strategy), "statewave_rate_limit_rpm": 2,
                                 "statewave_rate_limit_strategy": strategy})
        with TestClient(create_app(settings, clock), base_url="http://localhost") as c:
            assert c.get("/v1/subjects").status_code == 200
            clock.advance(10)
            assert c.get("/v1/subjects").status_code == 200
            r = c.get("/v1/subjects")
            assert r.status_code == 429 and int(r.headers["retry-after"]) == first_retry, (strategy, r.headers)
            clock.advance(45)  # 60 s into the minute: a new window; 55 s after the first request
            r = c.get("/v1/subjects")
            if strategy == "distributed":
                assert r.status_code == 200
            else:  # the log still holds both requests: the oldest leaves at 60 s
                assert r.status_code == 429 and r.headers["retry-after"] == "6"
                clock.advance(5)
                assert c.get("/v1/subjects").status_code == 200
                assert c.get("/v1/subjects").status_code == 429  # the second one is 50 s old


def test_rate_limit_is_shared_by_replicas(make_client, tmp_path):
    """`distributed` counts in the store: two replicas on one PostgreSQL share one window."""
    from pg_support import ON_POSTGRES

    if not ON_POSTGRES:
        pytest.skip("replicas share a database on PostgreSQL only (SQLite: one server per data directory)")
    one = make_client(data_dir=str(tmp_path / "shared"), statewave_rate_limit_rpm=3)
    two = make_client(data_dir=str(tmp_path / "shared"), statewave_rate_limit_rpm=3)
    assert [one.get("/v1/subjects").status_code, two.get("/v1/subjects").status_code,
            one.get("/v1/subjects").status_code, two.get("/v1/subjects").status_code] == [200, 200, 200, 429]


def test_cors(sw):
    r = sw.options("/v1/episodes", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "x-api-key, content-type"})
    # `*` with credentials allowed: the origin is echoed (a browser refuses `*` with credentials)
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in r.headers["access-control-allow-methods"] and r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-headers"] == "x-api-key, content-type"
    r = sw.post("/v1/episodes", json=episode(), headers={"Origin": "https://app.example"})
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-credentials"] == "true" and "X-Request-ID" in r.headers["access-control-expose-headers"]


def test_health_and_readiness(tmp_path):
    """§5.1, §5.2: liveness never touches the store; readiness is `degraded` while a job has run > 30 min."""
    import asyncio
    import threading

    from starlette.testclient import TestClient

    from stigmer.app import create_app
    from stigmer.clock import ManualClock
    from support import app_settings

    clock = ManualClock(1_795_460_000.0)
    settings = app_settings({"data_dir": str(tmp_path / "d"), "job_lease_seconds": 86_400})
    with TestClient(create_app(settings, clock), base_url="http://localhost") as c:
        for path in ("/healthz", "/health"):
            assert c.get(path).json() == {"status": "ok"}
        for path in ("/readyz", "/ready"):
            body = c.get(path).json()
            assert body["status"] == "ready" and body["checks"][0]["name"] == "database"
            assert body["checks"][0]["status"] == "ok" and isinstance(body["checks"][0]["latency_ms"], float)
        jobs = c.app.state.services.jobs
        started = threading.Event()

        async def long_job(job):
            started.set()
            await asyncio.sleep(3600)  # cancelled when the app stops

        c.portal.call(lambda: jobs.register("test.long", long_job))
        c.portal.call(jobs.submit, "default", "test.long", {})
        assert started.wait(10)
        clock.advance(29 * 60)
        assert c.get("/readyz").json()["status"] == "ready"
        clock.advance(2 * 60)
        assert c.get("/readyz").json()["checks"][1:] == [
            {"name": "queue", "status": "degraded", "detail": "1 job(s) running > 30 min"}]
        assert c.get("/readyz").json()["status"] == "degraded" and c.get("/readyz").status_code == 200


def test_error_mapping_of_what_a_request_cannot_show():
    """§3.5 for errors no request here provokes: a 500 says nothing of its cause; storage faults and the
    edge's own refusals keep the envelope."""
    from starlette.requests import Request

    from stigmer.api.kit.errors import Problem
    from stigmer.api.statewave.surface import problem, render
    from stigmer.engine.errors import StorageFull, StorageUnavailable

    def answer(exc, headers=()):
        scope = {"type": "http", "method": "GET", "path": "/v1/subjects", "headers": list(headers),
                 "query_string": b"", "state": {"request_id": "rid-1"}}
        r = render(Request(scope), problem(exc))
        return r.status_code, __import__("json").loads(r.body), r.headers

    status, body, headers = answer(RuntimeError("secret detail /etc/passwd"))
    assert (status, body) == (500, {"error": {"code": "internal_error", "message": "An unexpected error occurred",
                                              "request_id": "rid-1"}})
    assert headers["x-request-id"] == "rid-1"
    assert answer(StorageUnavailable("db down"))[:2] == (503, {"error": {
        "code": "service_unavailable", "message": "db down", "request_id": "rid-1"}})
    assert answer(StorageFull("disk full"))[0] == 507
    assert answer(Problem(403, "cross_site", "cross-site write refused"))[1]["error"]["code"] == "cross_site"
    # the edge's 401: missing or invalid by what was sent
    assert answer(Problem(401, "unauthenticated", "x"))[:2] == (401, {"error": {
        "code": "missing_api_key", "message": "X-API-Key header is required.", "request_id": "rid-1"}})
    status, body, headers = answer(Problem(401, "unauthenticated", "x", headers={"WWW-Authenticate": "Bearer"}),
                                   [(b"x-api-key", b"k")])
    assert (status, body["error"]["code"]) == (403, "invalid_api_key") and "www-authenticate" not in headers


def test_preflight_needs_no_key(make_client):
    c = make_client(admin_key=ADMIN_KEY, statewave_cors_origins='["https://app.example"]')
    r = c.options("/v1/episodes", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    err(c.post("/v1/episodes", json=episode(), headers={"Origin": "https://app.example"}), 401, "missing_api_key")


def test_finished_jobs_are_deleted_after_the_retention(tmp_path):
    """§6.6: completed jobs older than COMPILE_JOB_RETENTION_HOURS (our job_retention_hours) answer 404."""
    import time

    from starlette.testclient import TestClient

    from stigmer.app import create_app
    from stigmer.clock import ManualClock
    from support import app_settings

    clock = ManualClock(1_795_460_000.0)
    settings = app_settings({"data_dir": str(tmp_path / "d"), "job_retention_hours": 2})
    with TestClient(create_app(settings, clock), base_url="http://localhost") as c:
        c.post("/v1/episodes", json=episode())
        job = c.post("/v1/memories/compile", json={"subject_id": "user-42", "async": True}).json()["job_id"]
        poll = f"/v1/memories/compile/{job}"
        deadline = time.monotonic() + 20
        while c.get(poll).json()["status"] != "completed":  # the worker runs it on its own
            assert time.monotonic() < deadline
            time.sleep(0.02)
        clock.advance(2 * 3600 + 1)  # past the retention, and past the worker's hourly purge
        c.portal.call(c.app.state.services.jobs.wake)
        while c.get(poll).status_code != 404:
            assert time.monotonic() < deadline, c.get(poll).text
            time.sleep(0.02)
        err(c.get(poll), 404, "not_found", "Job not found or expired")
