"""Linearizability: concurrent histories of get / put / compare-and-set / incr / delete on a few keys, checked
against the sequential model by rel_wgl. The checker is shown to reject what it must: hand-made histories,
a real history mutated with a stale read, and a small in-test server whose reads are stale.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rel_support import client, record, size, start_server
from rel_wgl import INF, Op, check, check_key

HISTORIES = size(4, 30)
CLIENTS = size(8, 10)
OPS_PER_CLIENT = size(25, 80)
KEYS = ("a", "b", "c")
NS = "lin"
SERVER_ERRORS: list[str] = []  # 5xx answers seen while recording


# --- the recorder ---------------------------------------------------------------------------------------------
def one_op(c: httpx.Client, cid: int, seq: int, key: str, rng: random.Random, seen: dict, txn: bool) -> Op:
    """Choose, send and time one operation; a transport error or a 5xx leaves its outcome unknown."""
    url = f"/v1/kv/{NS}/{key}"
    kind = rng.choices(["get", "put", "cas", "incr", "delete"], [30, 25, 20, 15, 10])[0]
    value = cid * 100_000 + seq  # unique per write
    expected = seen.get(key, 0) if rng.random() < 0.8 else rng.randint(0, 3)
    arg = {"put": value, "cas": (expected, value), "incr": 1}.get(kind)
    op = Op(cid, key, kind, arg, time.monotonic())
    try:
        if kind == "get":
            r = c.get(url)
        elif kind == "put":
            r = c.put(url, json=value)
        elif kind == "cas" and txn and rng.random() < 0.5:
            r = c.post("/v1/txn", json={"compare": [{"namespace": NS, "key": key, "version": expected}],
                                        "ops": [{"op": "put", "namespace": NS, "key": key, "value": value}]})
        elif kind == "cas":
            r = c.put(url, json=value, headers={"If-Match": f'"{expected}"'})
        elif kind == "incr":
            r = c.patch(url, json={"op": "incr", "amount": 1})
        else:
            r = c.delete(url)
    except httpx.TransportError:
        return op
    t = time.monotonic()
    if r.status_code >= 500:
        SERVER_ERRORS.append(f"{kind} {url}: {r.status_code} {r.text[:200]}")
        return op  # outcome unknown (and a bug: the test fails on it)
    body = r.json() if r.content else {}
    if "results" in body:  # a txn compare-and-set
        body = body["results"][0]
    if r.status_code == 404:
        out = ("absent",)
    elif r.status_code == 409:
        out = ("conflict", body["error"].get("details", {}).get("current_version"))
    elif kind in ("put", "cas", "delete"):
        out = ("ok", body["version"])
    else:
        out = ("ok", body["value"], body["version"])
    if r.status_code >= 400 and out[0] == "ok":
        raise AssertionError(f"{kind} {key}: unexpected {r.status_code} {r.text}")
    if out[0] == "ok":
        seen[key] = out[-1] if kind != "delete" else 0
    op.ret, op.out = t, out
    return op


def record_history(url: str, seed: int, txn: bool = True, server=None) -> list[Op]:
    """CLIENTS threads, OPS_PER_CLIENT each, on KEYS; with `server`, it is killed (-9) and restarted once midway."""
    history: list[Op] = []
    lock = threading.Lock()
    up = threading.Event()
    up.set()
    half = threading.Barrier(CLIENTS + 1) if server else None

    def run(cid: int) -> None:
        rng = random.Random(seed * 1000 + cid)
        seen: dict[str, int] = {}
        with client(url, timeout=5) as c:
            for seq in range(OPS_PER_CLIENT):
                if half and seq == OPS_PER_CLIENT // 2:
                    half.wait(30)
                op = one_op(c, cid, seq, rng.choice(KEYS), rng, seen, txn)
                with lock:
                    history.append(op)
                if op.out is None:
                    up.wait(30)  # the server is being restarted
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    if server:
        half.wait(30)  # every client is half way: kill while the second half runs
        threading.Event().wait(random.uniform(0, 0.1))
        up.clear()
        server.kill()
        server.start()
        up.set()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return history


def check_and_count(history: list[Op]) -> dict:
    t0 = time.monotonic()
    result = check(history)
    record("linearizability: histories checked")
    record("linearizability: operations checked", len(history))
    record("linearizability: unknown-outcome operations", sum(op.out is None for op in history))
    record("linearizability: checker ms", int((time.monotonic() - t0) * 1000))
    return result


# --- against the real server -----------------------------------------------------------------------------------
@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_real_server_histories_are_linearizable(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        for h in range(HISTORIES):
            kill = h % 2 == 1  # every other history spans a kill -9 and restart
            history = record_history(server.url, seed=h, server=server if kill else None)
            for op in history:
                op.key = f"{h}/{op.key}"  # each history starts from a fresh key
            with client(server.url) as c:  # keys left by this history are removed so the next starts absent
                for key in KEYS:
                    c.delete(f"/v1/kv/{NS}/{key}")
            result = check_and_count(history)
            bad = [k for k, ok in result.items() if ok is not True]
            assert not bad, f"history {h}: not linearizable (or undecided) on {bad}: " + _show(history, bad[0])
        assert not SERVER_ERRORS, SERVER_ERRORS[:5]
    finally:
        server.kill()


def _show(history: list[Op], key: str) -> str:
    ops = sorted((op for op in history if op.key == key), key=lambda o: o.call)
    t0 = ops[0].call
    return "\n" + "\n".join(f"  c{o.client} {o.kind}({o.arg}) [{o.call - t0:.4f}, {o.ret - t0:.4f}] -> {o.out}"
                            for o in ops[:80])


def test_mutated_real_history_is_rejected(tmp_path):
    """A real history plus one read, after everything, returning an older state than the final read saw."""
    server = start_server(tmp_path / "data")
    try:
        history = record_history(server.url, seed=99)
        with client(server.url) as c:
            end = time.monotonic()
            for key in KEYS:
                r = c.get(f"/v1/kv/{NS}/{key}")
                out = ("absent",) if r.status_code == 404 else ("ok", r.json()["value"], r.json()["version"])
                history.append(Op(0, key, "get", None, end, end + 1, out))
    finally:
        server.kill()
    assert all(check(history).values()), "the unmutated history must pass"
    mutated = 0
    for key in KEYS:
        ops = [op for op in history if op.key == key]
        if any(op.out is None for op in ops):
            continue  # a pending op could explain any state
        final = ops[-1].out
        stale = next((op.out for op in ops if op.kind == "get" and op.out != final), None)
        if stale is None:
            continue
        ops.append(Op(0, key, "get", None, end + 2, end + 3, stale))
        assert check_key(ops) is False, f"stale read {stale} after {final} accepted on {key}"
        mutated += 1
    assert mutated, "no key had an earlier read to make stale"
    record("linearizability: mutated histories rejected", mutated)


# --- the checker on hand-made histories ---------------------------------------------------------------------------
def H(*ops: tuple) -> list[Op]:
    return [Op(0, "k", kind, arg, call, ret, out) for kind, arg, call, ret, out in ops]


def test_checker_accepts_and_rejects():
    ok_sequential = H(("put", 1, 0, 1, ("ok", 1)), ("get", None, 2, 3, ("ok", 1, 1)))
    stale = H(("put", 1, 0, 1, ("ok", 1)), ("put", 2, 2, 3, ("ok", 2)), ("get", None, 4, 5, ("ok", 1, 1)))
    concurrent = H(("put", 1, 0, 1, ("ok", 1)), ("put", 2, 2, 10, ("ok", 2)), ("get", None, 3, 4, ("ok", 1, 1)),
                   ("get", None, 5, 6, ("ok", 2, 2)))
    unknown_seen = H(("put", 5, 0, INF, None), ("get", None, 2, 3, ("ok", 5, 1)))
    unknown_not_seen = H(("put", 5, 0, INF, None), ("get", None, 2, 3, ("absent",)))
    unknown_undone = H(("put", 5, 0, INF, None), ("get", None, 2, 3, ("ok", 5, 1)), ("get", None, 4, 5, ("absent",)))
    two_cas_winners = H(("cas", (0, 1), 0, 5, ("ok", 1)), ("cas", (0, 2), 0, 5, ("ok", 1)))
    one_cas_winner = H(("cas", (0, 1), 0, 5, ("ok", 1)), ("cas", (0, 2), 0, 5, ("conflict", 1)))
    lost_incr = H(("incr", 1, 0, 5, ("ok", 1, 1)), ("incr", 1, 0, 5, ("ok", 1, 1)))
    incrs = H(("incr", 1, 0, 5, ("ok", 2, 2)), ("incr", 1, 0, 5, ("ok", 1, 1)), ("get", None, 6, 7, ("ok", 2, 2)))
    deleted = H(("put", 1, 0, 1, ("ok", 1)), ("delete", None, 2, 3, ("ok", 1)), ("get", None, 4, 5, ("ok", 1, 1)))
    assert check_key(ok_sequential) is True
    assert check_key(stale) is False
    assert check_key(concurrent) is True
    assert check_key(unknown_seen) is True
    assert check_key(unknown_not_seen) is True
    assert check_key(unknown_undone) is False
    assert check_key(two_cas_winners) is False
    assert check_key(one_cas_winner) is True
    assert check_key(lost_incr) is False
    assert check_key(incrs) is True
    assert check_key(deleted) is False
    record("linearizability: hand-made histories checked", 11)


def test_checker_is_fast_on_wide_concurrency():
    """Memoisation keeps 14 fully concurrent writes followed by a read cheap (2^14 orders without it)."""
    ops = H(*[("incr", 1, 0, INF, None) for _ in range(14)])  # unknown outcomes: any subset may have applied
    ops.append(Op(0, "k", "get", None, 11, 12, ("ok", 9, 9)))
    t0 = time.monotonic()
    assert check_key(ops) is True
    assert time.monotonic() - t0 < 10


# --- a deliberately broken server -----------------------------------------------------------------------------
def broken_app() -> Starlette:
    """A correct in-memory store except that GET answers from a cache refreshed on every third read."""
    data: dict[str, tuple[int, int]] = {}  # key -> (value, version)
    cache: dict[str, tuple[int, int] | None] = {}
    reads = {"n": 0}

    def entry(key: str, status: int = 200, with_value: bool = True) -> Response:
        value, version = data[key]
        return JSONResponse({"value": value, "version": version} if with_value else {"version": version}, status)

    def conflict(key: str) -> Response:
        cur = data.get(key, (None, 0))[1]
        return JSONResponse({"error": {"code": "version_conflict", "details": {"current_version": cur}}}, 409)

    async def kv(request: Request) -> Response:
        key = request.path_params["key"]
        if request.method == "GET":
            reads["n"] += 1
            if key not in cache or reads["n"] % 3 == 0:
                cache[key] = data.get(key)
            hit = cache[key]
            return JSONResponse({"value": hit[0], "version": hit[1]}) if hit else JSONResponse({}, 404)
        if request.method == "DELETE":
            if key not in data:
                return JSONResponse({}, 404)
            version = data.pop(key)[1]
            return JSONResponse({"deleted": True, "version": version})
        cur = data.get(key, (None, 0))
        if "if-match" in request.headers and int(request.headers["if-match"].strip('"')) != cur[1]:
            return conflict(key)
        body = await request.json()
        value = (cur[0] or 0) + body["amount"] if request.method == "PATCH" else body
        data[key] = (value, cur[1] + 1)
        return entry(key, 200, with_value=request.method == "PATCH")

    return Starlette(routes=[Route("/v1/kv/{ns}/{key}", kv, methods=["GET", "PUT", "PATCH", "DELETE"])])


def test_checker_flags_a_stale_read_server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # clients queue here until uvicorn accepts: no start-up wait needed
    server = uvicorn.Server(uvicorn.Config(broken_app(), log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        history = record_history(f"http://127.0.0.1:{sock.getsockname()[1]}", seed=7, txn=False)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    result = check(history)
    assert False in result.values(), f"stale reads went unnoticed: {result}"
    record("linearizability: broken-server histories rejected")
