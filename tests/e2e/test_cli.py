"""The `stigmer` key commands as a user runs them: subprocesses against the real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest


@pytest.fixture
def cli(shared_server):
    env = {**os.environ, "STIGMER_URL": shared_server.url, "NO_COLOR": "1", "COLUMNS": "200"}

    def run(*args: str, input: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "stigmer.cli", *args], input=input, capture_output=True,
                           text=True, env=env, timeout=30)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    return run


def test_put_get_json(cli, ns):
    p = cli("put", ns, "agents/a1", '{"state": "idle", "n": 1}', "--json")
    assert json.loads(p.stdout)["version"] == 1
    got = json.loads(cli("get", ns, "agents/a1", "--json").stdout)
    assert got["value"] == {"state": "idle", "n": 1} and got["key"] == "agents/a1" and got["version"] == 1
    human = cli("get", ns, "agents/a1").stdout
    assert "agents/a1" in human and '"idle"' in human


def test_put_from_stdin_with_ttl_and_create(cli, ns):
    cli("put", ns, "s", "-", "--ttl", "60", input='[1, 2, "three"]')
    got = json.loads(cli("get", ns, "s", "--json").stdout)
    assert got["value"] == [1, 2, "three"] and got["expires_at"] is not None
    p = cli("put", ns, "s", "0", "--create", ok=False)
    assert p.returncode == 1 and "version_conflict" in p.stderr


def test_list_json_and_table(cli, ns):
    for i in range(3):
        cli("put", ns, f"item/{i}", str(i * 10))
    cli("put", ns, "zzz", '"other"')
    entries = json.loads(cli("list", ns, "--json", "--prefix", "item/").stdout)
    assert [(e["key"], e["value"]) for e in entries] == [("item/0", 0), ("item/1", 10), ("item/2", 20)]
    assert len(json.loads(cli("list", ns, "--json", "--limit", "2").stdout)) == 2
    table = cli("list", ns).stdout
    assert "item/1" in table and "zzz" in table


def test_patch_variants(cli, ns):
    assert json.loads(cli("patch", ns, "c", "--incr", "5", "--json").stdout)["value"] == 5
    assert json.loads(cli("patch", ns, "c", "--incr", "-2", "--json").stdout)["value"] == 3
    assert json.loads(cli("patch", ns, "o", "--incr", "1", "--field", "hits", "--json").stdout)["value"] == {"hits": 1}
    merged = json.loads(cli("patch", ns, "o", "--merge", '{"a": {"b": 1}}', "--deep", "--json").stdout)
    assert merged["value"] == {"hits": 1, "a": {"b": 1}}
    cli("patch", ns, "l", "--append", '"x"', "--max", "2")
    cli("patch", ns, "l", "--append", '"y"', "--max", "2")
    assert json.loads(cli("patch", ns, "l", "--append", '"z"', "--max", "2", "--json").stdout)["value"] == ["y", "z"]
    patched = json.loads(cli("patch", ns, "o", "--json-patch", '[{"op": "remove", "path": "/a"}]', "--json").stdout)
    assert patched["value"] == {"hits": 1}
    usage = cli("patch", ns, "o", ok=False)
    assert usage.returncode == 2 and "exactly one" in usage.stderr


def test_delete_and_error_exit_codes(cli, ns):
    cli("put", ns, "gone", "true")
    assert "deleted" in cli("delete", ns, "gone").stdout
    p = cli("get", ns, "gone", ok=False)
    assert p.returncode == 1 and "not_found" in p.stderr and p.stdout == ""
    p = cli("get", ns, "gone", "--json", ok=False)
    assert p.returncode == 1 and json.loads(p.stderr)["error"]["code"] == "not_found"
    p = cli("delete", ns, "gone", ok=False)
    assert p.returncode == 1 and "not_found" in p.stderr
    p = cli("patch", ns, "list", "--append", "1", ok=True)
    p = cli("patch", ns, "list", "--incr", "1", ok=False)
    assert p.returncode == 1 and "type_mismatch" in p.stderr
    p = cli("put", ns, "k", "{not json", ok=False)
    assert p.returncode == 2 and "JSON" in p.stderr


def test_unreachable_server(cli, ns):
    p = cli("get", ns, "k", "--url", "http://127.0.0.1:9", ok=False)
    assert p.returncode == 1 and "unavailable" in p.stderr


def test_watch_streams_json_lines_until_interrupted(cli, ns, shared_server):
    start = json.loads(cli("put", ns, "w", "1", "--json").stdout)["mod_revision"]
    cli("put", ns, "w", "2")
    env = {**os.environ, "STIGMER_URL": shared_server.url}
    proc = subprocess.Popen([sys.executable, "-m", "stigmer.cli", "watch", "-n", ns, "--key", "w",
                             "--from", str(start), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        cli("put", ns, "w", "3")
        lines.append(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    sets = [json.loads(line) for line in lines]
    assert [s["changes"][0]["value"] for s in sets] == [1, 2, 3]
    assert sets[0]["revision"] == start and proc.returncode == 130
