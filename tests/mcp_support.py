"""What the MCP end-to-end tests share: skipping without `mcp`, keys of two tenants, and one scripted session
that calls every tool and checks the answers (tests/e2e/test_mcp_stdio.py and test_mcp_http.py)."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import httpx
import pytest

ADMIN = "stg_mcp_admin_0123456789abcdefghijklmnopqrstuv"
HAS_MCP = importlib.util.find_spec("mcp") is not None
needs_mcp = pytest.mark.skipif(not HAS_MCP, reason="the mcp package is not installed (pip install 'stigmer[mcp]')")

TOOLS = {"kv_get", "kv_put", "kv_incr", "kv_merge", "kv_delete", "kv_list", "watch", "txn", "lease_acquire",
         "lease_renew", "lease_release", "claim_create", "claim_get", "claim_verify", "conversation_create",
         "conversation_append", "conversation_get", "conversation_search", "memory_add_episode", "memory_compile",
         "memory_search", "memory_context", "session_run", "session_store"}


def make_key(url: str, tenant: str, scopes: list[str]) -> str:
    r = httpx.post(url + "/v1/admin/keys", json={"tenant": tenant, "scopes": scopes, "name": "mcp test"},
                   headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def answer(result: Any) -> dict[str, Any]:
    """A successful tool result's JSON (structured content, and the same as its text)."""
    assert not result.is_error, result.content
    text = json.loads(result.content[0].text)
    assert result.structured_content == text
    return text


def failure(result: Any) -> str:
    assert result.is_error, result
    return result.content[0].text


async def every_tool(session: Any, ns: str) -> None:
    """Call each tool once (most more than once) through an initialised `ClientSession`."""
    listed = await session.list_tools()
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == TOOLS
    assert all(t.description and t.input_schema["type"] == "object" for t in tools.values())
    assert tools["kv_get"].annotations.read_only_hint and not tools["kv_put"].annotations.read_only_hint
    call = session.call_tool

    put = answer(await call("kv_put", {"namespace": ns, "key": "doc", "value": {"step": 1}}))
    assert put["version"] == 1 and put["value"] == {"step": 1}
    got = answer(await call("kv_get", {"namespace": ns, "key": "doc"}))
    assert got["value"] == {"step": 1} and got["mod_revision"] == put["mod_revision"]
    # a write with an expected version: the right one applies, a stale one is a version conflict
    v2 = answer(await call("kv_put", {"namespace": ns, "key": "doc", "value": {"step": 2}, "expected_version": 1}))
    assert v2["version"] == 2
    stale = failure(await call("kv_put", {"namespace": ns, "key": "doc", "value": {"step": 3}, "expected_version": 1}))
    assert "version_conflict" in stale and '"current_version":2' in stale and "Traceback" not in stale
    assert "conflict" in failure(await call("kv_put", {"namespace": ns, "key": "doc", "value": 0,
                                                         "expected_version": 0}))
    assert answer(await call("kv_get", {"namespace": ns, "key": "doc"}))["value"] == {"step": 2}
    assert "not_found" in failure(await call("kv_get", {"namespace": ns, "key": "absent"}))
    assert "Field required" in failure(await call("kv_get", {"namespace": ns}))  # checked against the schema

    assert answer(await call("kv_incr", {"namespace": ns, "key": "n"}))["value"] == 1
    assert answer(await call("kv_incr", {"namespace": ns, "key": "n", "amount": 41}))["value"] == 42
    merged = answer(await call("kv_merge", {"namespace": ns, "key": "doc", "value": {"owner": "a1"}}))
    assert merged["value"] == {"step": 2, "owner": "a1"}
    page = answer(await call("kv_list", {"namespace": ns, "limit": 1}))
    assert [e["key"] for e in page["entries"]] == ["doc"] and page["next_cursor"]
    page = answer(await call("kv_list", {"namespace": ns, "cursor": page["next_cursor"], "values": False}))
    assert [e["key"] for e in page["entries"]] == ["n"]

    # watch: the changes after a revision, at once when there are some; empty after the timeout
    seen = answer(await call("watch", {"namespace": ns, "after_revision": put["mod_revision"], "timeout": 5}))
    revisions = [ev["revision"] for ev in seen["events"]]
    assert revisions == sorted(revisions) and revisions[0] == v2["mod_revision"]
    assert seen["revision"] == merged["mod_revision"] == revisions[-1]
    quiet = answer(await call("watch", {"namespace": ns, "after_revision": seen["revision"], "timeout": 0.2}))
    assert quiet["events"] == [] and quiet["revision"] >= seen["revision"]

    done = answer(await call("txn", {
        "compare": [{"namespace": ns, "key": "doc", "version": merged["version"]}],
        "ops": [{"op": "put", "namespace": ns, "key": "a", "value": "x"},
                {"op": "incr", "namespace": ns, "key": "n", "amount": 1},
                {"op": "delete", "namespace": ns, "key": "doc"}]}))
    assert len(done["results"]) == 3 and done["results"][1]["value"] == 43 and done["results"][2]["deleted"]
    refused = failure(await call("txn", {"compare": [{"namespace": ns, "key": "a", "exists": False}],
                                         "ops": [{"op": "put", "namespace": ns, "key": "b", "value": 1}]}))
    assert "compare_failed" in refused
    deleted = answer(await call("kv_delete", {"namespace": ns, "key": "a", "expected_version": 1}))
    assert deleted["deleted"] is True

    lease = answer(await call("lease_acquire", {"resource": f"{ns}/job", "holder": "agent-1", "ttl": 30}))
    assert lease["active"] and lease["fence"] == f"{ns}/job:{lease['fencing_token']}"
    assert "lease_conflict" in failure(await call("lease_acquire", {"resource": f"{ns}/job", "holder": "agent-2"}))
    fenced = answer(await call("kv_put", {"namespace": ns, "key": "out", "value": 1, "fence": lease["fence"]}))
    assert fenced["version"] == 1
    renewed = answer(await call("lease_renew", {"resource": f"{ns}/job", "fencing_token": lease["fencing_token"],
                                                "ttl": 60}))
    assert renewed["expires_at"] > lease["expires_at"]
    released = answer(await call("lease_release", {"resource": f"{ns}/job",
                                                   "fencing_token": lease["fencing_token"]}))
    assert released["active"] is False
    assert "fence" in failure(await call("kv_put", {"namespace": ns, "key": "out", "value": 2,
                                                     "fence": lease["fence"]}))

    claim = answer(await call("claim_create", {
        "subject_type": "report", "subject_id": ns, "statement": "n is 43",
        "evidence": [{"kind": "key_value", "namespace": ns, "key": "n", "expected_value": 43}]}))
    assert claim["status"] == "pending"
    run = answer(await call("claim_verify", {"claim_id": claim["id"]}))
    assert run["status"] == "verified" and run["results"][0]["passed"]
    assert answer(await call("claim_get", {"claim_id": claim["id"]}))["status"] == "verified"
    assert "not_found" in failure(await call("claim_get", {"claim_id": "nope"}))

    conv = answer(await call("conversation_create", {
        "title": "plan", "tags": ["mcp"], "messages": [{"role": "user", "content": f"find the zebra {ns}"}]}))
    appended = answer(await call("conversation_append", {"conversation_id": conv["id"], "messages": [
        {"role": "assistant", "content": "the zebra is in the garden"}, {"role": "user", "content": "thanks"}]}))
    assert [m["content"] for m in appended["messages"]] == ["the zebra is in the garden", "thanks"]
    whole = answer(await call("conversation_get", {"conversation_id": conv["id"]}))
    assert [m["role"] for m in whole["messages"]] == ["user", "assistant", "user"]
    last = answer(await call("conversation_get", {"conversation_id": conv["id"], "last": 1}))
    assert [m["content"] for m in last["messages"]] == ["thanks"] and last["title"] == "plan"
    found = answer(await call("conversation_search", {"query": f"zebra {ns}"}))
    assert [r["id"] for r in found["results"]] == [conv["id"]] and "zebra" in found["results"][0]["snippet"]
    snippet, marks = found["results"][0]["snippet"], found["results"][0]["highlights"]
    assert "zebra" in [snippet[a:b] for a, b in marks]  # where the query's words are in the snippet
    assert "role" in failure(await call("conversation_append", {"conversation_id": conv["id"],
                                                                "messages": [{"role": "boss", "content": "x"}]}))

    # memory (the Statewave surface): an episode, compiled into memories, searched, assembled for a task
    subject = f"{ns}-user"
    episode = answer(await call("memory_add_episode", {"subject_id": subject, "session_id": "s1", "payload": {
        "messages": [{"role": "user", "content": "I live in Lisbon and I work at Initech"}]}}))
    assert episode["subject_id"] == subject and episode["source"] == "mcp"
    compiled = answer(await call("memory_compile", {"subject_id": subject}))
    assert compiled["memories_created"] >= 1
    assert all(episode["id"] in m["source_episode_ids"] for m in compiled["memories"])
    found = answer(await call("memory_search", {"subject_id": subject, "query": "Lisbon"}))["memories"]
    assert found and all(m["status"] == "active" and "Lisbon" in m["content"] for m in found)
    context = answer(await call("memory_context", {"subject_id": subject, "task": "Help with billing"}))
    assert context["assembled_context"].startswith("## Task\nHelp with billing")
    assert "Initech" in context["assembled_context"] and context["token_estimate"] > 0
    assert "validation" in failure(await call("memory_search", {"subject_id": subject, "limit": 101}))

    # semantic sessions (the semvec surface): a turn, an answer stored, the next turn retrieves it by meaning
    first = answer(await call("session_run", {"message": "What database do we use?"}))
    session_id = first["session_id"]
    assert answer(await call("session_store", {"session_id": session_id,
                                               "response": "We use PostgreSQL 15 for billing."})) == {
        "session_id": session_id}
    turn = answer(await call("session_run", {"session_id": session_id, "message": "Which database for billing?"}))
    assert "PostgreSQL 15" in turn["context"] and turn["top_similarity"] > 0
    assert "Session not found" in failure(await call("session_run", {"session_id": f"{session_id}x",
                                                                       "message": "x"}))
