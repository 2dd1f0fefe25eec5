"""Watch: subscribers (SSE and long-poll, fast and slow) across `kill -9` restarts receive every revision of
their filter exactly once, in order, resuming with Last-Event-ID / index, and nothing that is not in the log.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from typing import Callable

import httpx
from httpx_sse import SSEError, connect_sse

from rel_support import client, read_log, record, size, start_server

WRITES = size(300, 3000)       # per writer
RESTARTS = size(2, 8)
WATCH_BUFFER = 8               # tiny server-side buffer: slow readers are switched to catching up from history
NS, WF, WKEY = "watch", "wwf", "k"


@dataclass(frozen=True)
class Watch:
    """One subscriber: the route and query it opens, how it resumes, which log changes it must see."""
    name: str
    mode: str                 # "sse" or "poll"
    path: str
    params: dict
    wants: Callable[[dict], bool]  # change (from the native log) -> bool
    slow: bool = False        # stops reading after its first event until the first phase of writes is done


WATCHES = [
    Watch("native SSE, namespace", "sse", "/v1/watch", {"namespace": NS, "from": 1}, lambda ch: ch["namespace"] == NS),
    Watch("native SSE, whole tenant", "sse", "/v1/watch", {"from": 1}, lambda ch: True),
    Watch("native SSE, slow reader", "sse", "/v1/watch", {"namespace": NS, "from": 1},
          lambda ch: ch["namespace"] == NS, slow=True),
    Watch("native long-poll, namespace", "poll", "/v1/watch", {"namespace": NS, "wait": 5},
          lambda ch: ch["namespace"] == NS),
    Watch("CntrlNode SSE, one key", "sse", f"/v1/state/{WF}/{WKEY}/stream", {"fromRevision": 0},
          lambda ch: ch["namespace"] == "cntrlnode" and ch["key"] == f"{WF}/{WKEY}"),
    Watch("CntrlNode SSE, one key, slow", "sse", f"/v1/state/{WF}/{WKEY}/stream", {"fromRevision": 0},
          lambda ch: ch["namespace"] == "cntrlnode" and ch["key"] == f"{WF}/{WKEY}", slow=True),
]


@dataclass
class Subscriber:
    watch: Watch
    got: list = field(default_factory=list)  # (revision, changes) as received
    errors: list = field(default_factory=list)
    reconnects: int = 0

    def last(self) -> int:
        return self.got[-1][0] if self.got else 0

    def take(self, revision: int, changes: list) -> None:
        self.got.append((revision, [(c["type"], c["key"], c.get("value")) for c in changes]))

    def run(self, url: str, up: threading.Event, target: list, slow_go: threading.Event) -> None:
        w = self.watch
        with client(url, timeout=httpx.Timeout(10, read=30)) as c:
            while not (target and self.last() >= target[0]):
                try:
                    if w.mode == "poll":
                        r = c.get(w.path, params={**w.params, "index": self.last()})
                        assert r.status_code == 200, (r.status_code, r.text)
                        for ev in r.json()["events"]:
                            self.take(ev["revision"], ev["changes"])
                        continue
                    headers = {"Last-Event-ID": str(self.last())} if self.got else {}
                    with connect_sse(c, "GET", w.path, params=w.params, headers=headers) as es:
                        assert es.response.status_code == 200, (es.response.status_code, es.response.read())
                        for ev in es.iter_sse():
                            if ev.event == "compacted":
                                raise AssertionError(f"{w.name}: compacted {ev.data}")
                            if not ev.data:
                                continue  # the opening frame and keep-alives
                            data = json.loads(ev.data)
                            if "changes" in data:
                                self.take(data["revision"], data["changes"])
                            else:  # CntrlNode: one change per event
                                self.take(data["revision"], [{"type": {"set": "put"}.get(data["type"], data["type"]),
                                                              "key": f"{data['workflowId']}/{data['key']}",
                                                              "value": data["value"]}])
                            if w.slow and not slow_go.is_set():
                                slow_go.wait(60)  # a slow consumer: the server must buffer or catch it up
                            if target and self.last() >= target[0]:
                                return
                except (httpx.TransportError, SSEError):
                    self.reconnects += 1
                    up.wait(30)  # the server is down: come back when it is up again
                except AssertionError as exc:
                    self.errors.append(str(exc))
                    return


def test_subscribers_see_every_revision_once_in_order(tmp_path):
    server = start_server(tmp_path / "data", watch_buffer=WATCH_BUFFER)
    up, slow_go = threading.Event(), threading.Event()
    up.set()
    target: list[int] = []  # the final revision, once the writers are done
    acks = [0]
    lock = threading.Lock()
    progress = threading.Condition(lock)

    def ack() -> None:
        with progress:
            acks[0] += 1
            progress.notify_all()

    def native_writer() -> None:
        with client(server.url, timeout=5) as c:
            for n in range(WRITES):
                key = f"k{n % 7}"
                try:
                    if n % 10 == 9:
                        r = c.post("/v1/txn", json={"ops": [{"op": "put", "namespace": NS, "key": key, "value": n},
                                                            {"op": "put", "namespace": "other", "key": key, "value": n}]})
                    elif n % 5 == 3:
                        r = c.patch(f"/v1/kv/{NS}/counter", json={"op": "incr"})
                    elif n % 7 == 6:
                        r = c.delete(f"/v1/kv/{NS}/{key}")
                    else:
                        r = c.put(f"/v1/kv/{NS}/{key}", json={"n": n})
                    assert r.status_code < 500, (r.status_code, r.text)
                    ack()
                except httpx.TransportError:
                    up.wait(30)

    def cntrlnode_writer() -> None:
        with client(server.url, timeout=5) as c:
            for n in range(WRITES):
                try:
                    if n % 9 == 8:
                        r = c.delete(f"/v1/state/{WF}/{WKEY}")
                    else:
                        r = c.post(f"/v1/state/{WF}/{WKEY if n % 3 else 'noise'}", json={"value": n})
                    assert r.status_code < 500, (r.status_code, r.text)
                    ack()
                except httpx.TransportError:
                    up.wait(30)

    subs = [Subscriber(w) for w in WATCHES]
    sub_threads = [threading.Thread(target=s.run, args=(server.url, up, target, slow_go), daemon=True) for s in subs]
    writers = [threading.Thread(target=f, daemon=True) for f in (native_writer, cntrlnode_writer)]
    try:
        for t in sub_threads + writers:
            t.start()
        with progress:  # first phase: enough writes that the slow readers' buffers overflow
            assert progress.wait_for(lambda: acks[0] >= 10 * WATCH_BUFFER, 60)
        slow_go.set()
        for i in range(RESTARTS):
            with progress:
                goal = acks[0] + 2 * WRITES // (RESTARTS + 1)
                if not progress.wait_for(lambda: acks[0] >= goal, 60):
                    break
            threading.Event().wait(random.uniform(0, 0.2))  # the random kill moment
            up.clear()
            server.kill()
            server.start()
            up.set()
            record("watch: kill -9 restarts")
        for t in writers:
            t.join(120)
        with client(server.url) as c:
            target.append(c.get("/v1/revision").json()["revision"])
            c.put(f"/v1/kv/{NS}/done", json=True)  # wakes every native subscriber past the target
            c.post(f"/v1/state/{WF}/{WKEY}", json={"value": "done"})
            log = read_log(c)
        for t in sub_threads:
            t.join(60)
        assert not any(t.is_alive() for t in sub_threads), [s.watch.name for s, t in zip(subs, sub_threads) if t.is_alive()]
        for s in subs:
            assert not s.errors, (s.watch.name, s.errors)
            expected = []
            for cs in log:
                changes = [ch for ch in cs["changes"] if s.watch.wants(ch)]
                if changes and cs["revision"] <= target[0]:
                    expected.append((cs["revision"], [(ch["type"], ch["key"], ch["value"]) for ch in changes]))
            got = [g for g in s.got if g[0] <= target[0]]
            revs = [r for r, _ in got]
            assert revs == sorted(set(revs)), f"{s.watch.name}: out of order or repeated revisions"
            missing = sorted({r for r, _ in expected} - set(revs))
            extra = sorted(set(revs) - {r for r, _ in expected})
            assert not missing and not extra, f"{s.watch.name}: missing {missing[:10]}, not in the log {extra[:10]}"
            assert got == expected, f"{s.watch.name}: changes differ from the log"
            record("watch: revisions delivered and checked", len(got))
            record("watch: subscriber reconnects", s.reconnects)
        record("watch: subscribers", len(subs))
    finally:
        up.set()
        slow_go.set()
        target.append(0)
        server.kill()
