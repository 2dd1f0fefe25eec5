"""The Statewave admin routes in-process (specs/statewave.md §5.17): jobs, tenant audit, export, import
(every check's 400 body), webhook stats and events. SQLite, and PostgreSQL with TEST_STORE=postgres."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from statewave_support import episode, err, locs

OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


@pytest.fixture
def sw(make_client):
    return make_client()


def _subject(sw, subject="user-42", tenant=None):
    h = {"X-Tenant-ID": tenant} if tenant else {}
    sw.post("/v1/episodes", json=episode(subject, "Olá, I work at Initech", session_id="s1"), headers=h)
    sw.post("/v1/memories/compile", json={"subject_id": subject}, headers=h)
    sw.post("/v1/episodes", json=episode(subject, "later"), headers=h)


def test_jobs(sw):
    a = sw.post("/v1/memories/compile", json={"subject_id": "a", "async": True}).json()
    b = sw.post("/v1/memories/compile", json={"subject_id": "b", "async": True}, headers={"X-Tenant-ID": "x"}).json()
    r = sw.get("/admin/jobs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["limit"], body["offset"]) == (2, 20, 0)
    assert {j["job_id"] for j in body["jobs"]} == {a["job_id"], b["job_id"]}
    job = next(j for j in body["jobs"] if j["job_id"] == b["job_id"])
    assert list(job) == ["job_id", "subject_id", "tenant_id", "status", "memories_created", "error", "created_at",
                         "started_at", "completed_at"]
    assert (job["subject_id"], job["tenant_id"]) == ("b", "x") and OFFSET.match(job["created_at"])
    assert [j["job_id"] for j in sw.get("/admin/jobs", params={"tenant_id": "x"}).json()["jobs"]] == [b["job_id"]]
    assert [j["job_id"] for j in sw.get("/admin/jobs", params={"subject_id": "a"}).json()["jobs"]] == [a["job_id"]]
    page = sw.get("/admin/jobs", params={"limit": 1, "offset": 1}).json()
    assert (len(page["jobs"]), page["total"], page["limit"], page["offset"]) == (1, 2, 1, 1)
    # admin routes ignore the tenant header: only their own tenant_id parameter filters
    assert sw.get("/admin/jobs", headers={"X-Tenant-ID": "zzz"}).json()["total"] == 2
    assert locs(sw.get("/admin/jobs", params={"limit": 101})) == [("less_than_equal", ["query", "limit"])]
    assert locs(sw.get("/admin/jobs", params={"offset": -1})) == [("greater_than_equal", ["query", "offset"])]


def test_tenant_audit(sw):
    _subject(sw)
    _subject(sw, "other", tenant="acme")
    sw.post("/v1/memories/compile", json={"subject_id": "a", "async": True})
    r = sw.get("/admin/tenant-audit")
    assert r.status_code == 200
    assert r.json() == {"null_tenant_rows": {"episodes": 2, "memories": 2, "compile_jobs": 1},
                        "guidance": "Backfill with UPDATE <table> SET tenant_id = 'your-tenant' WHERE tenant_id IS NULL"}


def test_export(sw):
    _subject(sw, tenant="acme")
    r = sw.get("/admin/export/user-42", headers={"X-Tenant-ID": "someone-else"})  # the header is not a filter
    assert r.status_code == 200, r.text
    doc = r.json()
    assert list(doc) == ["format_version", "exported_at", "subject_id", "tenant_id", "counts", "episodes", "memories",
                         "checksum"]
    assert (doc["format_version"], doc["subject_id"], doc["tenant_id"], doc["counts"]) == (
        "1.0", "user-42", None, {"episodes": 2, "memories": 2})
    assert OFFSET.match(doc["exported_at"]) and OFFSET.match(doc["episodes"][0]["created_at"])
    assert doc["episodes"][0]["tenant_id"] == "acme" and doc["memories"][0]["embedding"] is None
    canonical = json.dumps({"episodes": doc["episodes"], "memories": doc["memories"]}, sort_keys=True)
    assert doc["checksum"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert sw.get("/admin/export/user-42", params={"tenant_id": "acme"}).json()["tenant_id"] == "acme"
    err(sw.get("/admin/export/user-42", params={"tenant_id": "nobody"}), 404, "not_found",
        "No data found for subject 'user-42'")
    err(sw.get("/admin/export/a%2Fb"), 404, "not_found", "No data found for subject 'a/b'")


def test_import_round_trip(sw, make_client):
    _subject(sw, tenant="acme")
    doc = sw.get("/admin/export/user-42", params={"tenant_id": "acme"}).json()
    other = make_client()  # another server, another store
    r = other.post("/admin/import", json={"document": doc})
    assert r.status_code == 200, r.text
    assert r.json() == {"subject_id": "user-42", "tenant_id": "acme", "episodes_imported": 2, "memories_imported": 2,
                        "ids_preserved": True}
    back = other.get("/admin/export/user-42", params={"tenant_id": "acme"}).json()
    assert (back["episodes"], back["memories"], back["checksum"]) == (doc["episodes"], doc["memories"], doc["checksum"])
    # the episode left uncompiled stays so: a compile there picks it up
    compiled = other.post("/v1/memories/compile", json={"subject_id": "user-42"}, headers={"X-Tenant-ID": "acme"})
    assert compiled.json()["memories_created"] == 1
    copy = sw.post("/admin/import", json={"document": doc, "target_subject_id": "copy", "target_tenant_id": "beta",
                                          "preserve_ids": False}).json()
    assert copy == {"subject_id": "copy", "tenant_id": "beta", "episodes_imported": 2, "memories_imported": 2,
                    "ids_preserved": False}
    timeline = sw.get("/v1/timeline", params={"subject_id": "copy"}, headers={"X-Tenant-ID": "beta"}).json()
    assert len(timeline["episodes"]) == 2 and timeline["episodes"][0]["session_id"] == "s1"


def _resign(doc):
    doc["checksum"] = hashlib.sha256(json.dumps({"episodes": doc.get("episodes", []),
                                                 "memories": doc.get("memories", [])}, sort_keys=True).encode()
                                     ).hexdigest()
    return doc


def test_import_checks(sw):
    _subject(sw)
    doc = sw.get("/admin/export/user-42").json()

    def refused(message, **body):
        err(sw.post("/admin/import", json={"document": doc, **body}), 400, "bad_request", message)

    doc["format_version"] = "0.9"
    refused("Unsupported format version: 0.9 (expected 1.0)")
    doc["format_version"] = "1.0"
    doc["episodes"][0]["source"] = "forged"
    refused("Checksum mismatch — export file may be corrupted or tampered with")
    doc["subject_id"] = None
    _resign(doc)
    refused("No subject_id specified and none found in export document")
    doc["subject_id"] = "user-42"
    refused("ID conflict: 2 episode(s) already exist. Use preserve_ids=false to generate new IDs, or delete existing "
            "data first.")
    del doc["episodes"][1]["created_at"]
    _resign(doc)
    refused("Invalid document: episodes[1] is missing 'created_at'", preserve_ids=False)
    assert sw.get("/admin/export/user-42").json()["counts"] == {"episodes": 2, "memories": 2}  # nothing was written
    assert locs(sw.post("/admin/import", json={})) == [("missing", ["body", "document"])]
    assert locs(sw.post("/admin/import", json={"document": [1]})) == [("dict_type", ["body", "document"])]


def test_webhooks_off(sw):
    assert sw.get("/admin/webhooks/stats").json() == {"pending": 0, "delivered": 0, "dead_letter": 0, "total": 0}
    err(sw.get("/admin/webhooks/0b6f3c1e-9d2a-4c5b-8e7f-1a2b3c4d5e6f"), 404, "not_found", "Webhook event not found")
    assert locs(sw.get("/admin/webhooks/not-a-uuid")) == [("uuid_parsing", ["path", "event_id"])]


def test_webhook_stats_and_event(make_client):
    sw = make_client(webhook_url="http://127.0.0.1:9/hook")  # nothing listens: attempts fail and are retried later
    sw.post("/v1/episodes", json=episode())
    stats = sw.get("/admin/webhooks/stats").json()
    assert stats["total"] == 1 and stats["pending"] + stats["dead_letter"] + stats["delivered"] == 1
    event_id = _stored_event_id(sw)
    r = sw.get(f"/admin/webhooks/{event_id}")
    assert r.status_code == 200, r.text
    e = r.json()
    assert list(e) == ["id", "event", "status", "attempts", "max_attempts", "last_attempt_at", "next_attempt_at",
                       "last_error", "http_status", "created_at", "delivered_at"]
    assert (e["id"], e["event"], e["status"], e["max_attempts"], e["delivered_at"], e["http_status"]) == (
        event_id, "episode.created", "pending", 5, None, None)
    assert OFFSET.match(e["created_at"]) and e["attempts"] in (0, 1)


def _stored_event_id(sw) -> str:
    services = sw.app.state.services
    counts = sw.portal.call(services.store.webhooks.counts, "default")
    assert counts[0].get("pending") == 1
    found = sw.portal.call(_ids, services.store)
    assert len(found) == 1
    return found[0]


async def _ids(store) -> list[str]:
    if hasattr(store, "in_pool"):
        rows = await store.in_pool("SELECT id FROM webhook_events", ())
    else:
        rows = await store.fetch("SELECT id FROM webhook_events")
    return [r[0] for r in rows]
