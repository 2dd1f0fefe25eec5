"""API keys as an operator uses them: `stigmer keys` offline and online, against the real server process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
from httpx_sse import connect_sse

from pg_support import ON_POSTGRES, database_for
from stigmer.engine.keys import CACHE_SECONDS


def stigmer(*args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")}
    p = subprocess.run([sys.executable, "-m", "stigmer.cli", *args], capture_output=True, text=True,
                       env={**base, "NO_COLOR": "1", "COLUMNS": "200", **env}, timeout=30)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def offline(data) -> list[str]:
    """The options that point an offline command at the store a server on `data` uses."""
    return ["--database-url", database_for(str(data))] if ON_POSTGRES else ["--data-dir", str(data)]


def test_offline_bootstrap_then_online_create_list_revoke(tmp_path, start_server):
    data = tmp_path / "data"
    created = json.loads(stigmer("keys", "create", *offline(data), "--scope", "admin", "--name", "ops",
                                 "--json").stdout)
    admin = created["secret"]
    assert admin.startswith("stg_") and len(admin) >= 40 and created["key"]["scopes"] == ["admin"]
    assert admin not in stigmer("keys", "list", *offline(data), "--json").stdout
    s = start_server(data)
    assert httpx.get(s.url + "/v1/kv/app/k").status_code == 401  # a key exists: open mode is over
    online = {"STIGMER_URL": s.url, "STIGMER_API_KEY": admin}
    out = json.loads(stigmer("keys", "create", "--tenant", "team", "--scope", "read,write", "--scope", "watch",
                             "--prefix", "app/agents/", "--expires", "30d", "--json", **online).stdout)
    key, key_id = out["secret"], out["key"]["id"]
    assert out["key"]["prefixes"] == ["app/agents/"] and out["key"]["expires_at"] is not None
    h = {"Authorization": f"Bearer {key}"}
    assert httpx.put(s.url + "/v1/kv/app/agents/1", json={"ok": 1}, headers=h).status_code == 201
    assert httpx.put(s.url + "/v1/kv/app/other", json=1, headers=h).status_code == 403
    listed = json.loads(stigmer("keys", "list", "--tenant", "team", "--json", **online).stdout)
    assert [k["id"] for k in listed] == [key_id] and listed[0]["last_used_at"] is not None
    human = stigmer("keys", "list", **online).stdout
    assert key_id in human and "team" in human and key not in human
    # the SDK and the CLI take the key from STIGMER_API_KEY
    got = json.loads(stigmer("get", "app", "agents/1", "--json", STIGMER_URL=s.url, STIGMER_API_KEY=key).stdout)
    assert got["value"] == {"ok": 1}
    stigmer("keys", "revoke", key_id, **online)
    assert httpx.get(s.url + "/v1/kv/app/agents/1", headers=h).status_code == 401  # at once
    denied = stigmer("keys", "list", ok=False, STIGMER_URL=s.url, STIGMER_API_KEY="stg_wrong")
    assert denied.returncode == 1 and "unauthenticated" in denied.stderr
    if not ON_POSTGRES:  # offline commands refuse while the server runs (one process per data directory)
        busy = stigmer("keys", "revoke", key_id, *offline(data), ok=False)
        assert busy.returncode == 1 and "data_dir_in_use" in busy.stderr
        return
    # a shared database: an offline revoke beside a running replica is seen within the key cache's second
    other = json.loads(stigmer("keys", "create", *offline(data), "--scope", "read", "--json").stdout)
    oh = {"Authorization": f"Bearer {other['secret']}"}
    assert httpx.get(s.url + "/v1/revision", headers=oh).status_code == 200
    stigmer("keys", "revoke", other["key"]["id"], *offline(data))
    revoked_at = time.monotonic()
    while httpx.get(s.url + "/v1/revision", headers=oh).status_code != 401:
        assert time.monotonic() - revoked_at < CACHE_SECONDS + 1, "an offline revoke was not seen in time"


def test_an_existing_key_is_imported_offline(tmp_path, start_server):
    old = "legacy-cntrlnode-key-of-a-deployed-fleet-0042"
    stigmer("keys", "create", *offline(tmp_path / "d"), "--tenant", "fleet", "--scope", "read,write",
            "--import-from-env", "OLD_KEY", OLD_KEY=old)
    short = stigmer("keys", "create", *offline(tmp_path / "d"), "--scope", "read", "--import-from-env",
                    "OLD_KEY", ok=False, OLD_KEY="short")
    assert short.returncode == 1 and "at least 32" in short.stderr
    s = start_server(tmp_path / "d")
    assert httpx.post(s.url + "/v1/state/wf/k", json={"value": 1}, headers={"X-CntrlNode-Key": old}).status_code == 200


def test_bootstrap_admin_key_from_the_environment(start_server):
    secret = "stg_bootstrap-from-env-0123456789abcdefghij"
    s = start_server(admin_key=secret)
    assert httpx.get(s.url + "/v1/settings", headers={"Authorization": f"Bearer {secret}"}).json()["admin_key"] == "(set)"
    assert secret not in s.log()


def test_open_mode_refuses_a_non_loopback_bind(tmp_path):
    p = stigmer("serve", "--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path / "d"), ok=False)
    assert p.returncode == 2 and "open mode" in p.stderr and "Traceback" not in p.stderr


def test_unknown_or_out_of_range_settings_stop_start_up(tmp_path):
    for env, name in (({"STIGMER_MAX_VALU_BYTES": "1"}, "STIGMER_MAX_VALU_BYTES"),
                      ({"STIGMER_PORT": "99999"}, "STIGMER_PORT"), ({"STIGMER_ALLOW_OPEN_REMOTE": "maybe"}, "allow_open_remote")):
        p = stigmer("serve", "--data-dir", str(tmp_path / "d"), ok=False, **env)
        assert p.returncode == 2 and name in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_watch_streams_of_one_tenant_never_carry_another_tenants_changes(start_server):
    admin = "stg_watch-isolation-admin-key-0123456789ab"
    s = start_server(admin_key=admin)
    def key(tenant: str) -> str:
        r = httpx.post(s.url + "/v1/admin/keys", json={"tenant": tenant, "scopes": ["read", "write", "watch"]},
                       headers={"Authorization": f"Bearer {admin}"})
        return r.json()["secret"]

    a, b = key("a"), key("b")
    with httpx.Client(base_url=s.url, timeout=10) as c:
        c.put("/v1/kv/app/x", json="a-value", headers={"Authorization": f"Bearer {a}"})
        c.put("/v1/kv/app/x", json="b-value", headers={"Authorization": f"Bearer {b}"})
        c.put("/v1/kv/app/y", json="a-second", headers={"Authorization": f"Bearer {a}"})
        with connect_sse(c, "GET", f"/v1/watch?from=1&access_token={a}") as es:
            seen = []
            for ev in es.iter_sse():
                if ev.event != "change":
                    continue
                seen += [ch["value"] for ch in json.loads(ev.data)["changes"]]
                if len(seen) == 2:
                    break
        assert seen == ["a-value", "a-second"]
        with connect_sse(c, "GET", f"/v1/state/wf/k/stream?apiKey={b}") as es:
            assert es.response.status_code == 200


def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_bucket(start_server):
    s = start_server(statevec_rate_limit_anon=3)
    statuses = [httpx.get(s.url + "/v/" + "0" * 64, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(5)]
    assert statuses == [404, 404, 404, 429, 429]
    trusted = start_server(statevec_rate_limit_anon=1, trusted_proxies="127.0.0.1")
    statuses = [httpx.get(trusted.url + "/v/" + "0" * 64, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(3)]
    assert statuses == [404, 404, 404]  # each forwarded client has its own bucket


def test_a_slow_body_is_cut_off(start_server):
    s = start_server(body_timeout_seconds=0.5)
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        sock.sendall(b"PUT /v1/kv/app/k HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n{\"a\"")
        answer = b""
        while chunk := sock.recv(4096):  # the server answers, then closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer


def test_an_unreachable_database_stops_start_up_in_one_line():
    p = stigmer("serve", "--port", "1", "--database-url", "postgresql://stigmer:pw@127.0.0.1:1/nope", ok=False)
    assert p.returncode == 1 and "cannot connect to PostgreSQL at postgresql://stigmer:***@127.0.0.1:1/nope" in p.stderr
    assert "Traceback" not in p.stderr and ":pw@" not in p.stderr
