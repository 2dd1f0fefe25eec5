"""`stigmer lease | token | claim` and `--fence` as a user runs them: subprocesses against the real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_doc_examples import blocks

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")  # the CLI under test is this checkout's, whatever is installed
ADMIN = "cli-coordination-admin-key-0123456789abcdef"


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "STIGMER_API_KEY"}
    return {**env, "STIGMER_URL": url, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": SRC, **extra}


def _runner(url: str, **extra: str):
    env = _env(url, **extra)

    def run(*args: str, input: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "stigmer.cli", *args], input=input, capture_output=True,
                           text=True, env=env, timeout=60)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    return run


@pytest.fixture
def cli(shared_server):
    return _runner(shared_server.url)


def js(p: subprocess.CompletedProcess):
    return json.loads(p.stdout)


# ---- leases and fencing ---------------------------------------------------------------------------


def test_second_acquire_is_refused_naming_the_holder(cli, ns):
    first = js(cli("lease", "acquire", f"{ns}/r", "--holder", "agent-1", "--ttl", "30", "--json"))
    assert first["fencing_token"] == 1 and first["fence"] == f"{ns}/r:1" and first["active"] is True
    p = cli("lease", "acquire", f"{ns}/r", "--holder", "agent-2", ok=False)
    assert p.returncode == 1 and p.stdout == ""
    assert "error [lease_conflict]" in p.stderr and "held by 'agent-1' (fencing token 1)" in p.stderr
    p = cli("lease", "acquire", f"{ns}/r", "--holder", "agent-2", "--json", ok=False)
    err = json.loads(p.stderr)["error"]
    assert p.returncode == 1 and err["code"] == "lease_conflict" and err["details"]["holder"] == "agent-1"
    human = cli("lease", "get", f"{ns}/r").stdout
    assert "agent-1" in human and first["lease_id"] in human and "active" in human


def test_concurrent_acquires_grant_exactly_one(cli, ns):
    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda i: cli("lease", "acquire", f"{ns}/race", "--holder", f"a{i}", "--json",
                                           ok=False), range(6)))
    won = [p for p in done if p.returncode == 0]
    assert len(won) == 1, [p.stderr for p in done]
    assert all(p.returncode == 1 and "lease_conflict" in p.stderr for p in done if p is not won[0])
    assert js(cli("lease", "get", f"{ns}/race", "--json"))["holder"] == js(won[0])["holder"]


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_fenced_writes_are_refused_once_the_lease_moved_on(cli, ns):
    slow = js(cli("lease", "acquire", f"{ns}/w", "--holder", "slow", "--ttl", "4", "--json"))
    cli("put", ns, "out", '"from slow"', "--fence", slow["fence"])
    # the slow holder stalls; the fast one queues and gets the lease when the slow one's expires
    fast = js(cli("lease", "acquire", f"{ns}/w", "--holder", "fast", "--ttl", "30", "--wait", "15", "--json"))
    assert fast["fencing_token"] == 2
    cli("put", ns, "out", '"from fast"', "--fence", fast["fence"])
    for write in (("put", ns, "out", '"late"'), ("patch", ns, "out", "--json-patch", "[]"), ("delete", ns, "out")):
        p = cli(*write, "--fence", slow["fence"], ok=False)
        assert p.returncode == 1 and "fence_stale" in p.stderr and "superseded" in p.stderr, p.stderr
    assert js(cli("get", ns, "out", "--json"))["value"] == "from fast"
    p = cli("put", ns, "out", '"x"', "--fence", slow["fence"], "--json", ok=False)
    assert json.loads(p.stderr)["error"]["details"]["current_token"] == 2
    n = js(cli("patch", ns, "n", "--incr", "1", "--fence", fast["fence"], "--json"))
    assert n["value"] == 1
    assert js(cli("delete", ns, "n", "--fence", fast["fence"], "--json"))["deleted"] is True


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_renew_release_get(cli, ns):
    res = f"{ns}/job"
    got = js(cli("lease", "acquire", res, "--holder", "h", "--ttl", "5", "--json"))
    renewed = js(cli("lease", "renew", res, "--lease-id", got["lease_id"], "--ttl", "120", "--json"))
    assert renewed["expires_at"] > got["expires_at"] and renewed["lease_id"] == got["lease_id"]
    released = js(cli("lease", "release", res, "--token", str(got["fencing_token"]), "--json"))
    assert released["active"] is False and released["released_at"] is not None
    assert "released" in cli("lease", "get", res).stdout
    for op in ("renew", "release"):
        p = cli("lease", op, res, "--token", "1", ok=False)
        assert p.returncode == 1 and "not_found" in p.stderr
        p = cli("lease", op, res, ok=False)
        assert p.returncode == 2 and "--lease-id" in p.stderr
    p = cli("put", ns, "k", "1", "--fence", got["fence"], ok=False)
    assert p.returncode == 1 and "released" in p.stderr
    p = cli("lease", "get", f"{ns}/never", ok=False)
    assert p.returncode == 1 and "not_found" in p.stderr


def test_a_fence_for_a_resource_a_header_cannot_carry(cli, ns):
    res = f"{ns}/rés un"
    lease = js(cli("lease", "acquire", res, "--holder", "h", "--json"))
    assert lease["resource"] == res
    cli("put", ns, "a", "1", "--fence", lease["fence"])  # as printed: percent-encoded
    cli("put", ns, "b", "1", "--fence", f"{res}:1")  # as typed
    p = cli("put", ns, "c", "1", "--fence", f"{res}:2", ok=False)
    assert p.returncode == 1 and "not issued" in p.stderr
    p = cli("put", ns, "c", "1", "--fence", "no-token", ok=False)
    assert p.returncode == 2 and "RESOURCE:TOKEN" in p.stderr


# ---- capability tokens -----------------------------------------------------------------------------


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_mint_use_attenuate_revoke(cli, ns):
    mint = cli("token", "mint", "--name", f"{ns}-p", "--scope", "read,write", "--prefix", ns, "--expires-in", "600")
    secret = mint.stdout.strip()
    assert mint.stdout == secret + "\n" and secret.startswith("as_cap_")
    assert "shown only this once" in mint.stderr
    cli("put", ns, "jobs/1", '"run"', "--api-key", secret)
    p = cli("put", ns + "-other", "x", "1", "--api-key", secret, ok=False)
    assert p.returncode == 1 and "forbidden" in p.stderr
    child = js(cli("token", "mint", "--api-key", secret, "--name", f"{ns}-c", "--scope", "read",
                   "--prefix", f"{ns}/jobs/", "--json"))
    listed = {t["name"]: t for t in js(cli("token", "list", "--json"))}
    parent = listed[f"{ns}-p"]
    assert child["token"]["parent_id"] == parent["id"] and child["token"]["expires_at"] == parent["expires_at"]
    table = cli("token", "list").stdout
    assert child["token"]["id"] in table and child["secret"] not in table
    p = cli("token", "mint", "--api-key", child["secret"], "--name", "wider", "--scope", "write", ok=False)
    assert p.returncode == 1 and "forbidden" in p.stderr
    assert js(cli("get", ns, "jobs/1", "--json", "--api-key", child["secret"]))["value"] == "run"
    p = cli("put", ns, "jobs/1", '"hijacked"', "--api-key", child["secret"], ok=False)
    assert p.returncode == 1 and "forbidden" in p.stderr
    assert "every token minted from it" in cli("token", "revoke", parent["id"]).stdout
    for s in (secret, child["secret"]):
        p = cli("get", ns, "jobs/1", "--api-key", s, ok=False)
        assert p.returncode == 1 and "unauthenticated" in p.stderr
    assert {f"{ns}-p", f"{ns}-c"}.isdisjoint(t["name"] for t in js(cli("token", "list", "--json")))


def test_mint_expiry_options(cli, ns):
    at = js(cli("token", "mint", "--name", ns, "--scope", "read", "--expires-at", "2031-02-03T04:05:06Z", "--json"))
    assert at["token"]["expires_at"].startswith("2031-02-03T04:05:06")
    for bad in (("--expires-at", "2031-02-03T04:05:06"), ("--expires-at", "soon"),
                ("--expires-in", "5", "--expires-at", "2031-02-03T04:05:06Z")):
        p = cli("token", "mint", "--name", ns, "--scope", "read", *bad, ok=False)
        assert p.returncode == 2, p.stderr
    p = cli("token", "revoke", "no-such-token", ok=False)
    assert p.returncode == 1 and "not_found" in p.stderr


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_tokens_with_keys_in_force(start_server, ns):
    server = start_server(admin_key=ADMIN)
    anon = _runner(server.url)
    admin = _runner(server.url, STIGMER_API_KEY=ADMIN)
    p = anon("token", "mint", "--name", "x", "--scope", "read", ok=False)
    assert p.returncode == 1 and "unauthenticated" in p.stderr
    key = js(admin("keys", "create", "--scope", "read,write", "--prefix", ns, "--json"))
    as_key = _runner(server.url, STIGMER_API_KEY=key["secret"])
    made = js(as_key("token", "mint", "--name", "t", "--scope", "read", "--json"))
    assert made["token"]["key_id"] == key["key"]["id"] and made["token"]["prefixes"] == [ns]
    p = as_key("token", "mint", "--name", "t", "--scope", "watch", ok=False)
    assert p.returncode == 1 and "forbidden" in p.stderr
    admin("put", ns, "k", "1")
    assert js(anon("get", ns, "k", "--json", "--api-key", made["secret"]))["value"] == 1
    admin("keys", "revoke", key["key"]["id"])  # the key at the root of its chain
    p = anon("get", ns, "k", "--api-key", made["secret"], ok=False)
    assert p.returncode == 1 and "unauthenticated" in p.stderr


# ---- claims ----------------------------------------------------------------------------------------


def test_claim_create_verify_exit_codes(cli, ns):
    evidence = {"kind": "key_value", "namespace": ns, "key": "q", "json_path": "$.growth", "expected_value": 0.2}
    made = js(cli("claim", "create", "--subject-type", "doc", "--subject-id", ns, "--statement", "growth is 20%",
                  "--evidence", json.dumps(evidence), "--json"))
    assert made["status"] == "pending" and made["evidence"][0]["source"] == f"{ns}/q"
    p = cli("claim", "verify", made["id"], ok=False)
    assert p.returncode == 1 and p.stdout.startswith("failed") and "key not found" in p.stdout
    cli("put", ns, "q", '{"growth": 0.2}')
    p = cli("claim", "verify", made["id"])
    assert p.stdout.startswith("verified") and "key value matched" in p.stdout
    cli("put", ns, "q", '{"growth": 0.1}')
    p = cli("claim", "verify", made["id"], "--json", ok=False)
    assert p.returncode == 1 and js(p)["status"] == "failed"
    assert js(cli("claim", "get", made["id"], "--json"))["status"] == "failed"
    runs = js(cli("claim", "runs", made["id"], "--json"))
    assert [r["status"] for r in runs] == ["failed", "verified", "failed"]
    assert [r["status"] for r in js(cli("claim", "runs", made["id"], "--order", "asc", "--limit", "2",
                                        "--json"))] == ["failed", "verified"]
    assert "0/1" in cli("claim", "runs", made["id"]).stdout
    p = cli("claim", "verify", "no-such-claim", ok=False)
    assert p.returncode == 1 and p.stdout == "" and "not_found" in p.stderr


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_claim_evidence_file_get_and_list(cli, ns):
    import hashlib

    items = [{"kind": "text_hash", "source": "s", "data": t, "hash": hashlib.sha256(t.encode()).hexdigest()}
             for t in ("one", "two")]
    ids = []
    for i in range(3):
        ids.append(js(cli("claim", "create", "--subject-type", ns, "--subject-id", f"s{i}", "--statement", "st",
                          "--evidence-file", "-", "--json", input=json.dumps(items)))["id"])
    human = cli("claim", "get", ids[0]).stdout
    assert "evidence 2" in human and f"{ns}/s0" in human and "pending" in human
    assert [c["id"] for c in js(cli("claim", "list", "--subject-type", ns, "--json"))] == ids[::-1]
    assert [c["id"] for c in js(cli("claim", "list", "--subject-type", ns, "--order", "asc", "--limit", "2",
                                    "--json"))] == ids[:2]
    assert [c["subject_id"] for c in js(cli("claim", "list", "--subject-type", ns, "--subject-id", "s1",
                                            "--json"))] == ["s1"]
    assert ids[2] in cli("claim", "list", "--subject-type", ns).stdout
    assert cli("claim", "verify", ids[1]).returncode == 0
    p = cli("claim", "create", "--subject-type", ns, "--subject-id", "x", "--statement", "st", ok=False)
    assert p.returncode == 2 and "--evidence" in p.stderr
    p = cli("claim", "create", "--subject-type", ns, "--subject-id", "x", "--statement", "st", "--evidence", "[1]",
            ok=False)
    assert p.returncode == 2 and "object" in p.stderr
    p = cli("claim", "get", "no-such-claim", ok=False)
    assert p.returncode == 1 and "not_found" in p.stderr


# ---- the shell examples of docs/cli.md -------------------------------------------------------------

MARK = "tests/e2e/test_cli_coordination.py runs this block"
DOC_BLOCKS = [pytest.param(code, id=f"docs/cli.md:{line}")
              for line, lang, code, reason in blocks(ROOT / "docs" / "cli.md") if reason and MARK in reason]


def test_the_doc_blocks_are_found():
    assert len(DOC_BLOCKS) >= 4


@pytest.mark.parametrize("code", DOC_BLOCKS)
def test_doc_block_runs(shared_server, tmp_path, code):
    if shutil.which("jq") is None:
        pytest.skip("the docs/cli.md recipes use jq, which is not installed")
    shim = tmp_path / "stigmer"  # `stigmer` as installed, but this checkout's
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stigmer.cli "$@"\n')
    shim.chmod(0o755)
    env = _env(shared_server.url, PATH=f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    p = subprocess.run(["sh", "-e", "-c", code], capture_output=True, text=True, env=env, timeout=90, cwd=tmp_path)
    assert p.returncode == 0, f"exit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
    httpx.get(shared_server.url + "/healthz").raise_for_status()
