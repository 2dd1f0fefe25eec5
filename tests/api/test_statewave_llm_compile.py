"""`POST /v1/memories/compile` with `memory_compiler = llm` (specs/statewave.md §6.4), sync and async, against
the real chat server of tests/chat_server.py; with a batch failing, the heuristic's memories stand in for it.
In-process app; SQLite, and PostgreSQL with TEST_STORE=postgres."""

from __future__ import annotations

import time

import pytest

from chat_server import running_chat_server
from statewave_support import episode


@pytest.fixture(scope="module")
def chat():
    with running_chat_server() as server:
        yield server


@pytest.fixture
def sw(make_client, chat):
    return make_client(memory_compiler="llm", llm_base_url=chat.url + "/good", memory_compiler_model="memories-1")


def test_sync_and_async_compiles_use_the_model(sw, chat):
    chat.requests.clear()
    h = {"X-Tenant-ID": "acme"}
    # about 2,500 and 4,000 chars: two batches
    sw.post("/v1/episodes", json=episode(text="I work at Initech [kind:procedure] " + "more " * 500), headers=h)
    sw.post("/v1/episodes", json=episode(text="I prefer tea, [fail:500] " + "word " * 800), headers=h)
    r = sw.post("/v1/memories/compile", json={"subject_id": "user-42"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(m["kind"], m["content"][:24]) for m in body["memories"]] == [
        ("procedure", "I work at Initech  more "),  # the server's answer: the text, markers removed
        ("episode_summary", "I prefer tea, [fail:500]"),  # its batch failed: §6.2's summary
        ("profile_fact", "I prefer tea")]  # and §6.2's fact
    assert body["memories_created"] == 3
    assert {r["body"]["model"] for r in chat.requests} == {"memories-1"}
    # the tenant scopes the memories: another tenant sees none
    assert sw.get("/v1/memories/search", params={"subject_id": "user-42"}, headers={"X-Tenant-ID": "x"}).json() == {"memories": []}

    sw.post("/v1/episodes", json=episode(text="I live in Lyon [kind:profile_fact]"), headers=h)
    job = sw.post("/v1/memories/compile", json={"subject_id": "user-42", "async": True}, headers=h).json()["job_id"]
    deadline = time.monotonic() + 20
    while (polled := sw.get(f"/v1/memories/compile/{job}", headers=h).json())["status"] != "completed":
        assert polled["status"] in ("pending", "running") and time.monotonic() < deadline, polled
        time.sleep(0.02)
    assert [(m["kind"], m["content"]) for m in polled["memories"]] == [("profile_fact", "I live in Lyon")]
