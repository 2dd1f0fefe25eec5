"""Limits and slow clients: every over-limit request of rel_surfaces.LIMITS gets a clean 4xx in its surface's
error shape (never a 5xx, a dropped connection or a hang); the CntrlNode stream cap answers 429; a client that
sends half a request and stops is disconnected within HALF_SENT_CLOSE seconds.
"""

from __future__ import annotations

import select
import threading

import httpx
import pytest

from rel_support import client, finding, raw_connect, record, start_server
from rel_surfaces import LIMIT_SETTINGS, LIMITS, SURFACES, Limit

TIMEOUT = 15.0
HALF_SENT_CLOSE = 15.0


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("limits") / "data", **LIMIT_SETTINGS)
    yield s
    s.kill()


@pytest.mark.parametrize("limit", LIMITS, ids=lambda lim: f"{lim.surface} {lim.what}")
def test_over_limit_is_a_clean_4xx(limits_server, limit: Limit):
    record("limits: over-limit requests")
    req = limit.request()
    with client(limits_server.url, timeout=TIMEOUT) as c:
        try:
            r = c.request(**req)
        except httpx.TimeoutException:
            finding(f"limits: {limit.surface} {limit.what}: no answer in {TIMEOUT:.0f} s ({req['method']} {req['url'][:80]})")
            raise AssertionError(f"{limit.surface} {limit.what}: hung") from None
        except httpx.TransportError as exc:
            finding(f"limits: {limit.surface} {limit.what}: connection dropped, {type(exc).__name__} "
                    f"({req['method']} {req['url'][:80]})")
            raise AssertionError(f"{limit.surface} {limit.what}: connection dropped: {exc!r}") from None
    try:
        body = r.json()
    except ValueError:
        body = None
    ok = 400 <= r.status_code < 500 and SURFACES[limit.surface].is_error(r.status_code, body)
    if not ok:
        finding(f"limits: {limit.surface} {limit.what}: {req['method']} {req['url'][:60]}… -> {r.status_code} "
                f"{r.text[:120]!r}")
    assert ok, f"{limit.surface} {limit.what}: {r.status_code} {r.text[:300]!r} (want a 4xx in the {limit.surface} shape)"
    record("limits: clean 4xx answers")


def test_cntrlnode_stream_cap_answers_429(limits_server):
    cap = int(LIMIT_SETTINGS["cntrlnode_max_streams"])
    url = "/v1/state/capwf/k/stream"
    with client(limits_server.url, timeout=TIMEOUT) as c:
        streams = [c.stream("GET", url) for _ in range(cap)]
        opened = [s.__enter__() for s in streams]
        try:
            assert all(r.status_code == 200 for r in opened), [r.status_code for r in opened]
            with client(limits_server.url, timeout=TIMEOUT) as c2, c2.stream("GET", url) as extra:
                extra.read()
                assert extra.status_code == 429, (extra.status_code, extra.text)
                assert extra.json()["error"] == "RATE_LIMITED" and int(extra.headers["Retry-After"]) >= 1
        finally:
            for s in streams:
                s.__exit__(None, None, None)
        record("limits: stream cap checks")
        # closing one frees its place (the server notices the disconnect: poll briefly, bounded)
        for _ in range(50):
            with c.stream("GET", url) as again:
                if again.status_code == 200:
                    break
            threading.Event().wait(0.1)
        assert again.status_code == 200, "the stream cap was not released after the streams closed"


HALF_SENT = {
    "half a request head": b"GET /v1/revision HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    "a head without its blank line": b"GET /v1/revision HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    "half a request body": b"PUT /v1/kv/slow/k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"a\":",
    "half a statevec body": b"PUT /v HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"key\":",
    "a connection that sends nothing": b"",
}


@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_half_sent_requests_are_closed(limits_server):
    socks = {}
    for name, data in HALF_SENT.items():
        s = raw_connect(limits_server.url, timeout=5)
        s.sendall(data)
        socks[s] = name
    open_ = dict(socks)
    deadline = threading.Event()
    timer = threading.Timer(HALF_SENT_CLOSE, deadline.set)
    timer.start()
    try:
        while open_ and not deadline.is_set():
            ready, _, _ = select.select(list(open_), [], [], 0.5)
            for s in ready:
                try:
                    if not s.recv(65536):
                        del open_[s]
                except ConnectionError:
                    del open_[s]
    finally:
        timer.cancel()
        for s in socks:
            s.close()
    record("limits: half-sent connections", len(socks))
    record("limits: half-sent connections left open", len(open_))
    for name in open_.values():
        finding(f"limits: {name}: connection still open after {HALF_SENT_CLOSE:.0f} s")
    assert not open_, f"still open after {HALF_SENT_CLOSE:.0f} s: {sorted(open_.values())}"
