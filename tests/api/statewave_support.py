"""Helpers of the Statewave surface tests: the §3.5 envelope and small builders."""

from __future__ import annotations


def err(r, status: int, code: str, message: str | None = None) -> dict:
    """Assert the §3.5 envelope; return its `error` member."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    e = body["error"]
    assert e["code"] == code, body
    if message is not None:
        assert e["message"] == message, body
    assert e["request_id"] == r.headers["x-request-id"]
    assert ("details" in e) == (code == "validation_error"), body
    assert r.headers["content-type"].startswith("application/json")
    return e


def locs(r) -> list:
    e = err(r, 422, "validation_error", "Request validation failed")
    assert e["details"] and all({"type", "loc", "msg"} <= set(d) for d in e["details"])
    return [(d["type"], d["loc"]) for d in e["details"]]


def episode(subject: str = "user-42", text: str = "hello", **members) -> dict:
    return {"subject_id": subject, "source": members.pop("source", "chat"), "type": members.pop("type", "conversation"),
            "payload": members.pop("payload", {"text": text}), **members}
