"""Connection timeouts and response headers of the real server, seen through raw sockets."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from support import closed_after

HEAD_TIMEOUT = 1.0


@pytest.fixture(params=["httptools", "h11"])
def timed_server(request, make_server):
    return make_server(("--head-timeout", str(HEAD_TIMEOUT), "--http", request.param),
                       sse_keepalive_seconds=0.3).start()


def silent(s: socket.socket) -> float | None:
    return closed_after(s, HEAD_TIMEOUT + 1)


def half_head(s: socket.socket) -> float | None:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return closed_after(s, HEAD_TIMEOUT + 1)


def dripped_head(s: socket.socket) -> float | None:
    """A byte every 0.1 s: each byte arrives in time, the head as a whole does not."""
    start = time.monotonic()
    s.settimeout(0.1)
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100:
            s.send(bytes([byte]))
            try:
                if s.recv(1) == b"":
                    return time.monotonic() - start
            except TimeoutError:
                pass
            if time.monotonic() - start > HEAD_TIMEOUT + 1:
                return None
    except (BrokenPipeError, ConnectionResetError):
        return time.monotonic() - start
    return None


def half_head_after_a_response(s: socket.socket) -> float | None:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    return closed_after(s, HEAD_TIMEOUT + 1)


def test_late_request_heads_are_closed(timed_server):
    cases = [silent, half_head, dripped_head, half_head_after_a_response]
    socks = [socket.create_connection(("127.0.0.1", timed_server.port), timeout=5) for _ in cases]
    try:
        with ThreadPoolExecutor(len(cases)) as pool:  # side by side: one timeout's wait for all
            took = dict(zip([c.__name__ for c in cases], pool.map(lambda c, s: c(s), cases, socks)))
    finally:
        for s in socks:
            s.close()
    assert all(t is not None for t in took.values()), f"left open: {took}"
    assert all(t >= HEAD_TIMEOUT * 0.8 for t in took.values()), f"closed too early: {took}"


def test_a_stream_outlives_the_head_timeout(timed_server):
    with httpx.stream("GET", timed_server.url + "/v1/watch?namespace=t-timeouts", timeout=5) as r:
        start, frames = time.monotonic(), 0
        for line in r.iter_lines():
            frames += line == ""
            if time.monotonic() - start > HEAD_TIMEOUT * 2:
                break
        assert frames >= 3  # the opening frame and keep-alives, past the head timeout


def test_no_server_banner_and_a_date(shared_server):
    r = httpx.get(shared_server.url + "/healthz")
    assert r.status_code == 200
    assert "server" not in r.headers and "date" in r.headers
