"""Crash loop: concurrent writers on every surface, `kill -9` at a random moment, restart, check.

After each restart every acknowledged write is there (its value or a later one; a counter is at least its
acknowledged increments and at most its attempted ones; an acknowledged delete stays deleted; a transaction's
keys agree), and the tenant change log holds each acknowledged write exactly once under gap-free revisions.
A write that failed with a transport error has an unknown outcome: it may be there, at most once.
"""

from __future__ import annotations

import collections
import json
import random
import threading
from dataclasses import dataclass, field

import httpx
import pytest

from rel_support import auth_headers, client, read_log, record, size, start_server
from rel_surfaces import CRASH_WRITES, MISSING, SURFACES, Refused

CYCLES = size(5, 40)
WRITERS_PER_KIND = size(1, 2)
ACKS_BEFORE_KILL = size(40, 150)  # acknowledged writes in a cycle before the random kill moment


@dataclass
class Slot:
    """One writer's key and what became of its writes; a writer sends one write at a time."""
    surface: str
    kind: str
    key: str
    attempted: int = 0  # writes sent (n of the last one)
    acked: int = 0      # highest n acknowledged (for incr: how many were acknowledged)
    changes: list = field(default_factory=list)  # (type, namespace, key, value, revision|None) per acknowledged change
    deleted: set = field(default_factory=set)    # delete kind: n whose delete was acknowledged
    put_only: set = field(default_factory=set)   # delete kind: n whose put was acknowledged, its delete not

    def write(self, c: httpx.Client) -> None:
        s = SURFACES[self.surface]
        n = self.attempted = self.attempted + 1
        value = {"slot": self.key, "n": n}
        if self.kind == "put":
            a = s.put(c, self.key, value)
            self.changes.append(("put", *s.log_key(self.key), value, a.revision))
        elif self.kind == "txn":
            a = s.txn(c, self.key, value)
            self.changes += [("put", ns, self.key, value, a.revision) for ns in (s.namespace, "rel-txn")]
        elif self.kind == "incr":
            a = s.incr(c, self.key)
            self.changes.append(("put", *s.log_key(self.key), a.value, a.revision))
        elif self.kind == "delete":
            key = f"{self.key}.{n}"
            a = s.put(c, key, value)
            self.changes.append(("put", *s.log_key(key), value, a.revision))
            self.put_only.add(n)
            d = s.delete(c, key)
            self.changes.append(("delete", *s.log_key(key), None, d.revision))
            self.put_only.discard(n)
            self.deleted.add(n)
        self.acked = self.acked + 1 if self.kind == "incr" else n

    def check_state(self, c: httpx.Client) -> int:
        """Assert what the server holds now; returns the number of acknowledged writes it covered."""
        s = SURFACES[self.surface]
        if self.kind == "incr":
            v = s.get(c, self.key)
            v = 0 if v is MISSING else v
            assert self.acked <= v <= self.attempted, f"{self}: counter {v}"
            return self.acked
        if self.kind == "delete":
            for n in self.deleted:
                assert s.get(c, f"{self.key}.{n}") is MISSING, f"{self}: acknowledged delete of .{n} undone"
            for n in self.put_only:
                assert s.get(c, f"{self.key}.{n}") in (MISSING, {"slot": self.key, "n": n}), f"{self}: .{n}"
            return 2 * len(self.deleted) + len(self.put_only)
        values = [s.get(c, self.key)] if self.kind == "put" else [s.get(c, self.key, ns) for ns in (s.namespace, "rel-txn")]
        assert all(v == values[0] for v in values), f"{self}: transaction half applied: {values}"
        v = values[0]
        if self.acked:
            assert v is not MISSING and self.acked <= v["n"] <= self.attempted, f"{self}: holds {v}"
        else:
            assert v is MISSING or v["n"] <= self.attempted, f"{self}: holds {v}"
        return self.acked


def check_log(c: httpx.Client, slots: list[Slot]) -> int:
    """The tenant change log: contiguous revisions, each acknowledged change exactly once at its revision."""
    log = read_log(c)
    current = c.get("/v1/revision").json()["revision"]
    revisions = [cs["revision"] for cs in log]
    # statevec's namespace may be hidden from a non-admin key once auth lands; in open mode it is all there
    hidden = set() if not auth_headers() else {"statevec"}
    if not hidden:
        assert revisions == list(range(1, current + 1)), f"revisions not gap-free 1..{current}: {_gaps(revisions)}"
    else:
        assert revisions == sorted(set(revisions)), "revisions repeat or go backwards"
    seen: collections.Counter = collections.Counter()
    at: dict[int, set] = collections.defaultdict(set)
    for cs in log:
        for ch in cs["changes"]:
            item = (ch["type"], ch["namespace"], ch["key"], json.dumps(ch["value"], sort_keys=True))
            seen[item] += 1
            at[cs["revision"]].add(item)
    dupes = [k for k, v in seen.items() if v > 1 and k[0] == "put"]
    assert not dupes, f"{len(dupes)} writes logged more than once, e.g. {dupes[:3]}"
    checked = 0
    for slot in slots:
        for typ, ns, key, value, rev in slot.changes:
            if ns in hidden:
                continue
            item = (typ, ns, key, json.dumps(value, sort_keys=True))
            assert seen[item] == 1, f"acknowledged {item} logged {seen[item]} times"
            assert rev is None or item in at[rev], f"acknowledged {item} not at its revision {rev}"
            checked += 1
    return checked


def _gaps(revisions: list[int]) -> str:
    missing = sorted(set(range(1, max(revisions, default=0) + 1)) - set(revisions))
    return f"{len(revisions)} revisions, missing {missing[:10]}, repeated {len(revisions) - len(set(revisions))}"


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_crash_loop(tmp_path):
    server = start_server(tmp_path / "data")
    slots = [Slot(surface, kind, f"{kind}-{surface}-{i}")
             for surface, kind in CRASH_WRITES for i in range(WRITERS_PER_KIND)]
    refused: list[Refused] = []
    rng = random.Random()
    try:
        for cycle in range(CYCLES):
            enough = threading.Event()
            count = [0]
            lock = threading.Lock()

            def writer(slot: Slot) -> None:
                with client(server.url, timeout=5) as c:
                    while True:
                        try:
                            slot.write(c)
                        except httpx.TransportError:
                            return  # the server is gone; this write's outcome is unknown
                        except Refused as exc:
                            refused.append(exc)
                            return
                        with lock:
                            count[0] += 1
                            if count[0] >= ACKS_BEFORE_KILL:
                                enough.set()

            threads = [threading.Thread(target=writer, args=(s,), daemon=True) for s in slots]
            for t in threads:
                t.start()
            assert enough.wait(30) or refused, f"cycle {cycle}: writers stalled at {count[0]} acks"
            threading.Event().wait(rng.uniform(0, 0.25))  # the random kill moment
            server.kill()
            for t in threads:
                t.join(15)
            assert not any(t.is_alive() for t in threads), "a writer hung after the kill"
            assert not refused, f"writes refused under load: {refused[:3]}"
            server.start()
            with client(server.url) as c:
                acked = sum(slot.check_state(c) for slot in slots)
                logged = check_log(c, slots)
            record("crash: kill -9 cycles")
        record("crash: acknowledged writes checked", acked)
        record("crash: logged changes checked (last cycle)", logged)
    finally:
        server.kill()
