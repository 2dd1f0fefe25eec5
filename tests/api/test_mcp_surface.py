"""`/mcp` at the edge, in-process: its own surface (credential, JSON-RPC errors), the tools acting with the
caller's credential only, and a clear 503 where the `mcp` package is not installed."""

from __future__ import annotations

import json
import sys

import pytest

from agentstate_support import agentstate_app, live_key
from mcp_support import HAS_MCP

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def rpc(c, method: str, params: dict | None = None, **headers: str):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return c.post("/mcp", content=json.dumps(body), headers={**HEADERS, **headers})


def tool(c, name: str, arguments: dict, **headers: str) -> dict:
    r = rpc(c, "tools/call", {"name": name, "arguments": arguments}, **headers)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_without_the_mcp_package_mcp_answers_503(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mcp", None)  # what Python's import sees when mcp is not installed
    with agentstate_app(tmp_path) as (c, _):
        r = rpc(c, "tools/list")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32603
        assert body["error"]["data"]["code"] == "mcp_unavailable" and "pip install 'stigmer[mcp]'" in body["error"]["message"]
        assert c.get("/healthz").status_code == 200  # the rest of the server is unaffected


needs_mcp = pytest.mark.skipif(not HAS_MCP, reason="the mcp package is not installed (pip install 'stigmer[mcp]')")


@needs_mcp
def test_open_mode_tools_list_and_call(tmp_path):
    with agentstate_app(tmp_path) as (c, _):
        r = rpc(c, "tools/list")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert "mcp-session-id" not in r.headers  # stateless: any replica answers any request
        assert len(r.json()["result"]["tools"]) == 24
        put = tool(c, "kv_put", {"namespace": "app", "key": "k", "value": {"a": 1}}, **{"X-Request-ID": "rid-mcp-1"})
        assert put["structuredContent"]["version"] == 1 and not put.get("isError")
        assert c.get("/v1/kv/app/k").json()["value"] == {"a": 1}


@needs_mcp
def test_the_tools_act_with_the_one_credential_of_the_request(tmp_path):
    with agentstate_app(tmp_path) as (c, _):
        a = live_key(c, "stg_team_a_0123456789abcdefghijklmnopqrstuvwx", ["read", "write"], tenant="a")
        b = live_key(c, "stg_team_b_0123456789abcdefghijklmnopqrstuvwx", ["read", "write"], tenant="b")
        reader = live_key(c, "stg_team_r_0123456789abcdefghijklmnopqrstuvwx", ["read"], tenant="a")
        # without a credential, or with an invalid one: 401 in JSON-RPC terms
        for headers in ({}, {"Authorization": "Bearer stg_nope"}, {"X-API-Key": "stg_nope"},
                        {"Authorization": "Bearer stg_nope", "X-API-Key": a}):  # the bearer is the one looked at
            r = rpc(c, "tools/list", **headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
            assert r.json()["error"]["data"]["code"] == "unauthenticated" and r.headers["x-request-id"]
        # both headers: the bearer's tenant is the one written
        tool(c, "kv_put", {"namespace": "app", "key": "who", "value": "a"}, Authorization=f"Bearer {a}",
             **{"X-API-Key": b})
        assert c.get("/v1/kv/app/who", headers={"Authorization": f"Bearer {a}"}).status_code == 200
        assert c.get("/v1/kv/app/who", headers={"Authorization": f"Bearer {b}"}).status_code == 404
        got = tool(c, "kv_get", {"namespace": "app", "key": "who"}, **{"X-API-Key": b})
        assert got["isError"] and "not_found" in got["content"][0]["text"]
        denied = tool(c, "kv_put", {"namespace": "app", "key": "who", "value": "r"}, **{"X-API-Key": reader})
        text = denied["content"][0]["text"]
        assert denied["isError"] and "forbidden" in text and reader not in text and "Traceback" not in text


def test_a_browser_preflight_is_answered_by_the_surface(tmp_path):
    with agentstate_app(tmp_path, cors_origins="https://app.example") as (c, _):
        r = c.options("/mcp", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 204, r.text
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "POST" in r.headers["access-control-allow-methods"]
        assert r.headers["access-control-allow-headers"] == "authorization, content-type"
        refused = rpc(c, "tools/list", Origin="https://evil.example")  # a cross-site write: refused at the edge
        assert refused.status_code == 403 and refused.json()["error"]["data"]["code"] == "cross_site"


@needs_mcp
def test_bad_requests_get_json_rpc_errors_and_nothing_hangs(tmp_path):
    with agentstate_app(tmp_path) as (c, _):
        for method in ("GET", "DELETE", "PUT"):  # stateless: no GET stream that would stay open, no session
            r = c.request(method, "/mcp", headers={"Accept": "text/event-stream"})
            assert r.status_code == 405 and r.headers["allow"] == "POST, OPTIONS", r.text
            assert r.json()["error"]["data"]["code"] == "method_not_allowed"
        r = c.post("/mcp", content=b"{}", headers={**HEADERS, "Content-Type": "text/plain"})
        assert r.status_code == 415 and r.json()["error"]["data"]["code"] == "unsupported_media_type"
        r = c.post("/mcp", content=b"x" * (10 * 1024 * 1024 + 1), headers=HEADERS)
        assert r.status_code == 413 and r.json()["error"]["data"]["code"] == "payload_too_large"
        r = c.post("/mcp", content=b"{nope", headers=HEADERS)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700  # the SDK's parse error
        unknown = tool(c, "nope", {})
        assert unknown["isError"] and "Unknown tool: nope" in unknown["content"][0]["text"]
