"""The AgentState surface against the real server process over real HTTP: the watch stream replays a
backlog of thousands in order and then goes live with no gap, duplicate or stall while writers run;
exactly one of 20 concurrent acquisitions wins; 20 concurrent idempotent writes execute once; a
restart keeps states, events, leases and their fencing tokens."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

V1 = "/api/v1"
BACKLOG = 3000


@pytest.fixture
def server(make_server):
    """The default limit (1000 requests per minute and credential) would stop these tests' writers."""
    return make_server(agentstate_rate_limit="1000000").start()


def frames(lines):
    """(id, event, data) of each SSE frame from an iterator of lines."""
    event_id = event = None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event_id, event, json.loads(line[6:])
            event_id = event = None


async def _write_many(url: str, prefix: str, n: int, concurrency: int = 16) -> list[int]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        async def one(i: int) -> int:
            async with sem:
                r = await c.put(f"{V1}/states/{prefix}{i % 50}", json={"agent_id": "w", "data": {"i": i}})
                assert r.status_code == 200, r.text
                return r.json()["latest_sequence"]
        return await asyncio.gather(*(one(i) for i in range(n)))


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_watch_replays_a_backlog_then_goes_live(server):
    backlog = asyncio.run(_write_many(server.url, "b", BACKLOG))
    received: list[tuple[int, str, dict]] = []
    live_written: list[int] = []
    caught_up = threading.Event()

    def writer():
        caught_up.wait(30)
        live_written.extend(asyncio.run(_write_many(server.url, "l", 300, 8)))

    t = threading.Thread(target=writer)
    t.start()
    with httpx.stream("GET", server.url + f"{V1}/states/watch", timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for event_id, event, data in frames(r.iter_lines()):
            if event == "ping":
                continue
            received.append((event_id, event, data))
            if len(received) == BACKLOG:
                caught_up.set()
            if len(received) == BACKLOG + 300:
                break
    t.join(30)
    ids = [e[0] for e in received]
    assert ids == sorted(set(ids)), "out of order or duplicated"
    assert ids[:BACKLOG] == sorted(backlog) and ids[BACKLOG:] == sorted(live_written)
    assert all(event == "state.upsert" and data["sequence"] == i for i, event, data in received)
    # resuming with Last-Event-ID gives exactly what came after
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get(f"{V1}/states/watch", params={"once": "true"}, headers={"Last-Event-ID": str(ids[-11])})
        assert [f[0] for f in frames(r.text.splitlines())] == ids[-10:]
        r = c.get(f"{V1}/states/watch", params={"once": "true"})
        assert len(list(frames(r.text.splitlines()))) == 1000  # once=true: at most 1000 backlog events


def test_one_of_twenty_concurrent_acquisitions_wins(server):
    async def race():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            return await asyncio.gather(*(c.post(f"{V1}/states/job/lease", json={"holder": f"w{i}"})
                                          for i in range(20)))
    answers = asyncio.run(race())
    assert sorted(r.status_code for r in answers) == [201] + [409] * 19
    winner = next(r.json() for r in answers if r.status_code == 201)
    assert winner["fencing_token"] == 1
    assert all(r.json()["error"]["code"] == "LEASE_CONFLICT" for r in answers if r.status_code == 409)
    with httpx.Client(base_url=server.url) as c:
        r = c.put(f"{V1}/states/job", json={"agent_id": "x", "data": {}})
        assert r.status_code == 409 and r.json()["error"]["code"] == "LEASE_REQUIRED"
        assert c.delete(f"{V1}/leases/{winner['id']}").status_code == 204
        # the lease moved on: the old holder's writes are refused, forever
        second = c.post(f"{V1}/states/job/lease", json={"holder": "w2"}).json()
        assert second["fencing_token"] == 2
        r = c.put(f"{V1}/states/job", json={"agent_id": "x", "data": {}, "lease_id": winner["id"]})
        assert r.status_code == 409 and r.json()["error"]["code"] == "LEASE_CONFLICT"


def test_twenty_concurrent_idempotent_writes_execute_once(server):
    async def race():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            return await asyncio.gather(*(c.put(f"{V1}/states/idem", json={"agent_id": "w", "data": {"n": 1}},
                                                headers={"Idempotency-Key": "once"}) for _ in range(20)))
    answers = asyncio.run(race())
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert sum(r.headers.get("idempotency-replayed") == "true" for r in answers) == 19
    with httpx.Client(base_url=server.url) as c:
        events = c.get(f"{V1}/states/idem/events").json()["data"]
        assert len(events) == 1 and events[0]["idempotency_key"] == "once"


def test_each_concurrent_put_answers_its_own_version(server):
    async def race():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            return await asyncio.gather(*(c.put(f"{V1}/states/hot", json={"agent_id": f"w{i}", "data": {"i": i}})
                                          for i in range(30)))
    answers = [r.json() for r in asyncio.run(race())]
    assert all(a["data"] == {"i": int(a["agent_id"][1:])} for a in answers)  # D34
    assert len({a["latest_sequence"] for a in answers}) == 30
    with httpx.Client(base_url=server.url) as c:
        events = c.get(f"{V1}/states/hot/events", params={"limit": 100}).json()["data"]
        assert sorted(a["latest_sequence"] for a in answers) == [e["sequence"] for e in events]


def test_restart_keeps_states_events_and_fencing(server):
    with httpx.Client(base_url=server.url) as c:
        c.put(f"{V1}/states/r", json={"agent_id": "w", "data": {"v": 1}})
        lease = c.post(f"{V1}/states/r/lease", json={"holder": "w"}).json()
        c.delete(f"{V1}/leases/{lease['id']}")
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url) as c:
        assert c.get(f"{V1}/states/r").json()["data"] == {"v": 1}
        assert len(c.get(f"{V1}/states/r/events").json()["data"]) == 1
        assert c.post(f"{V1}/states/r/lease", json={"holder": "w"}).json()["fencing_token"] == 2


def test_our_client_sees_the_same_states_and_leases(server):
    """One engine under both surfaces: what AgentState writes, the Stigmer SDK reads, watches and leases."""
    from stigmer.client import Client

    with httpx.Client(base_url=server.url) as h, Client(server.url) as c:
        written = h.put(f"{V1}/states/agent%2F7", json={"agent_id": "w", "data": {"step": 2}}).json()
        entry = c.get("_states", "agent/7")
        assert entry.value["data"] == {"step": 2} and entry.mod_revision == written["latest_sequence"]
        lease = h.post(f"{V1}/states/agent%2F7/lease", json={"holder": "w", "ttl_ms": 30000}).json()
        native = c.get_lease("_states/agent/7")
        assert (native.lease_id, native.fencing_token, native.holder) == (lease["id"], lease["fencing_token"], "w")
        seen = []
        for change_set in c.watch(namespace="_states", from_revision=written["latest_sequence"]):
            seen += [(ch.key, ch.type) for ch in change_set.changes]
            if len(seen) == 1:
                break
        assert seen == [("agent/7", "put")]
        c.release_lease("_states/agent/7", lease.get("id"))
        r = h.put(f"{V1}/states/agent%2F7", json={"agent_id": "w", "data": {}, "lease_id": lease["id"]})
        assert r.status_code == 200  # released, not superseded: the newest lease's id still passes (§6.2)


def test_an_idle_watch_sends_heartbeats(make_server):
    srv = make_server(sse_keepalive_seconds="0.2").start()
    with httpx.stream("GET", srv.url + f"{V1}/states/watch", timeout=10) as r:
        assert r.status_code == 200  # the headers came before any event: there is none
        lines = r.iter_lines()
        assert next(lines) == "event: ping" and next(lines) == "data: {}"
