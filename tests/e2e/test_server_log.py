"""The start-up line and the access log of the real server."""

from __future__ import annotations

import os

import httpx

from stigmer import __version__


def test_startup_line_and_access_log(make_server, tmp_path):
    server = make_server(log_level="info").start()
    httpx.get(server.url + "/v1/kv/app/missing?apiKey=s3cret-1&limit=5", headers={"X-Request-ID": "rid-abc"})
    httpx.get(server.url + "/v1/state/wf/k?api_key=s3cret-2&access_token=s3cret-3&key=s3cret-4")
    server.stop()
    log = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    where = server.env.get("STIGMER_DATABASE_URL") or os.path.abspath(server.data_dir)  # no password in either
    assert f"stigmer {__version__} on {server.url} with data in {where}" in log
    assert "serving the native API /v1 (reference /docs, console /console) and semvec, statevec, cntrlnode, agentstate, statewave, mcp" in log
    assert "GET /v1/kv/app/missing?apiKey=***&limit=5 404 " in log and "rid=rid-abc" in log
    assert "s3cret" not in log
