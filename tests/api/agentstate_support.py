"""Helpers of the AgentState surface tests: an in-process app on a clock the test moves, and the spec's
error envelope."""

from __future__ import annotations

import contextlib

from starlette.testclient import TestClient

from support import app_settings

from stigmer.app import create_app
from stigmer.clock import ManualClock

V1 = "/api/v1"


@contextlib.contextmanager
def agentstate_app(tmp_path, name: str = "as", clock: ManualClock | None = None, **overrides):
    """The whole app in-process; yields (client, clock)."""
    clock = clock or ManualClock(1_795_460_000.0)
    settings = app_settings({"data_dir": str(tmp_path / name), **overrides})
    with TestClient(create_app(settings, clock), base_url="http://localhost", raise_server_exceptions=False) as c:
        yield c, clock


def err(r, status: int, code: str, message: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    if message is not None:
        assert body["error"]["message"] == message, body
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-request-id"]


def live_key(c, secret: str, scopes=("*",), tenant: str = "default") -> str:
    """Provision an `as_live_` API key the way an operator does (the server's own key administration)."""
    c.portal.call(lambda: c.app.state.services.keys.create(tenant, list(scopes), secret=secret))
    return secret
