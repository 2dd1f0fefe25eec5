"""Statewave webhooks end to end (specs/statewave.md §6.10, Decisions 6–10): real server processes send the
events of the Statewave routes to a real HTTP receiver written here, which checks every signature; a
failing receiver sees the retries and then the dead letter (the server's clock is moved, never waited for);
two replicas on one PostgreSQL database deliver every event exactly once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from local_http import JSONHandler, LocalServer, free_port, running
from pg_support import ON_POSTGRES, database_for, new_database, postgres_url
from support import until

SECRET = "whsec-statewave-e2e"
DEADLINE = 30.0
HERE = Path(__file__).resolve().parent
SRC = str(HERE.parents[1] / "src")
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


class Receiver(LocalServer):
    """Answers each POST with the next status of `script`, then 200; keeps (headers, raw body) of each and
    counts every X-Webhook-Id."""

    request_queue_size = 256

    def __init__(self, script=()):
        super().__init__(_Handler)
        self.script = list(script)
        self.got: list[tuple[dict, bytes]] = []
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def wait_for(self, n: int) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.got) >= n, DEADLINE), f"{len(self.got)} of {n} deliveries"

    def bodies(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for _, body in self.got]


class _Handler(JSONHandler):
    server: Receiver

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.server.lock:
            self.server.got.append((dict(self.headers), body))
            self.server.seen[self.headers["X-Webhook-Id"]] += 1
            status = self.server.script.pop(0) if self.server.script else 200
            self.server.lock.notify_all()
        self.reply(status, b'{"ok": false}' if status >= 300 else b"{}")


def verified(headers: dict, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Signature", ""), expected)



def stats(url: str) -> dict:
    return httpx.get(url + "/admin/webhooks/stats").json()


def event(url: str, event_id: str) -> dict:
    return httpx.get(f"{url}/admin/webhooks/{event_id}").json()


def test_the_statewave_routes_events_are_signed_and_delivered(start_server):
    with running(Receiver()) as receiver:
        s = start_server(webhook_url=receiver.url, webhook_secret=SECRET)
        acme = {"X-Tenant-ID": "acme"}
        with httpx.Client(base_url=s.url, headers=acme) as c:
            one = c.post("/v1/episodes", json={"subject_id": "u1", "source": "user", "type": "message", "session_id": "s1",
                                               "payload": {"messages": [{"role": "user", "content": "it is urgent"}]}})
            c.post("/v1/episodes/batch", json={"episodes": [
                {"subject_id": s_, "source": "chat", "type": "note", "payload": {"text": "I work at Initech"}}
                for s_ in ("u2", "u1", "u2")]})
            c.post("/v1/memories/compile", json={"subject_id": "u1"})
            for session in ("s1", "s2", "s3"):
                c.post("/v1/resolutions", json={"subject_id": "u1", "session_id": session})
            assert c.get("/v1/subjects/u1/health").json()["state"] == "watch"  # 100 − 45 − 10
            for session in ("s1", "s2", "s3"):
                c.post("/v1/resolutions", json={"subject_id": "u1", "session_id": session, "status": "resolved"})
            assert c.get("/v1/subjects/u1/health").json()["state"] == "healthy"
            receiver.wait_for(5)
            until(lambda: stats(s.url)["delivered"] == 5, "five events delivered")
            assert c.delete("/v1/subjects/u1").json()["webhook_events_deleted"] == 4  # the batch names two subjects
            receiver.wait_for(6)
    by_event = {b["event"]: b for b in receiver.bodies()}
    assert sorted(by_event) == ["episode.created", "episodes.batch_created", "memories.compiled",
                                "subject.deleted", "subject.health_degraded", "subject.health_improved"]
    for headers, body in receiver.got:
        assert verified(headers, body), headers
        assert headers["Content-Type"] == "application/json" and uuid.UUID(headers["X-Webhook-Id"]).version == 4
        b = json.loads(body)
        assert list(b) == ["event", "timestamp", "data", "tenant_id"] and b["tenant_id"] == "acme"
        assert OFFSET.match(b["timestamp"])
    assert by_event["episode.created"]["data"] == {"id": one.json()["id"], "subject_id": "u1"}
    assert by_event["episodes.batch_created"]["data"] == {"count": 3, "subject_ids": ["u2", "u1"]}
    assert by_event["memories.compiled"]["data"] == {"subject_id": "u1", "memories_created": 3}
    degraded = by_event["subject.health_degraded"]["data"]
    assert list(degraded) == ["subject_id", "previous_state", "current_state", "score", "factors", "generated_at"]
    assert (degraded["previous_state"], degraded["current_state"], degraded["score"]) == ("healthy", "watch", 45)
    assert degraded["factors"] == [{"signal": "unresolved_issues", "impact": -45, "detail": "3 open session(s)"},
                                   {"signal": "escalations", "impact": -10, "detail": "1 episode(s) with urgency markers"}]
    assert OFFSET.match(degraded["generated_at"])
    improved = by_event["subject.health_improved"]["data"]
    assert (improved["previous_state"], improved["current_state"]) == ("watch", "healthy")
    assert by_event["subject.deleted"]["data"] == {"subject_id": "u1", "episodes_deleted": 2, "memories_deleted": 3,
                                                   "resolutions_deleted": 3, "compile_jobs_deleted": 0,
                                                   "webhook_events_deleted": 4}
    deleted_id = next(h["X-Webhook-Id"] for h, b in receiver.got if json.loads(b)["event"] == "subject.deleted")
    e = until(lambda: (x := event(s.url, deleted_id))["status"] == "delivered" and x, "the delete's event settled")
    assert (e["attempts"], e["http_status"], e["last_error"], e["next_attempt_at"]) == (1, 200, None, None)
    assert OFFSET.match(e["delivered_at"]) and OFFSET.match(e["last_attempt_at"])


@contextlib.contextmanager
def shifted_server(tmp_path: Path, **settings):
    """The real app on uvicorn in its own process, whose clock SIGUSR1 moves an hour ahead."""
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": SRC, "STIGMER_LOG_LEVEL": "warning", "STIGMER_DATA_DIR": str(data),
           **{"STIGMER_" + k.upper(): str(v) for k, v in settings.items()}}
    if ON_POSTGRES:
        env["STIGMER_DATABASE_URL"] = database_for(str(data))
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, str(HERE / "shifted_clock_server.py"), str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        until(up, "the server to start")
        yield url, proc
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


def test_retries_then_the_dead_letter(tmp_path):
    script = [500, 200] + [503, 500, 502, 500, 500]  # the first event is delivered on its retry; the second never
    with running(Receiver(script)) as receiver, shifted_server(tmp_path, webhook_url=receiver.url,
                                                               webhook_secret=SECRET) as (url, proc):
        ids, sent = [], 0
        for n, attempts in ((1, 2), (2, 5)):
            httpx.post(url + "/v1/episodes", json={"subject_id": f"u{n}", "source": "chat", "type": "note",
                                                   "payload": {"text": "hello"}})
            for attempt in range(1, attempts + 1):
                sent += 1
                receiver.wait_for(sent)
                event_id = receiver.got[sent - 1][0]["X-Webhook-Id"]
                if attempt < attempts or n == 2:  # a failed attempt: recorded, then due after the backoff
                    e = until(lambda: (x := event(url, event_id))["attempts"] == attempt and x["last_error"] and x,
                              f"attempt {attempt} recorded")
                    assert e["http_status"] == script[sent - 1]
                    assert e["last_error"] == f"HTTP {e['http_status']}: " + '{"ok": false}'
                    if attempt < 5:
                        assert e["status"] == "pending" and e["next_attempt_at"] is not None
                        proc.send_signal(signal.SIGUSR1)  # an hour later: the next attempt is due
            ids.append(event_id)
        first = until(lambda: (x := event(url, ids[0]))["status"] == "delivered" and x, "the retry delivered")
        assert (first["attempts"], first["http_status"], first["last_error"]) == (2, 200, None)
        dead = event(url, ids[1])
        assert (dead["status"], dead["attempts"], dead["max_attempts"], dead["next_attempt_at"], dead["delivered_at"]) == (
            "dead_letter", 5, 5, None, None)
        assert stats(url) == {"pending": 0, "delivered": 1, "dead_letter": 1, "total": 2}
        proc.send_signal(signal.SIGUSR1)  # nothing sends a dead letter again
        httpx.post(url + "/v1/episodes", json={"subject_id": "u3", "source": "chat", "type": "note", "payload": {}})
        receiver.wait_for(8)
        assert len(receiver.got) == 8 and receiver.got[-1][0]["X-Webhook-Id"] not in ids
    assert [receiver.seen[i] for i in ids] == [2, 5]
    for i in ids:  # every attempt of one event sends the same bytes, signed
        sent = [(h, b) for h, b in receiver.got if h["X-Webhook-Id"] == i]
        assert len({b for _, b in sent}) == 1 and all(verified(h, b) for h, b in sent)


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
async def test_two_replicas_on_one_postgresql_deliver_every_event_once(tmp_path, make_server):
    postgres_url()
    url = new_database(f"stigmer_sw_hooks_{tmp_path.name}_{os.getpid()}".lower()[:60])
    with running(Receiver()) as receiver:
        replicas = [make_server(database_url=url, webhook_url=receiver.url, webhook_secret=SECRET) for _ in range(2)]
        for r in replicas:
            r.data_dir.mkdir()
            r.start()
        per_replica = 60

        async def write(base: str, tag: str) -> list[str]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                async def one(i: int) -> str:
                    r = await c.post("/v1/episodes", json={"subject_id": f"{tag}{i % 5}", "source": "chat",
                                                           "type": "note", "payload": {"text": str(i)}})
                    assert r.status_code == 201, r.text
                    return r.json()["id"]
                return list(await asyncio.gather(*(one(i) for i in range(per_replica))))

        written = await asyncio.gather(*(write(r.url, f"r{n}-") for n, r in enumerate(replicas)))
        total = 2 * per_replica
        receiver.wait_for(total)
        until(lambda: stats(replicas[0].url)["delivered"] == total, "every event settled")
        assert stats(replicas[1].url) == {"pending": 0, "delivered": total, "dead_letter": 0, "total": total}
    assert len(receiver.got) == total and set(receiver.seen.values()) == {1}  # exactly once, across replicas
    episode_ids = sorted(b["data"]["id"] for b in receiver.bodies())
    assert episode_ids == sorted(i for ids in written for i in ids)
    assert all(verified(h, b) for h, b in receiver.got)
