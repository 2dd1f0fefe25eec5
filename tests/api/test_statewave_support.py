"""The Statewave support routes in-process (specs/statewave.md §5.12–§5.16): statuses, bodies, error
envelopes and validation items, tenancy, and the subject delete's cascade. SQLite, and PostgreSQL with
TEST_STORE=postgres. The rules themselves are tested factor by factor in tests/stores/test_memory_support.py."""

from __future__ import annotations

import re
import uuid

import pytest

from statewave_support import episode, err, locs
from support import ADMIN_KEY, new_key

Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


@pytest.fixture
def sw(make_client):
    return make_client()


def said(content, session, source="user", subject="user-42"):
    return episode(subject, source=source, type="message", session_id=session,
                   payload={"messages": [{"role": source, "content": content}]})


def resolve(sw, session, status="open", subject="user-42", headers=None, **members):
    r = sw.post("/v1/resolutions", json={"subject_id": subject, "session_id": session, "status": status, **members},
                headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


# §5.12 health


def test_health_spec_example(sw):
    sw.post("/v1/episodes", json=said("this is urgent", "s1"))
    sw.post("/v1/episodes", json=said("urgent again", "s2"))
    for s in ("s1", "s2", "s3"):
        resolve(sw, s)
    r = sw.get("/v1/subjects/user-42/health")
    assert r.status_code == 200, r.text
    assert r.json() == {"subject_id": "user-42", "score": 35, "state": "at_risk", "factors": [
        {"signal": "unresolved_issues", "impact": -45, "detail": "3 open session(s)"},
        {"signal": "escalations", "impact": -20, "detail": "2 episode(s) with urgency markers"}]}


def test_health_of_an_unknown_subject_and_path_rules(sw):
    assert sw.get("/v1/subjects/nobody/health").json() == {"subject_id": "nobody", "score": 100, "state": "healthy",
                                                           "factors": []}
    resolve(sw, "s1", subject="a/b")
    assert sw.get("/v1/subjects/a%2Fb/health").json()["score"] == 85  # one segment (Decision 50)
    assert locs(sw.get("/v1/subjects/" + "x" * 257 + "/health")) == [("string_too_long", ["path", "subject_id"])]
    err(sw.post("/v1/subjects/user-42/health"), 405, "method_not_allowed", "Method Not Allowed")


def test_health_is_tenant_scoped(sw):
    a, b = {"X-Tenant-ID": "a"}, {"X-Tenant-ID": "b"}
    for s in ("s1", "s2", "s3"):
        resolve(sw, s, headers=a)
    assert sw.get("/v1/subjects/user-42/health", headers=a).json()["score"] == 55
    assert sw.get("/v1/subjects/user-42/health", headers=b).json()["score"] == 100
    assert sw.get("/v1/subjects/user-42/health").json()["score"] == 55  # unscoped sees every tenant's rows
    assert locs(sw.get("/v1/subjects/user-42/health", headers={"X-Tenant-ID": "t" * 257})) == [
        ("string_too_long", ["header", "X-Tenant-ID"])]


def test_require_tenant(make_client):
    sw = make_client(statewave_require_tenant=True)
    for r in (sw.get("/v1/subjects/u/health"), sw.get("/v1/subjects/u/sla"),
              sw.get("/v1/resolutions", params={"subject_id": "u"}),
              sw.post("/v1/resolutions", json={"subject_id": "u", "session_id": "s"}),
              sw.post("/v1/handoff", json={"subject_id": "u", "session_id": "s"})):
        err(r, 400, "missing_tenant", "X-Tenant-ID header is required.")
    assert sw.get("/v1/subjects/u/health", headers={"X-Tenant-ID": "a"}).status_code == 200


# §5.13 SLA


def test_sla_shape(sw):
    sw.post("/v1/episodes", json=said("my card was charged twice", "sess-abc"))
    sw.post("/v1/episodes", json=said("looking into it", "sess-abc", source="assistant"))
    resolve(sw, "sess-abc", "resolved")
    r = sw.get("/v1/subjects/user-42/sla")
    assert r.status_code == 200, r.text
    s = r.json()
    assert list(s) == ["subject_id", "total_sessions", "resolved_sessions", "open_sessions",
                       "avg_first_response_seconds", "avg_resolution_seconds", "first_response_breach_count",
                       "resolution_breach_count", "sessions"]
    assert (s["total_sessions"], s["resolved_sessions"], s["open_sessions"]) == (1, 1, 0)
    assert isinstance(s["avg_first_response_seconds"], float) and isinstance(s["avg_resolution_seconds"], float)
    (x,) = s["sessions"]
    assert list(x) == ["session_id", "status", "first_message_at", "first_response_at", "resolved_at",
                       "first_response_seconds", "resolution_seconds", "open_duration_seconds",
                       "first_response_breached", "resolution_breached"]
    assert all(OFFSET.match(x[k]) for k in ("first_message_at", "first_response_at", "resolved_at"))
    assert (x["session_id"], x["status"], x["open_duration_seconds"], x["first_response_breached"]) == (
        "sess-abc", "resolved", None, False)
    # a threshold of 0 counts any positive wait as a breach
    tight = sw.get("/v1/subjects/user-42/sla", params={"first_response_threshold_minutes": 0}).json()
    assert tight["first_response_breach_count"] == (1 if x["first_response_seconds"] > 0 else 0)


def test_sla_of_an_unknown_subject_and_bad_thresholds(sw):
    assert sw.get("/v1/subjects/nobody/sla").json() == {
        "subject_id": "nobody", "total_sessions": 0, "resolved_sessions": 0, "open_sessions": 0,
        "avg_first_response_seconds": None, "avg_resolution_seconds": None, "first_response_breach_count": 0,
        "resolution_breach_count": 0, "sessions": []}
    assert locs(sw.get("/v1/subjects/u/sla", params={"first_response_threshold_minutes": -1})) == [
        ("greater_than_equal", ["query", "first_response_threshold_minutes"])]
    assert locs(sw.get("/v1/subjects/u/sla", params={"resolution_threshold_hours": "soon"})) == [
        ("float_parsing", ["query", "resolution_threshold_hours"])]


def test_sla_session_without_a_user_episode_is_not_a_500(sw):
    sw.post("/v1/episodes", json=said("hello from the bot", "bot", source="system"))
    x = sw.get("/v1/subjects/user-42/sla").json()["sessions"][0]
    assert OFFSET.match(x["first_message_at"]) and x["first_response_seconds"] is None  # Decision 37


# §5.14, §5.15 resolutions


def test_resolution_upsert(sw):
    r = resolve(sw, "sess-abc", "resolved", resolution_summary="Issued refund", metadata={"category": "billing"})
    assert list(r) == ["id", "subject_id", "session_id", "status", "resolution_summary", "resolved_at", "metadata",
                       "created_at", "updated_at"]
    assert uuid.UUID(r["id"]).version == 4 and all(Z.match(r[k]) for k in ("resolved_at", "created_at", "updated_at"))
    assert (r["status"], r["resolution_summary"], r["metadata"]) == ("resolved", "Issued refund", {"category": "billing"})
    again = resolve(sw, "sess-abc", "open")  # an update answers 200 too (never the upstream 500)
    assert (again["id"], again["created_at"]) == (r["id"], r["created_at"])
    assert (again["status"], again["resolution_summary"], again["resolved_at"], again["metadata"]) == (
        "open", None, None, {})
    listed = sw.get("/v1/resolutions", params={"subject_id": "user-42"})
    assert listed.status_code == 200 and listed.json() == [again]  # a bare array


def test_resolution_validation(sw):
    body = {"subject_id": "u", "session_id": "s"}
    assert locs(sw.post("/v1/resolutions", json={**body, "status": "closed"})) == [
        ("string_pattern_mismatch", ["body", "status"])]
    assert locs(sw.post("/v1/resolutions", json={"subject_id": "u"})) == [("missing", ["body", "session_id"])]
    assert locs(sw.post("/v1/resolutions", json={**body, "session_id": ""})) == [
        ("string_too_short", ["body", "session_id"])]
    assert locs(sw.post("/v1/resolutions", json={**body, "subject_id": "x" * 257})) == [
        ("string_too_long", ["body", "subject_id"])]
    assert locs(sw.post("/v1/resolutions", json={**body, "resolution_summary": "x" * 2001})) == [
        ("string_too_long", ["body", "resolution_summary"])]
    assert locs(sw.post("/v1/resolutions", json={**body, "metadata": [1]})) == [("dict_type", ["body", "metadata"])]
    assert locs(sw.post("/v1/resolutions", content=b"{")) == [("json_invalid", ["body", 1])]
    assert sw.get("/v1/resolutions", params={"subject_id": "u"}).json() == []  # nothing was stored


def test_resolutions_list(sw):
    for s in ("a", "b", "c"):
        resolve(sw, s, "resolved" if s == "b" else "open")
    resolve(sw, "a", "unresolved")
    listed = sw.get("/v1/resolutions", params={"subject_id": "user-42"}).json()
    assert [r["session_id"] for r in listed][0] == "a"  # most recently updated first
    assert [r["session_id"] for r in sw.get("/v1/resolutions", params={"subject_id": "user-42", "status": "resolved"}
                                            ).json()] == ["b"]
    assert len(sw.get("/v1/resolutions", params={"subject_id": "user-42", "limit": 2}).json()) == 2
    assert len(sw.get("/v1/resolutions", params={"subject_id": "user-42", "offset": 2}).json()) == 1
    assert locs(sw.get("/v1/resolutions")) == [("missing", ["query", "subject_id"])]
    assert locs(sw.get("/v1/resolutions", params={"subject_id": ""})) == [("string_too_short", ["query", "subject_id"])]
    assert locs(sw.get("/v1/resolutions", params={"subject_id": "u", "status": "x"})) == [
        ("string_pattern_mismatch", ["query", "status"])]
    assert locs(sw.get("/v1/resolutions", params={"subject_id": "u", "limit": 0})) == [
        ("greater_than_equal", ["query", "limit"])]
    assert locs(sw.get("/v1/resolutions", params={"subject_id": "u", "limit": 201})) == [
        ("less_than_equal", ["query", "limit"])]
    assert locs(sw.get("/v1/resolutions", params={"subject_id": "u", "offset": -1})) == [
        ("greater_than_equal", ["query", "offset"])]


def test_resolutions_tenancy(sw):
    resolve(sw, "s1", headers={"X-Tenant-ID": "a"})
    resolve(sw, "s1", headers={"X-Tenant-ID": "b"})
    assert len(sw.get("/v1/resolutions", params={"subject_id": "user-42"}, headers={"X-Tenant-ID": "a"}).json()) == 1
    assert len(sw.get("/v1/resolutions", params={"subject_id": "user-42"}).json()) == 2


# §5.16 handoff


def test_handoff_of_an_empty_subject(sw):
    r = sw.post("/v1/handoff", json={"subject_id": "he123456789012", "session_id": "s1"})
    assert r.status_code == 200, r.text
    h = r.json()
    assert list(h) == ["subject_id", "session_id", "reason", "generated_at", "customer_summary", "active_issue",
                       "attempted_steps", "key_facts", "resolution_history", "recent_context", "health_score",
                       "health_state", "health_factors", "handoff_notes", "token_estimate", "provenance"]
    assert h["handoff_notes"] == ("# Handoff Brief — he123456789012\nReason: escalation\nSession: s1\n\n## Customer\n"
                                  "Subject: he123456789012\n\n## Customer Health\n🟢 Health: HEALTHY (score: 100)\n")
    assert "🟢".encode() in r.content  # UTF-8, not escaped
    assert (h["token_estimate"], h["health_score"], h["health_state"], h["reason"]) == (48, 100, "healthy", "escalation")
    assert Z.match(h["generated_at"])
    assert h["provenance"] == {"fact_ids": [], "episode_ids": [], "resolution_ids": [], "context_episode_ids": []}


def test_handoff_fields(sw):
    sw.post("/v1/episodes", json=episode("user-42", "I work at Globex."))
    sw.post("/v1/memories/compile", json={"subject_id": "user-42"})
    sw.post("/v1/episodes", json=said("charged twice, urgent", "cur"))
    sw.post("/v1/episodes", json=episode("user-42", "Checked the ledger", source="agent", type="action",
                                         session_id="cur"))
    resolve(sw, "old", "resolved", resolution_summary="Refunded")
    h = sw.post("/v1/handoff", json={"subject_id": "user-42", "session_id": "cur", "reason": "vip"}).json()
    assert h["key_facts"] == ["I work at Globex"] and h["customer_summary"] == "user-42 — I work at Globex"
    assert h["attempted_steps"] == ["Checked the ledger"]
    assert h["active_issue"] == "[user/message] user: charged twice, urgent (+ 1 more messages in session)"
    (line,) = h["resolution_history"]
    assert (line["session_id"], line["status"], line["summary"]) == ("old", "resolved", "Refunded")
    assert Z.match(line["resolved_at"])
    assert h["recent_context"] == ["[chat/conversation] I work at Globex."]
    assert h["handoff_notes"].startswith("# Handoff Brief — user-42\nReason: vip\nSession: cur\n")
    assert "## Previously Resolved\n- [old] Refunded\n" in h["handoff_notes"]
    assert len(h["provenance"]["episode_ids"]) == 2 and len(h["provenance"]["fact_ids"]) == 1
    cut = sw.post("/v1/handoff", json={"subject_id": "user-42", "session_id": "cur", "max_tokens": 5}).json()
    assert cut["token_estimate"] == 5 and len(cut["handoff_notes"]) < len(h["handoff_notes"])


def test_handoff_validation(sw):
    body = {"subject_id": "u", "session_id": "s"}
    assert locs(sw.post("/v1/handoff", json={"subject_id": "u"})) == [("missing", ["body", "session_id"])]
    assert locs(sw.post("/v1/handoff", json={**body, "max_tokens": 0})) == [("greater_than_equal", ["body", "max_tokens"])]
    assert locs(sw.post("/v1/handoff", json={**body, "max_tokens": 16001})) == [
        ("less_than_equal", ["body", "max_tokens"])]
    assert locs(sw.post("/v1/handoff", json={**body, "reason": "r" * 257})) == [("string_too_long", ["body", "reason"])]
    assert locs(sw.post("/v1/handoff", json={**body, "session_id": ""})) == [("string_too_short", ["body", "session_id"])]
    err(sw.get("/v1/handoff"), 405, "method_not_allowed")


def test_subject_delete_cascades_to_resolutions(sw):
    resolve(sw, "s1")
    resolve(sw, "s2", headers={"X-Tenant-ID": "other"})
    sw.get("/v1/subjects/user-42/health")
    d = sw.delete("/v1/subjects/user-42", headers={"X-Tenant-ID": "other"}).json()
    assert d["resolutions_deleted"] == 1
    assert [r["session_id"] for r in sw.get("/v1/resolutions", params={"subject_id": "user-42"}).json()] == ["s1"]
    assert sw.delete("/v1/subjects/user-42").json()["resolutions_deleted"] == 1
    assert sw.delete("/v1/subjects/user-42").json()["resolutions_deleted"] == 0


def test_scopes(make_client):
    sw = make_client(admin_key=ADMIN_KEY)
    reader = {"X-API-Key": new_key(sw, scopes=("read",))}
    err(sw.post("/v1/resolutions", json={"subject_id": "u", "session_id": "s"}, headers=reader), 403, "forbidden")
    assert sw.get("/v1/subjects/u/sla", headers=reader).status_code == 200
    err(sw.get("/v1/subjects/u/health"), 401, "missing_api_key", "X-API-Key header is required.")
    err(sw.get("/v1/subjects/u/health", headers={"X-API-Key": "nope"}), 403, "invalid_api_key", "Invalid API key.")


def test_body_limit_and_rate_limit(make_client):
    sw = make_client(statewave_rate_limit_rpm=2)
    big = b'{"subject_id": "u", "session_id": "s", "metadata": {"x": "' + b"a" * (10 * 1024 * 1024) + b'"}}'
    err(sw.post("/v1/resolutions", content=big, headers={"Content-Type": "application/json"}), 413,
        "payload_too_large", "Request body exceeds 10485760 bytes.")
    # five requests in at most two fixed one-minute windows: one window holds three, over the limit of 2
    answers = [sw.post("/v1/handoff", json={"subject_id": "u", "session_id": "s"}) for _ in range(5)]
    r = next(a for a in answers if a.status_code == 429)
    err(r, 429, "rate_limited", "Rate limit exceeded. Max 2 requests per minute.")
    assert int(r.headers["retry-after"]) >= 1
