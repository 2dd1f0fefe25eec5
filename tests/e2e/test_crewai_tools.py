"""The CrewAI tools (src/stigmer/integrations/crewai/tools.py) with the real crewai package, no LLM: each tool's
`run` (which validates its args_schema) / `_run` / `arun`, against the real server, with API keys: read, write
under an expected version, leases and fences, memory search, a read-only key refused, tenant isolation."""

from __future__ import annotations

import httpx
import pytest

from crewai_support import crewai_python, drive, keyed_server

# The first test of a run on a fresh cache builds crewai's environment (minutes): beyond the default timeout.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def python() -> str:
    return crewai_python()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = keyed_server(tmp_path_factory.mktemp("crewai-tools") / "data")
    keys = s.keys
    # Memories for the memory search tool: episodes through the memory runtime's own routes, compiled.
    with httpx.Client(base_url=s.url, headers={"X-API-Key": keys["a"]}) as h:
        for text in ("I work at Initech", "I like short answers"):
            assert h.post("/v1/episodes", json={"subject_id": "user-42", "source": "chat", "type": "note",
                                                "payload": {"text": text}}).status_code == 201
        assert h.post("/v1/memories/compile", json={"subject_id": "user-42"}).status_code == 200
    yield s
    s.kill()


def test_read_write_lease_and_memory_search(python, srv, ns):
    out = drive(python, "tools", url=srv.url, api_key=srv.keys["a"], ns=ns, subject="user-42")
    assert out["absent"]["error"]["code"] == "not_found"
    assert out["create"] == {"key": "plan", "value": {"step": 1}, "version": 1}
    assert out["create_again"]["error"]["code"] == "version_conflict"
    assert out["update"]["version"] == 2
    assert out["stale_update"]["error"]["code"] == "version_conflict"
    assert out["unguarded"] == {"key": "free", "value": [1, 2], "version": 1}
    assert out["read"] == {"key": "plan", "value": {"step": 2}, "version": 2}
    lease = out["lease"]
    assert lease["active"] and lease["holder"] == "writer" and lease["fence"] and lease["fencing_token"] >= 1
    assert out["second_holder"]["error"]["code"] == "lease_conflict"
    assert out["fenced"]["value"] == {"step": 3}
    assert out["released"]["active"] is False and out["released"]["lease_id"] == lease["lease_id"]
    assert out["stale_fence"]["error"]["code"] == "fence_stale"
    assert out["async_read"]["value"] == {"step": 3}
    assert out["memories"] and all("Initech" in m["content"] for m in out["memories"])
    assert {m["kind"] for m in out["memories"]} <= {"profile_fact", "episode_summary"}
    assert len(out["newest"]) == 1
    assert out["other_subject"] == []
    assert out["no_subject"]["error"]["code"] == "invalid_argument"
    assert "arguments validation failed" in out["bad_args"]
    assert out["schema"] == ["expected_version", "fence", "key", "value"]


def test_a_read_only_key_reads_and_is_refused_on_write(python, srv, ns):
    drive(python, "tools", url=srv.url, api_key=srv.keys["a"], ns=ns, subject="user-42")
    out = drive(python, "readonly_storage", url=srv.url, api_key=srv.keys["a_read"], ns=ns)
    assert out["tool_write"]["error"]["code"] == "forbidden"
    assert out["tool_read"]["error"]["code"] == "not_found"  # it reads (k was never written), it does not write
    assert out["save"] == "ForbiddenError"


def test_two_tenants_never_see_each_others_keys_or_memories(python, srv, ns):
    out = drive(python, "tenant_tools", url=srv.url, api_key=srv.keys["a"], other_key=srv.keys["b"], ns=ns,
                subject="user-42")
    assert out["a_write"]["version"] == 1
    assert out["b_read"]["error"]["code"] == "not_found"
    assert out["b_write"]["version"] == 1  # absent for team-b: its own key
    assert out["a_read"]["value"] == "a's"
    assert out["a_memories"] and out["b_memories"] == []
