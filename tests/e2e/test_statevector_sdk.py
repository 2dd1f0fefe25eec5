"""`stigmer.client.StateVector` (statevec.md §9) against the real server process."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from stigmer.client import BadRequest, Conflict, RateLimited, StateVecError, StateVector, ValueTooLarge


from server_process import ServerProcess
SECRET = "demo:board:k7Qp2vXr9LmT4wZa"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("sv") / "data", statevec_rate_limit_anon=0).start()
    yield s
    s.kill()


@pytest.fixture
def sv(srv):
    c = StateVector(url=srv.url + "/")
    yield c
    c.close()


def test_operations(sv, request):
    secret = f"{SECRET}:{request.node.name}"
    h = sv.put(secret, value={"status": "running"})
    assert h == StateVector.hash(secret) and len(h) == 64
    assert sv.get(h) == {"status": "running"}
    assert sv.merge(secret, {"users": {"a": 1}}) == {"status": "running", "users": {"a": 1}}
    assert sv.merge(secret, {"users": {"b": 2}}, deep=True)["users"] == {"a": 1, "b": 2}
    assert sv.incr(secret, "count") == {"status": "running", "users": {"a": 1, "b": 2}, "count": 1}
    assert sv.incr(secret, "count", amount=2.5, ttl=60)["count"] == 3.5
    lst = secret + ":list"
    assert sv.append(lst, "a") == ["a"]
    assert sv.append(lst, "b", max=1) == ["b"]
    n = secret + ":n"
    assert sv.incr(n) == 1
    assert sv.batch([h, StateVector.hash(n), "0" * 64])[1]["val"] == 1
    assert sv.batch([h, StateVector.hash(n), "0" * 64])[2] is None
    assert sv.delete(secret) is True
    assert sv.delete(secret) is False
    assert sv.get(h) is None


def test_batch_chunks_any_size(sv):
    hs = [sv.put(f"chunk:{i}", i) for i in range(45)]
    res = sv.batch(hs + ["0" * 64])
    assert [r["val"] for r in res[:45]] == list(range(45)) and res[45] is None


def test_errors(sv):
    with pytest.raises(BadRequest) as e:
        sv.put("", 1)
    assert e.value.status == 400 and e.value.error == "key must be a string of 1-1024 characters"
    assert e.value.body == {"ok": False, "error": e.value.error}
    sv.put("err:str", "x")
    with pytest.raises(Conflict) as e:
        sv.incr("err:str")
    assert e.value.error == "cannot incr: value is not a number"
    with pytest.raises(ValueTooLarge):
        sv.put("err:big", "x" * 70000)
    assert issubclass(RateLimited, StateVecError)


def test_rate_limited_retries_then_raises(tmp_path):
    s = ServerProcess(tmp_path / "data", statevec_rate_limit_anon=60).start()
    try:
        c = StateVector(url=s.url)
        statuses = []
        c._http.event_hooks["response"].append(lambda r: statuses.append(r.status_code))

        def drain():
            with httpx.Client() as h:
                while h.get(s.url + "/v/" + "0" * 64).status_code != 429:
                    pass

        drain()
        assert c.get("0" * 64) is None  # the SDK sleeps Retry-After and retries
        assert statuses[0] == 429 and statuses[-1] == 404
        import stigmer.client.statevector as mod
        old, mod.MAX_RETRIES = mod.MAX_RETRIES, 0
        try:
            drain()
            with pytest.raises(RateLimited) as e:
                c.get("0" * 64)
            assert e.value.retry_after >= 1 and e.value.status == 429
        finally:
            mod.MAX_RETRIES = old
        c.close()
    finally:
        s.kill()


def test_watch_polling(sv):
    secret = "watch:Xb8s7d6f5g4h3j2k"
    h = sv.put(secret, 1)
    seen, stop = [], threading.Event()

    def cb(v):
        seen.append(v)
        return False if v == "end" else None

    t = threading.Thread(target=sv.watch, args=(h, cb), kwargs={"interval": 0.1, "stop": stop})
    t.start()
    time.sleep(0.3)
    sv.put(secret, 2)
    time.sleep(0.3)
    sv.put(secret, 2)  # same value, new ETag: reported again
    time.sleep(0.3)
    sv.delete(secret)
    time.sleep(0.3)
    sv.put(secret, "end")
    t.join(5)
    assert not t.is_alive()
    assert seen == [1, 2, 2, None, "end"]
    stop.set()
