"""Connection timeouts and response headers of the real server, seen through raw sockets."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

HEAD_TIMEOUT = 1.0


@pytest.fixture(params=["httptools", "h11"])
def timed_server(request, make_server):
    return make_server(("--head-timeout", str(HEAD_TIMEOUT), "--http", request.param),
                       sse_keepalive_seconds=0.3).start()


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes `sock` (reads and discards whatever comes first)."""
    sock.settimeout(limit)
    start = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {limit}s")
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def test_half_a_head_is_closed_after_the_timeout(timed_server):
    with connect(timed_server) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        took = closed_after(s, HEAD_TIMEOUT + 1)
    assert took >= HEAD_TIMEOUT * 0.8


def test_a_slowly_dripped_head_is_closed_too(timed_server):
    with connect(timed_server) as s:
        start = time.monotonic()
        s.settimeout(0.2)
        with pytest.raises((BrokenPipeError, ConnectionResetError, TimeoutError)):
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000:
                s.send(bytes([byte]))
                try:
                    if s.recv(1) == b"":  # closed by the server
                        raise ConnectionResetError
                except TimeoutError:
                    pass
                assert time.monotonic() - start < HEAD_TIMEOUT + 1, "still open"
    assert time.monotonic() - start < HEAD_TIMEOUT + 1


def test_a_silent_connection_is_closed(timed_server):
    with connect(timed_server) as s:
        closed_after(s, HEAD_TIMEOUT + 1)


def test_half_a_head_after_a_keep_alive_response_is_closed(timed_server):
    with connect(timed_server) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed_after(s, HEAD_TIMEOUT + 1)


def test_a_stream_outlives_the_head_timeout(timed_server):
    with httpx.stream("GET", timed_server.url + "/v1/watch?namespace=t-timeouts", timeout=5) as r:
        start, frames = time.monotonic(), 0
        for line in r.iter_lines():
            frames += line == ""
            if time.monotonic() - start > HEAD_TIMEOUT * 2:
                break
        assert frames >= 3  # the opening frame and keep-alives, past the head timeout


def test_headers_no_server_banner(timed_server):
    r = httpx.get(timed_server.url + "/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200
    assert "server" not in r.headers and "date" in r.headers
