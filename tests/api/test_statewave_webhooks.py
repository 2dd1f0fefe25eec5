"""The Statewave surface's webhook events (specs/statewave.md §6.10, §5.11, Decisions 3, 7–9, 47) over real
HTTP to a receiver written here: which changes fire which event with which data, signed, carrying the
Statewave tenant, and the subject delete that erases the subject's events and then reports itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading

import pytest

from local_http import JSONHandler, LocalServer, running
from statewave_support import episode

SECRET = "whsec-statewave-0001"
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


class Receiver(LocalServer):
    def __init__(self):
        super().__init__(_Handler)
        self.got: list[tuple[dict, bytes]] = []
        self.cond = threading.Condition()

    def wait_for(self, n: int) -> list[dict]:
        """The first `n` deliveries' bodies, once they arrived (each checked: id header, signature)."""
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.got) >= n, 30), self.got
            got = list(self.got[:n])
        out = []
        for headers, raw in got:
            assert headers["X-Signature"] == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["X-Webhook-Id"] and headers["Content-Type"] == "application/json"
            body = json.loads(raw)
            assert OFFSET.match(body["timestamp"]) and set(body) == {"event", "timestamp", "data", "tenant_id"}
            out.append(body)
        return out


class _Handler(JSONHandler):
    server: Receiver

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["content-length"]))
        with self.server.cond:
            self.server.got.append((dict(self.headers), raw))
            self.server.cond.notify_all()
        self.reply(200, b"{}")


@pytest.fixture
def hooked(make_client):
    with running(Receiver()) as receiver:
        yield make_client(webhook_url=receiver.url + "/hook", webhook_secret=SECRET), receiver


def test_events_and_subject_delete(hooked):
    c, receiver = hooked
    a = {"X-Tenant-ID": "team-a"}
    e = c.post("/v1/episodes", json=episode("u1", "I work at Initech"), headers=a).json()
    [first] = receiver.wait_for(1)
    assert first == {"event": "episode.created", "timestamp": first["timestamp"], "tenant_id": "team-a",
                     "data": {"id": e["id"], "subject_id": "u1"}}
    c.post("/v1/episodes/batch", json={"episodes": [episode("u1"), episode("u2"), episode("u1")]}, headers=a)
    c.post("/v1/memories/compile", json={"subject_id": "u1"}, headers=a)
    c.post("/v1/memories/compile", json={"subject_id": "u1"}, headers=a)  # nothing to compile: no event
    c.post("/v1/episodes/batch", json={"episodes": [episode("u1", "")]}, headers=a)
    c.post("/v1/memories/compile", json={"subject_id": "u1"}, headers=a)  # a text-less episode: 0 memories, an event
    job = c.post("/v1/memories/compile", json={"subject_id": "u2", "async": True}).json()  # unscoped
    got = receiver.wait_for(6)
    assert sorted(((b["event"], b["data"], b["tenant_id"]) for b in got[1:]), key=repr) == sorted([
        ("episodes.batch_created", {"count": 3, "subject_ids": ["u1", "u2"]}, "team-a"),
        ("memories.compiled", {"subject_id": "u1", "memories_created": 4}, "team-a"),
        ("episodes.batch_created", {"count": 1, "subject_ids": ["u1"]}, "team-a"),
        ("memories.compiled", {"subject_id": "u1", "memories_created": 0}, "team-a"),
        ("memories.compiled", {"subject_id": "u2", "memories_created": 1}, None)], key=repr)  # delivered concurrently
    assert c.get(f"/v1/memories/compile/{job['job_id']}").json()["status"] == "completed"
    # another tenant's delete of u1 erases none of team-a's events
    d = c.delete("/v1/subjects/u1", headers={"X-Tenant-ID": "team-b"}).json()
    assert d["webhook_events_deleted"] == 0 and d["episodes_deleted"] == 0
    # u1's events: episode.created, two memories.compiled, and the batch that named only u1 (not the mixed one)
    d = c.delete("/v1/subjects/u1", headers=a).json()
    assert d == {"subject_id": "u1", "episodes_deleted": 4, "memories_deleted": 4, "resolutions_deleted": 0,
                 "compile_jobs_deleted": 0, "webhook_events_deleted": 4}
    last = sorted(receiver.wait_for(8)[6:], key=lambda b: b["tenant_id"])
    # team-b's delete reported itself too, and team-a's with the same six fields as the response
    assert [(b["event"], b["tenant_id"]) for b in last] == [("subject.deleted", "team-a"), ("subject.deleted", "team-b")]
    assert last[0]["data"] == d
    # unscoped delete of u2 takes its compile job and its events (the mixed batch names two subjects: kept)
    d = c.delete("/v1/subjects/u2").json()
    assert (d["compile_jobs_deleted"], d["webhook_events_deleted"], d["episodes_deleted"]) == (1, 1, 1)


def test_no_url_no_events(make_client):
    c = make_client()
    c.post("/v1/episodes", json=episode("u1", "I use vim"))
    c.post("/v1/memories/compile", json={"subject_id": "u1"})
    assert c.delete("/v1/subjects/u1").json()["webhook_events_deleted"] == 0
    stats = c.portal.call(c.app.state.services.webhooks.stats, "default")
    assert stats.total == 0
