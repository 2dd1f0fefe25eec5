"""The real `statewave` SDK 1.5.0 (sync and async clients) against the real server process, for the support
methods (specs/statewave.md §1, §5.12–§5.16): create_resolution, list_resolutions, get_health, get_sla,
create_handoff. The SDK runs in its own virtual environment (tests/venvs.py) through statewave_sdk_driver.py."""

from __future__ import annotations


import pytest

import statewave_sdk
from statewave_sdk import drive, ok



@pytest.fixture(scope="session")
def sdk_python() -> str:
    return statewave_sdk.sdk_python()




@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sdk_support_methods(sdk_python, start_server, use_async):
    s = start_server()
    subject = "cust-async" if use_async else "cust-sync"
    said = {"messages": [{"role": "user", "content": "I was charged twice, this is urgent"}]}
    calls = [
        ["create_episode", [subject, "user", "message", said], {"session_id": "s1"}],
        ["create_episode", [subject, "assistant", "message", {"text": "Refund started"}], {"session_id": "s1"}],
        ["create_resolution", [subject, "s1"], {"metadata": {"category": "billing"}}],
        ["create_resolution", [subject, "s2"], {"status": "unresolved"}],
        ["get_health", [subject], {}],
        ["get_sla", [subject], {}],
        ["get_sla", [subject], {"first_response_threshold_minutes": 0.0, "resolution_threshold_hours": 1.5}],
        ["create_handoff", [subject, "s1"], {"reason": "vip", "max_tokens": 2000, "emit_receipt": True}],
        ["create_resolution", [subject, "s1"], {"status": "resolved", "resolution_summary": "Refunded"}],
        ["list_resolutions", [subject], {}],
        ["list_resolutions", [subject], {"status": "resolved", "limit": 1, "offset": 0}],
        ["create_handoff", [subject, "s1"], {"max_tokens": 5}],
        ["create_resolution", [subject, "s3"], {"status": "closed"}],
        ["get_health", ["nobody"], {}],
    ]
    r = drive(sdk_python, s.url, calls, tenant_id=f"tenant-{use_async}", use_async=use_async)
    first = ok(r[2])
    assert (first["session_id"], first["status"], first["metadata"], first["resolved_at"]) == (
        "s1", "open", {"category": "billing"}, None)
    health = ok(r[4])
    assert (health["score"], health["state"]) == (75, "healthy")
    assert [f["signal"] for f in health["factors"]] == ["unresolved_issues", "escalations"]
    sla = ok(r[5])
    assert (sla["total_sessions"], sla["open_sessions"], sla["first_response_breach_count"]) == (1, 1, 0)
    assert sla["sessions"][0]["session_id"] == "s1" and sla["sessions"][0]["first_message_at"].endswith("+00:00")
    tight = ok(r[6])
    assert tight["first_response_breach_count"] == (1 if sla["sessions"][0]["first_response_seconds"] > 0 else 0)
    brief = ok(r[7])
    assert (brief["reason"], brief["health_score"], brief["health_state"]) == ("vip", 75, "healthy")
    assert brief["handoff_notes"].startswith(f"# Handoff Brief — {subject}\nReason: vip\nSession: s1\n")
    assert brief["active_issue"].startswith("[user/message] user: I was charged twice")
    assert brief["attempted_steps"] == ["Refund started"]
    assert (brief["receipt_id"], brief["receipt_emitted"]) == (None, False)  # receipts are out of scope (§1)
    assert set(brief["provenance"]) == {"fact_ids", "episode_ids", "resolution_ids", "context_episode_ids"}
    done = ok(r[8])
    assert (done["id"], done["status"], done["resolution_summary"]) == (first["id"], "resolved", "Refunded")
    assert done["resolved_at"] is not None
    assert [x["session_id"] for x in ok(r[9])] == ["s1", "s2"]  # most recently updated first
    assert [x["session_id"] for x in ok(r[10])] == ["s1"]
    assert ok(r[11])["token_estimate"] == 5
    bad = r[12]["error"]
    assert (bad["status_code"], bad["code"]) == (422, "validation_error")
    assert bad["details"][0]["loc"] == ["body", "status"]
    assert ok(r[13]) == {"subject_id": "nobody", "score": 100, "state": "healthy", "factors": []}
    # the tenant header scopes every support read (§3.2)
    other = drive(sdk_python, s.url, [["list_resolutions", [subject], {}], ["get_health", [subject], {}]],
                  tenant_id="someone-else", use_async=use_async)
    assert ok(other[0]) == [] and ok(other[1])["score"] == 100
