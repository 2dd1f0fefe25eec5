"""The semvec surface in-process (specs/semvec.md §3, §5.1–5.21, §5.51): every route, status and error body.
Runs on SQLite, and on PostgreSQL with TEST_STORE=postgres."""

from __future__ import annotations

import base64
import re

import pytest

from support import ADMIN_KEY, new_key

D = 384


def unit(i: int) -> list[float]:
    v = [0.0] * D
    v[i] = 1.0
    return v


def detail(r, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"detail": text}
    assert r.headers["content-type"].startswith("application/json")


def invalid(r, *items) -> list[dict]:
    """A 422 in FastAPI's list form whose (type, loc) pairs are `items`."""
    assert r.status_code == 422, r.text
    got = r.json()["detail"]
    assert [(i["type"], i["loc"]) for i in got] == list(items), got
    return got


@pytest.fixture
def c(make_client):
    return make_client()


def mk(c, sid="s1", **body):
    r = c.post("/v1/session/create", json={"session_id": sid, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_health_needs_no_key_and_counts_sessions(make_client):
    c = make_client(admin_key=ADMIN_KEY)
    assert c.get("/v1/health").json() == {"status": "ok", "active_sessions": 0, "version": "1.0.0"}
    c.post("/v1/session/create", json={}, headers={"X-API-Key": ADMIN_KEY})
    assert c.get("/v1/health").json()["active_sessions"] == 1


def test_run_creates_pairs_and_retrieves(c):
    r = c.post("/v1/run", json={"message": "What database do we use?"})
    body = r.json()
    assert r.status_code == 200 and re.fullmatch(r"[0-9a-f-]{36}", body["session_id"])
    assert body == {"session_id": body["session_id"], "context": "[Semvec Context | Turn 0 | 0 memories]",
                    "top_similarity": 0.0, "short_circuit": False, "drift_score": 0.0, "drift_detected": False,
                    "drift_phase": "stable", "dedup_signal": None, "retrieval_error": False}
    sid = body["session_id"]
    r = c.post("/v1/run", json={"session_id": sid, "message": "Which database for billing?",
                                "response": "We use PostgreSQL 15 for billing."}).json()
    assert r["dedup_signal"] == {"is_update": False, "max_sim": 0.0, "matched_id": None}
    assert r["context"] == ("[Semvec Context | Turn 1 | 1 memories]\nRelevant context:\n"
                            "  1. [1.00] Q: What database do we use? A: We use PostgreSQL 15 for billing.")
    assert r["top_similarity"] > 0.3 and not r["drift_detected"]
    r = c.post("/v1/run", json={"session_id": sid, "message": "x", "short_circuit_threshold": -1}).json()
    assert r["short_circuit"] is True
    detail(c.post("/v1/run", json={"session_id": "missing", "message": "hi"}), 404, "Session not found")
    r = c.post("/v1/run", json={"session_id": "fresh", "message": "hi", "reset_context": True})
    assert r.json()["session_id"] == "fresh"
    assert c.get("/v1/metrics/" + sid).json()["interaction_count"] == 1


def test_run_validation(c):
    invalid(c.post("/v1/run", json={}), ("missing", ["body", "message"]))
    got = invalid(c.post("/v1/run", content=b""), ("missing", ["body"]))
    assert got[0]["input"] is None and got[0]["msg"] == "Field required"
    got = invalid(c.post("/v1/run", content=b'{"message": '), ("json_invalid", ["body", 12]))
    assert got[0]["msg"] == "JSON decode error" and got[0]["input"] == {} and "error" in got[0]["ctx"]
    got = invalid(c.post("/v1/run", json=[1]), ("model_attributes_type", ["body"]))
    assert got[0]["msg"] == "Input should be a valid dictionary or object to extract fields from"
    got = invalid(c.post("/v1/run", json={"message": "", "session_id": "a b", "short_circuit_threshold": 2}),
                  ("string_too_short", ["body", "message"]), ("string_pattern_mismatch", ["body", "session_id"]),
                  ("less_than_equal", ["body", "short_circuit_threshold"]))
    assert got[1]["msg"] == "String should match pattern '^[A-Za-z0-9_-]+$'"
    assert got[2] == {"type": "less_than_equal", "loc": ["body", "short_circuit_threshold"],
                      "msg": "Input should be less than or equal to 1", "input": 2, "ctx": {"le": 1}}
    got = invalid(c.post("/v1/run", json={"message": "x" * 65_537}), ("string_too_long", ["body", "message"]))
    assert got[0]["ctx"] == {"max_length": 65_536}
    invalid(c.post("/v1/run", json={"message": 5, "reset_context": "maybe"}),
            ("string_type", ["body", "message"]), ("bool_parsing", ["body", "reset_context"]))


def test_store(c):
    mk(c)
    assert c.post("/v1/store", json={"session_id": "s1", "response": "Helm charts deploy it"}).json() == {"session_id": "s1"}
    detail(c.post("/v1/store", json={"session_id": "nope", "response": "x"}), 404, "Session not found")
    detail(c.post("/v1/store", json={"session_id": "s1", "response": "the and of"}), 422,
           "response produced a degenerate (zero-norm) embedding; nothing was stored")
    invalid(c.post("/v1/store", json={"session_id": "s1", "response": "x", "dedup_threshold": "high"}),
            ("float_parsing", ["body", "dedup_threshold"]))
    assert c.get("/v1/metrics/s1").json()["interaction_count"] == 1


def test_create(c):
    assert mk(c) == {"session_id": "s1", "created": True}
    assert mk(c) == {"session_id": "s1", "created": False}
    r = c.post("/v1/session/create")
    assert r.status_code == 200 and r.json()["created"] and len(r.json()["session_id"]) == 36
    assert c.post("/v1/session/create", json={"session_id": ""}).json()["created"]
    detail(c.post("/v1/session/create", json={"dimension": 512}), 422,
           "dimension 512 does not match the server embedder's dimension 384")
    detail(c.post("/v1/session/create", json={"template_embedding": [1, 2, 3]}), 422,
           "embedding dimension 3 does not match the server dimension 384")
    detail(c.post("/v1/session/create", json={"template_embedding": [0] * D}), 422, "embedding must have a non-zero norm")
    invalid(c.post("/v1/session/create", json={"dimension": 0}), ("greater_than_equal", ["body", "dimension"]))
    r = mk(c, "tpl", template_embedding=unit(3), use_meta_pss=True,
           policy_vectors=[{"text": "billing database"}, {"embedding": unit(4), "weight": 2, "promote": False}])
    assert r["created"]
    config = c.get("/v1/session/tpl/export").json()["state_dict"]["config"]
    assert config["use_cortex"] is True and config["template_embedding"] == unit(3)
    assert [p["weight"] for p in config["policy_vectors"]] == [1.0, 2.0]
    assert c.get("/v1/session/tpl/anchor_score").json()["anchor_score"] == 1.0


def test_delete(c):
    mk(c)
    assert c.delete("/v1/session/s1").json() == {"session_id": "s1"}
    detail(c.delete("/v1/session/s1"), 404, "Session not found")
    c.portal.call(c.app.state.services.sessions.create, "default", "backing", "cluster")
    detail(c.delete("/v1/session/backing"), 409, "session backs a cluster, region or observer; delete that resource instead")


def test_metrics_shape(c):
    mk(c)
    for text in ("alpha beta", "alpha gamma", "alpha delta"):
        c.post("/v1/store", json={"session_id": "s1", "response": text})
    m = c.get("/v1/metrics/s1").json()
    assert set(m) == {"session_id", "phase", "interaction_count", "total_memories", "beta_history",
                      "similarity_history", "fsm_history", "norm_history", "phase_history"}
    assert m["interaction_count"] == 3 and m["total_memories"] == 3 and len(m["phase_history"]) == 3
    assert m["phase"] == m["phase_history"][-1] != "initialization"
    detail(c.get("/v1/metrics/nope"), 404, "Session not found")


def test_state_context(c):
    mk(c)
    detail(c.get("/v1/state/context?session_id=nope"),
           404, "Session not found")
    assert c.get("/v1/state/context?session_id=s1").json() == {"session_id": "s1", "context": []}
    c.post("/v1/session/s1/memory", json={"text": "injected fact " + "z" * 600, "importance": 0.9})
    ctx = c.get("/v1/state/context?session_id=s1").json()["context"]
    assert ctx[0]["relevance"] == 0.0 and ctx[0]["truncated"] and len(ctx[0]["text"]) == 500
    whole = c.get("/v1/state/context?session_id=s1&full_first=yes").json()["context"][0]
    assert not whole["truncated"] and len(whole["text"]) == 614
    c.post("/v1/store", json={"session_id": "s1", "response": "Kubernetes on GKE"})
    ctx = c.get("/v1/state/context?session_id=s1&max_text_chars=5&top_k=1").json()["context"]
    assert ctx == [{"text": "Kuber", "relevance": 1.0, "memory_hash": ctx[0]["memory_hash"], "truncated": True}]
    got = invalid(c.get("/v1/state/context?session_id=s1&top_k=51&full_first=perhaps"),
                  ("less_than_equal", ["query", "top_k"]), ("bool_parsing", ["query", "full_first"]))
    assert got[0]["input"] == "51"
    m = c.get(f"/v1/session/s1/memories/{ctx[0]['memory_hash']}").json()
    assert m["text"] == "Kubernetes on GKE" and m["access_count"] == 1 and m["importance"] == 1.0
    detail(c.get("/v1/session/s1/memories/00000000"), 404, "Memory not found")
    detail(c.get("/v1/session/nope/memories/00000000"), 404, "Session not found")


def test_triggers_and_anchors(c):
    mk(c)
    assert c.post("/v1/session/s1/trigger", json={"keyword": "Helm"}).json() == {"session_id": "s1", "trigger_count": 1}
    assert c.post("/v1/session/s1/trigger", json={"text": "deploy", "threshold": 0.5}).json()["trigger_count"] == 2
    detail(c.post("/v1/session/s1/trigger", json={"threshold": 0.5}), 422, "keyword, embedding or text is required")
    invalid(c.post("/v1/session/s1/trigger", json={"keyword": "", "threshold": -2}),
            ("string_too_short", ["body", "keyword"]), ("greater_than_equal", ["body", "threshold"]))
    assert c.delete("/v1/session/s1/trigger").json() == {"session_id": "s1", "trigger_count": 0}
    detail(c.delete("/v1/session/nope/trigger"), 404, "Session not found")
    detail(c.post("/v1/session/nope/trigger", json={}), 404, "Session not found")  # existence before semantics
    got = invalid(c.post("/v1/session/s1/anchor", json={}), ("missing", ["body", "embedding"]))
    assert got[0]["input"] == {}
    detail(c.post("/v1/session/s1/anchor", json={"embedding": [1, 2]}), 422,
           "embedding dimension 2 does not match the server dimension 384")
    assert c.post("/v1/session/s1/anchor", json={"embedding": unit(0)}).json() == {"session_id": "s1", "anchor_count": 1}
    assert c.get("/v1/session/s1/anchor_score").json() == {"session_id": "s1", "anchor_score": 0.0, "anchor_count": 1,
                                                           "drift_threshold": 0.5, "realignment_remaining": 0}
    assert c.post("/v1/session/s1/anchor", json={"text": "kubernetes"}).json()["anchor_count"] == 2
    detail(c.post("/v1/session/nope/anchor", json={"embedding": [1]}), 404, "Session not found")


def test_isolation_gate_and_release(c):
    mk(c)
    got = invalid(c.put("/v1/session/s1/isolation", json={"level": "CLOSED"}), ("literal_error", ["body", "level"]))
    assert got[0]["msg"] == "Input should be 'OPEN', 'FILTER', 'QUARANTINE' or 'LOCKDOWN'"
    assert c.put("/v1/session/s1/isolation", json={"level": "LOCKDOWN"}).json() == {"session_id": "s1", "level": "LOCKDOWN"}
    assert c.post("/v1/store", json={"session_id": "s1", "response": "anything"}).status_code == 200
    assert c.get("/v1/metrics/s1").json()["interaction_count"] == 0
    c.put("/v1/session/s1/isolation", json={"level": "QUARANTINE", "exclusion_texts": ["secret password"],
                                            "similarity_threshold": 0.5})
    c.post("/v1/store", json={"session_id": "s1", "response": "the secret password"})
    c.post("/v1/store", json={"session_id": "s1", "response": "weather is sunny"})
    assert c.get("/v1/metrics/s1").json()["interaction_count"] == 1
    assert c.get("/v1/session/s1/export").json()["state_dict"]["isolation"]["quarantine"][0]["text"] == "the secret password"
    assert c.post("/v1/session/s1/isolation/release").json() == {"session_id": "s1", "released_count": 1}
    assert c.get("/v1/metrics/s1").json()["interaction_count"] == 2
    c.put("/v1/session/s1/isolation", json={"level": "FILTER", "exclusion_embeddings": [unit(1)],
                                            "allowlist_texts": ["password"]})
    detail(c.put("/v1/session/s1/isolation", json={"level": "FILTER", "exclusion_embeddings": [[1]]}), 422,
           "embedding dimension 1 does not match the server dimension 384")
    detail(c.post("/v1/session/nope/isolation/release"), 404, "Session not found")


def test_inject_memory(c):
    mk(c)
    r = c.post("/v1/session/s1/memory", json={"text": "pinned fact", "tier": "long_term", "importance": 1})
    assert r.json() == {"session_id": "s1", "tier": "long_term", "total_memories": 1}
    assert c.post("/v1/session/s1/memory", json={"text": "client vector", "embedding": unit(9)}).json()["total_memories"] == 2
    invalid(c.post("/v1/session/s1/memory", json={"text": "x", "tier": "archive", "importance": 2, "access_count": -1}),
            ("literal_error", ["body", "tier"]), ("less_than_equal", ["body", "importance"]),
            ("greater_than_equal", ["body", "access_count"]))
    m = c.get("/v1/metrics/s1").json()
    assert m["interaction_count"] == 0 and m["total_memories"] == 2
    sources = [x["embedding_source"] for x in c.get("/v1/session/s1/export").json()["state_dict"]["memories"]]
    assert sources == ["server", "client"]


def test_export_import_verify(c):
    mk(c, "a")
    for t in ("Helm deploys the chart", "Postgres keeps billing"):
        c.post("/v1/store", json={"session_id": "a", "response": t})
    c.post("/v1/session/a/entities", json={"key": "MAX_RETRIES", "kind": "constant", "value": "6"})
    e = c.get("/v1/session/a/export").json()
    assert e["checksum"] == e["state_dict"]["checksum"] and len(e["checksum"]) == 64
    assert e["state_dict"]["format"] == "stigmer.semvec.state/1" and e["state_dict"]["embedder"] == "hash-v1"
    mk(c, "b")
    assert c.post("/v1/session/b/import", json={"state_dict": e["state_dict"]}).json() == {"session_id": "b", "imported": True}
    assert c.get("/v1/session/b/export").json()["checksum"] == e["checksum"]
    bad = dict(e["state_dict"], interaction_count=99)
    detail(c.post("/v1/session/b/import", json={"state_dict": bad}), 400, "Malformed or tampered state_dict")
    detail(c.post("/v1/session/b/import", json={"state_dict": {"session_id": "x", "semantic_state": []}}), 400,
           "Malformed or tampered state_dict")
    detail(c.post("/v1/session/b/import", json={"state_dict": dict(e["state_dict"], embedder="local-minilm")}), 400,
           "state_dict was produced by embedder 'local-minilm'; this server uses 'hash-v1'")
    invalid(c.post("/v1/session/b/import", json={}), ("missing", ["body", "state_dict"]))
    detail(c.post("/v1/session/nope/import", json={"state_dict": {}}), 404, "Session not found")
    v = c.post("/v1/session/b/verify").json()
    assert v == {"session_id": "b", "consistent": True, "checks": {
        "checksum_ok": True, "memories_checked": 2, "digest_mismatches": 0, "embedding_mismatches": 0,
        "state_vector_ok": True, "probe_similarities": []}}
    v = c.post("/v1/session/b/verify", json={"test_texts": ["Helm"], "test_embeddings": [unit(0)], "sample_size": 1}).json()
    assert v["checks"]["memories_checked"] == 1 and len(v["checks"]["probe_similarities"]) == 2
    detail(c.post("/v1/session/b/verify", json={"test_embeddings": [[1, 2]]}), 422,
           "embedding dimension 2 does not match the server dimension 384")
    invalid(c.post("/v1/session/b/verify", json={"sample_size": 0}), ("greater_than_equal", ["body", "sample_size"]))
    detail(c.get("/v1/session/nope/export"), 404, "Session not found")
    detail(c.post("/v1/session/nope/verify"), 404, "Session not found")


def test_entities(c):
    mk(c)
    r = c.post("/v1/session/s1/entities", json={"key": "src/app/main.py", "kind": "path", "value": "entry point"})
    assert r.status_code == 201 and r.json() == {"session_id": "s1", "key": "src/app/main.py", "size": 1}
    c.post("/v1/session/s1/entities", json={"key": "MAX_RETRIES", "kind": "constant", "value": "6", "importance": 3})
    invalid(c.post("/v1/session/s1/entities", json={"key": "k", "kind": "module", "value": "v"}),
            ("literal_error", ["body", "kind"]))
    listed = c.get("/v1/session/s1/entities").json()
    assert [e["key"] for e in listed["entities"]] == ["src/app/main.py", "MAX_RETRIES"] and listed["total"] == 2
    found = c.get("/v1/session/s1/entities?q=retries").json()
    assert [e["key"] for e in found["entities"]] == ["MAX_RETRIES"] and found["entities"][0]["access_count"] == 1
    assert [e["key"] for e in c.get("/v1/session/s1/entities?q=main.py").json()["entities"]] == ["src/app/main.py"]
    invalid(c.get("/v1/session/s1/entities?max_results=0"), ("greater_than_equal", ["query", "max_results"]))
    assert c.delete("/v1/session/s1/entities/src/app/main.py").json() == {
        "session_id": "s1", "key": "src/app/main.py", "removed": True}
    detail(c.delete("/v1/session/s1/entities/src/app/main.py"), 404, "Entity not found")
    detail(c.get("/v1/session/nope/entities"), 404, "Session not found")
    detail(c.post("/v1/session/nope/entities", json={"key": "k", "kind": "type", "value": "v"}), 404, "Session not found")


def test_unknown_paths_methods_and_body_limit(c):
    detail(c.get("/v1/session/s1/nothing"), 404, "Not Found")
    detail(c.get("/v1/cluster/x/nothing"), 404, "Not Found")  # no such coordination route
    for path in ("/v1/readyz", "/v1/dedup-check", "/v1/compliance/users/u/memory", "/v1/debug/x", "/openai/v1/models"):
        detail(c.get(path), 404, "Not Found")
    r = c.get("/v1/run")
    detail(r, 405, "Method Not Allowed")
    assert r.headers["allow"] == "POST"
    detail(c.post("/v1/run", content=b"x" * ((1 << 20) + 1)), 413, "Request body too large")
    assert len(c.get("/v1/health").headers["x-request-id"]) == 32
    assert c.get("/v1/health", headers={"X-Request-ID": "my id 1"}).headers["x-request-id"] == "my id 1"


def test_keys_scopes_and_tenants(make_client):
    c = make_client(admin_key=ADMIN_KEY)
    detail(c.post("/v1/run", json={"message": "x"}), 401, "Missing license token")
    detail(c.get("/v1/compliance/users/u/memory"), 404, "Not Found")  # not served, whatever the key
    detail(c.post("/v1/run", json={"message": "x"}, headers={"X-API-Key": "nope"}), 401, "Invalid license: unknown API key")
    a = new_key(c, "tenant-a")
    b = new_key(c, "tenant-b")
    reader = new_key(c, "tenant-a", scopes=("read",))
    both = {"Authorization": f"Bearer {a}", "X-API-Key": "wrong"}  # semvecctl sends both: the Bearer wins
    assert c.post("/v1/session/create", json={"session_id": "s1"}, headers=both).json()["created"]
    assert c.post("/v1/store", json={"session_id": "s1", "response": "a fact"}, headers={"X-API-Key": a}).status_code == 200
    detail(c.post("/v1/store", json={"session_id": "s1", "response": "x"}, headers={"X-API-Key": reader}), 403,
           "Insufficient scope")
    assert c.get("/v1/metrics/s1", headers={"X-API-Key": reader}).json()["interaction_count"] == 1
    hb = {"X-API-Key": b}
    for method, path, body in [("GET", "/v1/metrics/s1", None), ("DELETE", "/v1/session/s1", None),
                               ("POST", "/v1/store", {"session_id": "s1", "response": "x"}),
                               ("POST", "/v1/run", {"session_id": "s1", "message": "x"}),
                               ("GET", "/v1/state/context?session_id=s1", None),
                               ("GET", "/v1/session/s1/export", None), ("POST", "/v1/session/s1/verify", None),
                               ("GET", "/v1/session/s1/anchor_score", None), ("GET", "/v1/session/s1/entities", None),
                               ("POST", "/v1/session/s1/memory", {"text": "x"}),
                               ("POST", "/v1/session/s1/isolation/release", None)]:
        detail(c.request(method, path, json=body, headers=hb), 404, "Session not found")
    assert c.post("/v1/session/create", json={"session_id": "s1"}, headers=hb).json()["created"]  # its own s1


def test_rate_limit(make_client):
    c = make_client(semvec_rate=0.001, semvec_burst=2)
    for _ in range(3):
        assert c.get("/v1/health").status_code == 200  # free
    c.post("/v1/session/create", json={})
    c.post("/v1/session/create", json={})
    r = c.post("/v1/session/create", json={})
    assert r.status_code == 429 and r.headers["retry-after"] == "1000"
    assert r.json() == {"detail": "rate limit exceeded; retry after ~1000s"}
    assert "x-ratelimit-limit" not in r.headers


def test_metrics_endpoint(make_client):
    c = make_client()
    detail(c.get("/metrics"), 401, "Missing Basic Auth")
    detail(c.get("/metrics", headers={"Authorization": "Basic !!"}), 401, "Invalid Basic Auth header")
    basic = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}
    detail(c.get("/metrics", headers=basic), 503, "Metrics auth not configured")
    c = make_client(metrics_user="ops", metrics_password="pw")
    detail(c.get("/metrics", headers={"Authorization": "Basic " + base64.b64encode(b"ops:no").decode()}), 401,
           "Invalid credentials")
    mk(c)
    c.get("/v1/metrics/s1")
    c.get("/metrics", headers=basic)
    r = c.get("/metrics", headers=basic)
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = r.text
    assert 'semvec_requests_total{method="GET",endpoint="/v1/metrics/{session_id}",status="200"} 1.0' in text
    assert 'semvec_requests_total{method="POST",endpoint="/v1/session/create",status="200"} 1.0' in text
    assert 'semvec_request_duration_seconds_count{method="GET",endpoint="/v1/metrics/{session_id}"} 1.0' in text
    assert "semvec_active_sessions 1.0" in text and "/metrics\"" not in text and "/v1/metrics/s1" not in text


def test_text_with_u0000_is_refused_alike_on_both_stores(c):
    sid = mk(c)["session_id"]
    for path, body in [("/v1/run", {"message": "a\x00b"}), ("/v1/run", {"message": "a", "response": "b\x00"}),
                       ("/v1/store", {"session_id": sid, "response": "b\x00"}),
                       (f"/v1/session/{sid}/memory", {"text": "x\x00", "tier": "long_term"})]:
        detail(c.post(path, json=body), 422, "text must not contain U+0000")
    got = c.get(f"/v1/metrics/{sid}").json()
    assert (got["interaction_count"], got["total_memories"]) == (0, 0)  # nothing of them was kept
