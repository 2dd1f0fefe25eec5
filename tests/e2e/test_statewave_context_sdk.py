"""The real `statewave` SDK 1.5.0 (sync and async clients, in its own environment: tests/venvs.py) driving
`search_memories`, `get_context` and `get_context_string` against the real server process (§5.7, §5.8), with
the memory engine's hash-v1 embedder configured: the Statewave routes still rank lexically (§6.5)."""

from __future__ import annotations


import pytest

from server_process import ServerProcess
import statewave_sdk
from statewave_sdk import drive, ok



@pytest.fixture(scope="session")
def sdk_python() -> str:
    return statewave_sdk.sdk_python()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("swc") / "data", memory_embedding_provider="hash-v1").start()
    yield s
    s.kill()




@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sdk_search_and_context(sdk_python, srv, use_async):
    subject = f"ctx-{'a' if use_async else 's'}"
    texts = ["apple apple pie", "red apple", "green apple and pear", "I work at Initech"]
    calls = [["create_episode", [subject, "chat", "note", {"text": t}], {}] for t in texts] + [
        ["compile_memories", [subject], {}],
        ["search_memories", [subject], {"query": "apple"}],
        ["search_memories", [subject], {"query": "apple", "semantic": True}],
        ["search_memories", [subject], {"query": "apple pear", "kind": "episode_summary", "limit": 5}],
        ["search_memories", [subject], {}],
        ["search_memories", [subject], {"query": "apple", "limit": 0}],
        ["get_context", [subject, "where do I work"], {"max_tokens": 500}],
        ["get_context_string", ["nobody-" + subject, "hello world"], {}],
    ]
    out = drive(sdk_python, srv.url, calls, tenant_id="team-" + subject, use_async=use_async)
    assert ok(out[4])["memories_created"] == 5
    ranked = [m["content"] for m in ok(out[5])["memories"]]
    assert ranked == ["apple apple pie", "red apple", "green apple and pear"]
    assert [m["content"] for m in ok(out[6])["memories"]] == ranked  # hash-v1 never ranks a Statewave search
    assert [m["content"] for m in ok(out[7])["memories"]] == ["green apple and pear"]
    assert len(ok(out[8])["memories"]) == 5
    assert out[9]["error"]["status_code"] == 422 and out[9]["error"]["code"] == "validation_error"
    bundle = ok(out[10])
    assert bundle["subject_id"] == subject and bundle["task"] == "where do I work"
    assert bundle["assembled_context"].startswith("## Task\nwhere do I work\n\n## About this user\n- I work at Initech\n")
    assert bundle["provenance"]["fact_ids"] == [bundle["facts"][0]["id"]] and bundle["receipt_id"] is None
    assert bundle["token_estimate"] > 0
    assert ok(out[11]) == "## Task\nhello world\n"
    # another Statewave tenant sees none of it
    other = drive(sdk_python, srv.url, [["search_memories", [subject], {"query": "apple"}]], tenant_id="elsewhere",
                  use_async=use_async)
    assert ok(other[0])["memories"] == []
