"""The real `cntrlnode` SDK (PyPI cntrlnode-sdk 0.1.0a1) against the real server process."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from cntrlnode import CntrlNodeClient
from support import ADMIN_KEY
from cntrlnode.errors import CntrlNodeError
from server_process import ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("cn") / "data", sse_keepalive_seconds=0.5).start()
    yield s
    s.kill()


def host(s: ServerProcess) -> str:
    return f"127.0.0.1:{s.port}"


def test_set_get_list_delete(srv):
    async def run():
        async with CntrlNodeClient(host=host(srv)) as c:
            assert await c.state.set("wf-1", "status", {"step": "researching"}) == 1
            assert await c.state.set("wf-1", "status", {"step": "writing"}) == 2
            assert await c.state.get("wf-1", "status") == ({"step": "writing"}, 2)
            assert await c.state.get("wf-1", "missing") is None
            await c.state.set("wf-1", "a key", [1, 2])
            keys = await c.state.list("wf-1")
            assert [k.key for k in keys] == ["a key", "status"]
            assert keys[1].version == 2 and keys[1].expires_at is None and keys[1].created_at.endswith("Z")
            await c.state.delete("wf-1", "status")
            assert await c.state.get("wf-1", "status") is None
            with pytest.raises(CntrlNodeError) as e:
                await c.state.delete("wf-1", "status")
            assert (e.value.code, e.value.status_code) == ("NOT_FOUND", 404)
            assert await c.state.set("wf-1", "status", None) == 1
            assert await c.state.get("wf-1", "status") == (None, 1)
    asyncio.run(run())


def test_optimistic_locking(srv):
    async def run():
        async with CntrlNodeClient(host=host(srv)) as c:
            assert await c.state.set_with_version("wf-lock", "counter", 0, 0) == 1
            value, version = await c.state.get("wf-lock", "counter")
            assert await c.state.set_with_version("wf-lock", "counter", value + 1, version) == 2
            with pytest.raises(CntrlNodeError) as e:
                await c.state.set_with_version("wf-lock", "counter", value + 1, version)
            assert (e.value.code, e.value.status_code) == ("VERSION_CONFLICT", 409)
            results = await asyncio.gather(*[c.state.set_with_version("wf-lock", "counter", i, 2) for i in range(10)],
                                           return_exceptions=True)
            assert sum(1 for r in results if r == 3) == 1
            assert all(isinstance(r, CntrlNodeError) and r.code == "VERSION_CONFLICT" for r in results if r != 3)
    asyncio.run(run())


def test_ttl_expiry_and_subscribe_events(srv):
    async def run():
        async with CntrlNodeClient(host=host(srv)) as c:
            await c.state.set("wf-sub", "k", "v0")
            events = []

            async def follow():
                async for ev in c.state.subscribe("wf-sub", "k"):
                    events.append(ev)
                    if len(events) == 4:
                        return

            task = asyncio.create_task(follow())
            await asyncio.sleep(0.3)
            await c.state.set("wf-sub", "k", {"n": 1})
            await c.state.set_with_version("wf-sub", "k", {"n": 2}, 2)
            await c.state.delete("wf-sub", "k")
            await c.state.set("wf-sub", "k", "short", ttl=1)
            await c.state.set("wf-other", "k", "noise")
            await asyncio.wait_for(task, 10)
            assert [(e.value, e.version, e.old_value) for e in events] == [
                ({"n": 1}, 2, "v0"), ({"n": 2}, 3, {"n": 1}), (None, 0, {"n": 2}), ("short", 1, None)]
            assert all(e.workflow_id == "wf-sub" and e.key == "k" for e in events)
            await asyncio.sleep(1.2)
            assert await c.state.get("wf-sub", "k") is None
            assert [k.key for k in await c.state.list("wf-sub")] == []
    asyncio.run(run())


def test_raw_stream_frames_expire_and_resume(srv):
    base = srv.url + "/v1/state/wf-raw/k"
    first = httpx.post(base, json={"value": 1, "ttl": 1}).json()
    with httpx.stream("GET", base + "/stream", params={"fromRevision": first["revision"] - 1}, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
        lines = r.iter_lines()
        assert next(lines) == "retry: 3000"
        assert next(lines) == f"id: {first['revision'] - 1}"
        assert next(lines) == ""
        frames, keepalive = [], False
        for line in lines:
            if line == ": keep-alive":
                keepalive = True
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
            if len(frames) == 2 and keepalive:
                break
    assert [f["type"] for f in frames] == ["set", "expire"]
    assert frames[0] == {"workflowId": "wf-raw", "key": "k", "type": "set", "value": 1, "newValue": 1,
                         "oldValue": None, "version": 1, "revision": first["revision"]}
    assert frames[1]["value"] is None and frames[1]["newValue"] is None and frames[1]["oldValue"] == 1
    assert frames[1]["version"] == 0 and frames[1]["revision"] > first["revision"]


def test_auth_with_sdk_and_query_key_on_stream(tmp_path):
    s = ServerProcess(tmp_path / "data", admin_key=ADMIN_KEY).start()
    try:
        created = httpx.post(s.url + "/v1/admin/keys", json={"tenant": "team", "scopes": ["read", "write", "watch"]},
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        key = created.json()["secret"]

        async def run():
            async with CntrlNodeClient(host=host(s), api_key=key) as c:
                assert await c.state.set("wf", "k", 1) == 1
            async with CntrlNodeClient(host=host(s), api_key="wrong") as c:
                with pytest.raises(CntrlNodeError) as e:
                    await c.state.get("wf", "k")
                assert (e.value.code, e.value.status_code) == ("UNAUTHORIZED", 401)
        asyncio.run(run())
        with httpx.stream("GET", s.url + f"/v1/state/wf/k/stream?apiKey={key}", timeout=5) as r:
            assert r.status_code == 200
            assert next(r.iter_lines()) == "retry: 3000"
        assert httpx.get(s.url + "/health").json() == {"status": "ok"}
        assert httpx.get(s.url + "/v1/state/wf/k", headers={"Authorization": f"Bearer {key}"}).json()["value"] == 1
        # the same data through the native API, with the same key (tenant "team")
        assert httpx.get(s.url + "/v1/kv/cntrlnode/wf/k", headers={"Authorization": f"Bearer {key}"}).json()["value"] == 1
        # the admin key is of tenant "default": it does not see team's data
        assert httpx.get(s.url + "/v1/state/wf/k", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404
    finally:
        s.kill()
