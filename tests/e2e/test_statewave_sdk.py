"""The real `statewave` SDK (PyPI statewave 1.5.0, its sync and async clients) against the real server
process, for every SDK method the surface has routes for (specs/statewave.md §1).

The SDK lives in its own virtual environment (tests/venvs.py: made once under the test cache,
`TEST_CACHE_DIR`, default `~/.cache/stigmer-tests`, with `pip install statewave==1.5.0`; skipped, with pip's
answer, only when pip cannot reach the package index). It runs in that interpreter (statewave_sdk_driver.py),
never in ours.
"""

from __future__ import annotations


import httpx
import pytest

from server_process import ServerProcess
from support import ADMIN_KEY
import statewave_sdk
from statewave_sdk import drive, ok





@pytest.fixture(scope="session")
def sdk_python() -> str:
    return statewave_sdk.sdk_python()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("sw") / "data").start()
    yield s
    s.kill()




@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sdk_episodes_compile_timeline_subjects(sdk_python, srv, use_async):
    subject = f"user-{'a' if use_async else 's'}"
    other = subject + "-2"
    calls = [
        ["create_episode", [subject, "chat", "conversation", {"messages": [{"role": "user", "content": "I work at Initech"}]}],
         {"session_id": "s1", "metadata": {"m": 1}, "idempotency_key": "ignored"}],
        ["create_episodes_batch", [[{"subject_id": subject, "source": "chat", "type": "note",
                                     "payload": {"text": "I work at Globex"}},
                                    {"subject_id": other, "source": "chat", "type": "note",
                                     "payload": {"text": "I'm from Lisbon"}}]], {}],
        ["compile_memories", [subject], {}],
        ["compile_memories", [subject], {}],
        ["compile_memories_async", [other], {}],
        ["compile_memories_wait", [other], {"poll_interval": 0.05, "timeout": 20}],
        ["get_timeline", [subject], {}],
        ["get_timeline", [subject], {"limit": 1, "offset": 0, "newest_first": True}],
        ["list_subjects", [], {}],
        ["list_subjects", [], {"limit": 1, "offset": 1}],
        ["delete_subject", [other], {}],
        ["delete_subject", [other], {}],
        ["create_episode", ["", "chat", "note", {}], {}],
        ["get_compile_status", ["ffffffff"], {}],
    ]
    r = drive(sdk_python, srv.url, calls, use_async=use_async, tenant_id=f"tenant-{use_async}")
    episode = ok(r[0])
    assert episode["subject_id"] == subject and episode["metadata"] == {"m": 1} and episode["created_at"]
    batch = ok(r[1])
    assert batch["episodes_created"] == 2 and [e["subject_id"] for e in batch["episodes"]] == [subject, other]
    compiled = ok(r[2])
    assert compiled["memories_created"] == 4
    assert [(m["kind"], m["content"], m["status"]) for m in compiled["memories"]] == [
        ("episode_summary", "user: I work at Initech", "active"), ("profile_fact", "I work at Initech", "superseded"),
        ("episode_summary", "I work at Globex", "active"), ("profile_fact", "I work at Globex", "active")]
    assert ok(r[3]) == {"subject_id": subject, "memories_created": 0, "memories": []}
    submitted = ok(r[4])
    assert submitted["status"] == "pending" and len(submitted["job_id"]) == 8
    waited = ok(r[5])
    assert waited["status"] == "completed" and waited["subject_id"] == other  # the first job compiled it all
    timeline = ok(r[6])
    assert len(timeline["episodes"]) == 2 and len(timeline["memories"]) == 4
    assert timeline["episodes_has_more"] is False and timeline["memories_has_more"] is False
    newest = ok(r[7])
    assert [e["payload"] for e in newest["episodes"]] == [{"text": "I work at Globex"}] and newest["episodes_has_more"]
    assert ok(r[8]) == {"total": 2, "subjects": [
        {"subject_id": subject, "episode_count": 2, "memory_count": 4},
        {"subject_id": other, "episode_count": 1, "memory_count": 2}]}
    assert ok(r[9]) == {"total": 2, "subjects": [{"subject_id": other, "episode_count": 1, "memory_count": 2}]}
    assert ok(r[10]) == {"subject_id": other, "episodes_deleted": 1, "memories_deleted": 2}
    assert ok(r[11]) == {"subject_id": other, "episodes_deleted": 0, "memories_deleted": 0}
    bad = r[12]["error"]
    assert (bad["status_code"], bad["code"]) == (422, "validation_error")
    assert bad["details"][0]["loc"] == ["body", "subject_id"] and bad["request_id"]
    missing = r[13]["error"]
    assert (missing["status_code"], missing["code"], missing["message"]) == (404, "not_found", "[404] not_found: Job not found or expired")
    # the subject delete took its compile jobs with it (Decision 3)
    gone = drive(sdk_python, srv.url, [["get_compile_status", [submitted["job_id"]], {}]], tenant_id=f"tenant-{use_async}")
    assert gone[0]["error"]["status_code"] == 404
    # a job is polled in its own tenant only (Decision 30)
    mine = drive(sdk_python, srv.url, [["compile_memories_async", [subject], {}]], tenant_id=f"tenant-{use_async}")
    job_id = ok(mine[0])["job_id"]
    again = drive(sdk_python, srv.url, [["get_compile_status", [job_id], {}]], tenant_id=f"tenant-{use_async}")
    assert ok(again[0])["job_id"] == job_id
    other_tenant = drive(sdk_python, srv.url, [["get_compile_status", [job_id], {}], ["list_subjects", [], {}]],
                         tenant_id="someone-else")
    assert other_tenant[0]["error"]["status_code"] == 404 and ok(other_tenant[1])["total"] == 0


def test_sdk_api_keys(sdk_python, tmp_path):
    s = ServerProcess(tmp_path / "data", admin_key=ADMIN_KEY).start()
    try:
        r = httpx.post(s.url + "/v1/admin/keys", json={"tenant": "acme", "scopes": ["read", "write"]},
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        key = r.json()["secret"]
        calls = [["create_episode", ["u1", "chat", "note", {"text": "I use vim"}], {}], ["list_subjects", [], {}]]
        good = drive(sdk_python, s.url, calls, api_key=key)
        assert ok(good[0])["subject_id"] == "u1" and ok(good[1])["total"] == 1
        wrong = drive(sdk_python, s.url, calls, api_key="not-a-key")[0]["error"]
        assert (wrong["status_code"], wrong["code"], wrong["message"]) == (403, "invalid_api_key", "[403] invalid_api_key: Invalid API key.")
        none = drive(sdk_python, s.url, calls, use_async=True)[1]["error"]
        assert (none["status_code"], none["code"]) == (401, "missing_api_key")
        # another Stigmer tenant's key sees nothing of acme's subjects
        other = httpx.post(s.url + "/v1/admin/keys", json={"tenant": "globex", "scopes": ["read"]},
                           headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["secret"]
        assert ok(drive(sdk_python, s.url, [["list_subjects", [], {}]], api_key=other)[0]) == {"subjects": [], "total": 0}
    finally:
        s.kill()
