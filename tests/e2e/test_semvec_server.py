"""The semvec surface on the real server: 50 concurrent stores on one session, a session that survives `kill -9`
and is served by another replica, tenant isolation over HTTP, and the real `semvecctl` from PyPI's semvec 0.8.9."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from pg_support import new_database, postgres_url
from support import ADMIN_KEY
from venvs import python_with

SEMVEC_VERSION = "0.8.9"


def replay(memories: list[dict], beta: float = 0.85) -> np.ndarray:
    """§6.2's EMA over the stored embeddings in turn order (no anchors here): what `s` must be."""
    s = np.zeros(len(memories[0]["embedding"]))
    for m in sorted(memories, key=lambda m: m["created_turn"]):
        x = np.asarray(m["embedding"])
        b = x if not s.any() else beta * s + (1 - beta) * x
        s = b / np.linalg.norm(b)
    return s


async def test_fifty_concurrent_stores_give_fifty_turns_and_a_consistent_vector(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        assert (await c.post("/v1/session/create", json={"session_id": "busy"})).json()["created"]
        rs = await asyncio.gather(*(c.post("/v1/store", json={"session_id": "busy", "response": f"fact {i} about area {i % 9}"})
                                    for i in range(50)))
        assert [r.status_code for r in rs] == [200] * 50
        m = (await c.get("/v1/metrics/busy")).json()
        assert m["interaction_count"] == 50 and m["total_memories"] == 50 and len(m["similarity_history"]) == 50
        state = (await c.get("/v1/session/busy/export")).json()["state_dict"]
        assert sorted(x["created_turn"] for x in state["memories"]) == list(range(1, 51))
        assert sorted(x["text"] for x in state["memories"]) == sorted(f"fact {i} about area {i % 9}" for i in range(50))
        assert np.allclose(state["semantic_state"], replay(state["memories"]), atol=1e-5)
        assert (await c.post("/v1/session/busy/verify")).json()["consistent"] is True
        created = await asyncio.gather(*(c.post("/v1/session/create", json={"session_id": "once"}) for _ in range(20)))
        assert sum(r.json()["created"] for r in created) == 1


def test_a_session_survives_kill_9(server):
    c = httpx.Client(base_url=server.url, timeout=30)
    c.post("/v1/session/create", json={"session_id": "durable"})
    c.post("/v1/run", json={"session_id": "durable", "message": "Which database?"})
    c.post("/v1/run", json={"session_id": "durable", "message": "How to deploy?", "response": "PostgreSQL 15."})
    before = c.get("/v1/session/durable/export").json()
    server.kill()
    server.start()
    c = httpx.Client(base_url=server.url, timeout=30)
    assert c.get("/v1/session/durable/export").json() == before
    r = c.post("/v1/run", json={"session_id": "durable", "message": "Which database?", "response": "Helm."}).json()
    assert "PostgreSQL 15." in r["context"]


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_another_replica_serves_a_session_after_kill_9(make_server):
    postgres_url()
    url = new_database(f"stigmer_semvec_replicas_{os.getpid()}")
    a, b = make_server(database_url=url), make_server(database_url=url)
    for s in (a, b):
        s.data_dir.mkdir()
        s.start()
    ca = httpx.Client(base_url=a.url, timeout=30)
    ca.post("/v1/session/create", json={"session_id": "shared"})
    for i in range(5):
        ca.post("/v1/store", json={"session_id": "shared", "response": f"replicated fact {i}"})
    cb = httpx.Client(base_url=b.url, timeout=30)
    assert cb.get("/v1/metrics/shared").json()["interaction_count"] == 5
    cb.post("/v1/run", json={"session_id": "shared", "message": "replicated fact"})  # b builds its view
    ca.post("/v1/store", json={"session_id": "shared", "response": "the last fact before the crash"})
    a.kill()
    r = cb.post("/v1/run", json={"session_id": "shared", "message": "last fact before the crash"}).json()
    assert "the last fact before the crash" in r["context"]
    assert cb.get("/v1/metrics/shared").json()["interaction_count"] == 6
    assert cb.post("/v1/session/shared/verify").json()["consistent"] is True


def test_tenants_see_only_their_own_sessions(start_server):
    s = start_server(admin_key=ADMIN_KEY)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def key(tenant: str) -> str:
        r = httpx.post(s.url + "/v1/admin/keys", json={"tenant": tenant, "scopes": ["read", "write"]}, headers=admin)
        return r.json()["secret"]

    a = httpx.Client(base_url=s.url, headers={"X-API-Key": key("ta")})
    b = httpx.Client(base_url=s.url, headers={"Authorization": "Bearer " + key("tb")})
    a.post("/v1/session/create", json={"session_id": "mine"})
    a.post("/v1/store", json={"session_id": "mine", "response": "a secret of tenant a"})
    a.post("/v1/session/mine/entities", json={"key": "K", "kind": "constant", "value": "1"})
    missing = b.get("/v1/metrics/never-existed").json()
    for method, path, body in [("GET", "/v1/metrics/mine", None), ("GET", "/v1/state/context?session_id=mine", None),
                               ("POST", "/v1/run", {"session_id": "mine", "message": "secret"}),
                               ("POST", "/v1/store", {"session_id": "mine", "response": "x"}),
                               ("GET", "/v1/session/mine/export", None), ("GET", "/v1/session/mine/entities", None),
                               ("DELETE", "/v1/session/mine/entities/K", None), ("DELETE", "/v1/session/mine", None),
                               ("POST", "/v1/session/mine/import", {"state_dict": {}}),
                               ("PUT", "/v1/session/mine/isolation", {"level": "OPEN"}),
                               ("POST", "/v1/session/mine/trigger", {"keyword": "x"})]:
        r = b.request(method, path, json=body)
        assert (r.status_code, r.json()) == (404, missing), (method, path)
    assert a.get("/v1/metrics/mine").json()["interaction_count"] == 1


@pytest.fixture(scope="module")
def semvecctl() -> Path:
    """semvecctl from the real PyPI package, in an environment of its own (tests/venvs.py; skips only when
    pip cannot reach the registry)."""
    return Path(python_with(f"semvec=={SEMVEC_VERSION}")).parent / "semvecctl"


def test_semvecctl_status_and_metrics(semvecctl, start_server):
    s = start_server(admin_key=ADMIN_KEY, semvec_metrics_user="ops", semvec_metrics_password="s3cret")
    httpx.post(s.url + "/v1/session/create", json={"session_id": "cli"}, headers={"X-API-Key": ADMIN_KEY})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMVEC_")}

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(semvecctl), "--url", s.url, *args], capture_output=True, text=True, env=env, timeout=60)

    out = ctl("--token", ADMIN_KEY, "status")
    assert out.returncode == 0, out.stderr
    assert "semvec server: OK" in out.stdout and "active_sessions: 1" in out.stdout and "version: 1.0.0" in out.stdout
    out = ctl("--json", "status")
    assert out.returncode == 0 and '"status": "ok"' in out.stdout
    out = ctl("metrics", "--metrics-user", "ops", "--metrics-password", "s3cret")
    assert out.returncode == 0, out.stderr
    assert "semvec_active_sessions" in out.stdout and "1.0" in out.stdout
    assert 'semvec_requests_total{method="POST",endpoint="/v1/session/create",status="200"}' in out.stdout
    out = ctl("metrics", "--metrics-user", "ops", "--metrics-password", "wrong")
    assert out.returncode == 1 and "unauthorized" in out.stderr
    out = ctl("--token", ADMIN_KEY, "memory", "list", "alice")
    assert out.returncode == 1 and "compliance endpoints not found (404)" in out.stderr
