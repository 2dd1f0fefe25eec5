"""AgentState claims (specs/agentstate.md §5.4, D12, D14, D26): evidence of every kind with the spec's
validation order and verification messages, runs kept, status from the latest run, exact pages."""

from __future__ import annotations

import hashlib
import json

import pytest

from agentstate_support import V1, err

CLAIM_KEYS = ["id", "project_id", "subject_type", "subject_id", "statement", "status", "created_at", "updated_at"]
EVIDENCE_KEYS = ["id", "project_id", "claim_id", "kind", "source", "data", "hash", "json_path", "expected_value",
                 "created_at"]
HELLO = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"  # sha256("hello world")


def claim(c, *evidence, subject=("state", "w1")):
    return c.post(f"{V1}/claims", json={"subject_type": subject[0], "subject_id": subject[1], "statement": "ok",
                                        "evidence": list(evidence)})


def test_create_example_and_verify(c, app):
    r = claim(c, {"kind": "text_hash", "source": "summary", "data": "hello world", "hash": HELLO.upper()})
    assert r.status_code == 201, r.text
    body = r.json()
    assert list(body) == CLAIM_KEYS + ["evidence"]
    assert body["status"] == "pending" and body["project_id"] == "default" and body["updated_at"] == body["created_at"]
    assert body["created_at"] == int(app[1].now() * 1000)
    ev = body["evidence"][0]
    assert list(ev) == EVIDENCE_KEYS and ev["hash"] == HELLO and ev["claim_id"] == body["id"]
    assert ev["json_path"] is None and ev["expected_value"] is None and ev["data"] == "hello world"
    app[1].advance(1)
    run = c.post(f"{V1}/claims/{body['id']}/verify", headers={"Content-Type": "application/json"})
    assert run.status_code == 201, run.text
    run = run.json()
    assert list(run) == ["id", "project_id", "claim_id", "status", "details", "created_at"]
    assert run["status"] == "verified" and run["details"] == {"results": [
        {"evidence_id": ev["id"], "kind": "text_hash", "source": "summary", "passed": True, "message": "hash matched"}]}
    got = c.get(f"{V1}/claims/{body['id']}").json()
    assert got["status"] == "verified" and got["updated_at"] == run["created_at"] == body["created_at"] + 1000


def test_every_kind_and_message(c):
    s = c.put(f"{V1}/states/doc", json={"agent_id": "w", "data": {"b": 2, "a": {"x": [1, 2]}, "ü": "/"}}).json()
    seq = s["latest_sequence"]
    event_id = c.get(f"{V1}/states/doc/events").json()["data"][0]["id"]
    compact = json.dumps({"b": 2, "a": {"x": [1, 2]}, "ü": "/"}, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(compact.encode()).hexdigest()
    deleted = c.delete(f"{V1}/states/doc").json()["event"]["sequence"]
    evidence = [
        {"kind": "text_hash", "source": "t1", "data": "hello world", "hash": HELLO},
        {"kind": "text_hash", "source": "t2", "data": "hello", "hash": HELLO},
        {"kind": "json_value", "source": "j1", "data": {"a": [1, {"b": 1.0}]}, "json_path": "$.a[1].b",
         "expected_value": 1},
        {"kind": "json_value", "source": "j2", "data": {"a": 1}, "json_path": "$.a", "expected_value": True},
        {"kind": "json_value", "source": "j3", "data": {"a": 1}, "json_path": "$.b", "expected_value": None},
        {"kind": "json_value", "source": "j4", "data": None, "json_path": "$", "expected_value": None},
        {"kind": "state_event", "source": str(seq), "hash": digest},
        {"kind": "state_event", "source": event_id, "hash": "0" * 64},
        {"kind": "state_event", "source": str(seq), "json_path": "$.a.x[1]", "expected_value": 2},
        {"kind": "state_event", "source": str(seq), "json_path": "$.a.x[1]", "expected_value": 3},
        {"kind": "state_event", "source": str(seq), "json_path": "$.zz", "expected_value": 3},
        {"kind": "state_event", "source": "999999", "hash": digest},
        {"kind": "state_event", "source": "no-such-event", "hash": digest},
        {"kind": "state_event", "source": str(deleted), "hash": hashlib.sha256(b"").hexdigest()},
        {"kind": "state_event", "source": str(deleted), "json_path": "$.a", "expected_value": 1},
    ]
    created = claim(c, *evidence).json()
    assert [e["kind"] for e in created["evidence"]] == [e["kind"] for e in evidence]  # input order
    assert created["evidence"][5]["data"] is None and created["evidence"][6]["data"] is None
    run = c.post(f"{V1}/claims/{created['id']}/verify").json()
    assert [(r["source"], r["passed"], r["message"]) for r in run["details"]["results"]] == [
        ("t1", True, "hash matched"), ("t2", False, "hash mismatch"),
        ("j1", True, "json value matched"), ("j2", False, "json value mismatch"),
        ("j3", False, "json path did not resolve"), ("j4", True, "json value matched"),
        (str(seq), True, "state event hash matched"), (event_id, False, "state event hash mismatch"),
        (str(seq), True, "state event json value matched"), (str(seq), False, "json value mismatch"),
        (str(seq), False, "json path did not resolve"), ("999999", False, "state event not found"),
        ("no-such-event", False, "state event not found"), (str(deleted), True, "state event hash matched"),
        (str(deleted), False, "json evidence is missing data, path, or expected value"),
    ]
    assert run["status"] == "failed"


def test_fifty_evidence_items_and_runs_are_kept(c, app):
    items = [{"kind": "text_hash", "source": f"s{i}", "data": "hello world", "hash": HELLO} for i in range(50)]
    created = claim(c, *items)
    assert created.status_code == 201 and len(created.json()["evidence"]) == 50
    cid = created.json()["id"]
    runs = []
    for _ in range(3):
        app[1].advance(1)
        runs.append(c.post(f"{V1}/claims/{cid}/verify").json())
    assert all(r["status"] == "verified" and len(r["details"]["results"]) == 50 for r in runs)
    page = c.get(f"{V1}/claims/{cid}/verifications", params={"limit": 2}).json()
    assert [r["id"] for r in page["data"]] == [runs[2]["id"], runs[1]["id"]]
    nxt = page["pagination"]["next_cursor"]
    assert page["pagination"]["limit"] == 2 and nxt == f"{runs[1]['created_at']}.{runs[1]['id']}"
    rest = c.get(f"{V1}/claims/{cid}/verifications", params={"limit": 2, "cursor": nxt}).json()
    assert [r["id"] for r in rest["data"]] == [runs[0]["id"]] and rest["pagination"]["next_cursor"] is None
    asc = c.get(f"{V1}/claims/{cid}/verifications", params={"order": "asc"}).json()
    assert [r["id"] for r in asc["data"]] == [r["id"] for r in runs]
    err(c.get(f"{V1}/claims/nope/verifications"), 404, "NOT_FOUND", "Claim not found")
    err(c.post(f"{V1}/claims/nope/verify"), 404, "NOT_FOUND", "Claim not found")
    err(c.get(f"{V1}/claims/nope"), 404, "NOT_FOUND", "Claim not found")
    err(claim(c, *items, items[0]), 400, "BAD_REQUEST", "Array must contain at most 50 element(s)")


def test_list_pages_filters_and_cursors(c, app):
    ids = []
    for i in range(5):
        app[1].advance(1)
        ids.append(claim(c, {"kind": "text_hash", "source": "s", "data": "d", "hash": HELLO},
                         subject=("task", "t1" if i % 2 else "t2")).json()["id"])
    page = c.get(f"{V1}/claims", params={"limit": 2}).json()
    assert [x["id"] for x in page["data"]] == ids[::-1][:2] and "evidence" not in page["data"][0]
    assert list(page["data"][0]) == CLAIM_KEYS
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "order": "asc", **({"cursor": cursor} if cursor else {})}
        p = c.get(f"{V1}/claims", params=params).json()
        seen += [x["id"] for x in p["data"]]
        cursor = p["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert [x["id"] for x in c.get(f"{V1}/claims", params={"subject_id": "t1"}).json()["data"]] == [ids[3], ids[1]]
    assert c.get(f"{V1}/claims", params={"subject_type": "none"}).json() == {
        "data": [], "pagination": {"limit": 0, "next_cursor": None}}
    assert len(c.get(f"{V1}/claims", params={"order": "sideways", "limit": "x"}).json()["data"]) == 5
    created_2 = c.get(f"{V1}/claims/{ids[2]}").json()["created_at"]
    legacy = c.get(f"{V1}/claims", params={"cursor": str(created_2)}).json()  # a bare <ms> cursor
    assert [x["id"] for x in legacy["data"]] == [ids[1], ids[0]]
    for bad in ("abc", "-1", "1.", "9007199254740992", "nan", "inf"):
        err(c.get(f"{V1}/claims", params={"cursor": bad}), 400, "INVALID_CURSOR",
            "Cursor must be a valid positive number (Unix timestamp in milliseconds)")


@pytest.mark.parametrize("item,message", [
    ({"source": "s", "data": "d", "hash": HELLO}, "Invalid input"),
    ({"kind": "nope", "source": "s"}, "Invalid input"),
    ({"kind": "text_hash", "data": "d", "hash": HELLO}, "Invalid input"),
    ({"kind": "text_hash", "source": "s", "data": 5, "hash": HELLO}, "Invalid input"),
    ({"kind": "json_value", "source": "s", "data": 1, "expected_value": 1}, "Invalid input"),
    ({"kind": "state_event", "source": 5, "hash": HELLO}, "Invalid input"),
    ({"kind": "state_event", "source": "1", "hash": 5}, "Invalid input"),
    ({"kind": "text_hash", "source": "", "data": "d", "hash": HELLO}, "String must contain at least 1 character(s)"),
    ({"kind": "text_hash", "source": "s" * 256, "data": "d", "hash": HELLO},
     "String must contain at most 255 character(s)"),
    ({"kind": "text_hash", "source": "s", "data": "", "hash": HELLO}, "String must contain at least 1 character(s)"),
    ({"kind": "text_hash", "source": "s", "data": "d", "hash": "abc"}, "hash must be a SHA-256 hex digest"),
    ({"kind": "json_value", "source": "s", "data": 1, "json_path": "$..x", "expected_value": 1},
     "json_path must be a simple JSON path"),
    ({"kind": "json_value", "source": "s", "json_path": "$", "expected_value": 1}, "data is required"),
    ({"kind": "json_value", "source": "s", "data": 1, "json_path": "$"}, "expected_value is required"),
    ({"kind": "state_event", "source": "1"}, "state_event evidence requires hash or json_path with expected_value"),
    ({"kind": "state_event", "source": "1", "json_path": "$.a"},
     "state_event evidence requires hash or json_path with expected_value"),
    ("text", "Expected object, received string"),
])
def test_evidence_validation(c, item, message):
    err(claim(c, item), 400, "BAD_REQUEST", message)


@pytest.mark.parametrize("body,message", [
    ({"subject_id": "x", "statement": "s", "evidence": []}, "Required"),
    ({"subject_type": "t" * 101, "subject_id": "x", "statement": "s", "evidence": []},
     "String must contain at most 100 character(s)"),
    ({"subject_type": "t", "statement": "s", "evidence": []}, "Required"),
    ({"subject_type": "t", "subject_id": "x", "statement": "s" * 5001, "evidence": []},
     "String must contain at most 5000 character(s)"),
    ({"subject_type": "t", "subject_id": "x", "statement": "s", "evidence": []},
     "Array must contain at least 1 element(s)"),
    ({"subject_type": "t", "subject_id": "x", "statement": "s"}, "Required"),
])
def test_claim_validation(c, body, message):
    err(c.post(f"{V1}/claims", json=body), 400, "BAD_REQUEST", message)
