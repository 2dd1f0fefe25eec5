"""The guarantees of `stigmer serve` on each HTTP server it can run on: uvicorn (default) and granian (opt-in).

Against the real process: lifespan start and stop, SIGTERM ending SSE streams with no acknowledged write lost,
keep-alive, the head timeout, the body timeout and the client address reaching the rate limiter. Where granian
differs by design (one timer for the head and the keep-alive idle time) the test says so.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from pg_support import ON_POSTGRES
from support import closed_after

HEAD, KEEPALIVE, BODY = 1.0, 2.0, 1.0


@pytest.fixture(params=["uvicorn", "granian"])
def stack(request):
    if request.param == "granian":
        pytest.importorskip("granian")
    return request.param


@pytest.fixture
def served(stack, make_server):
    return make_server(("--server", stack, "--head-timeout", str(HEAD)), keepalive_timeout_seconds=KEEPALIVE,
                       body_timeout_seconds=BODY, log_level="info").start()


def read_response(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
                   if line.startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_lifespan_runs_on_start_and_on_stop(served, stack):
    assert httpx.put(served.url + "/v1/kv/life/k", json=1).status_code == 201  # the store opened in the lifespan
    served.proc.terminate()
    assert served.proc.wait(5) in (0, -15)
    served.proc = None
    if not ON_POSTGRES:  # the store closed in the lifespan's end: SQLite folds and removes its WAL on close
        assert not (served.data_dir / "stigmer.db-wal").exists()
    log = served.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    served.start()
    assert httpx.get(served.url + "/v1/kv/life/k").json()["value"] == 1


class Stream(threading.Thread):
    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.opened, self.ended, self.error = url, threading.Event(), threading.Event(), None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(10, read=30)) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        self.opened.set()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.opened.set()
            self.ended.set()


def test_sigterm_ends_streams_and_keeps_acked_writes(served, ns):
    stream = Stream(f"{served.url}/v1/watch?namespace={ns}")
    stream.start()
    assert stream.opened.wait(10) and stream.error is None
    acked: list[str] = []
    busy = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=served.url, timeout=5) as c:
            for i in range(100_000):
                try:
                    r = c.put(f"/v1/kv/{ns}/w{i}", json=i)
                except httpx.TransportError:
                    return
                if r.status_code in (200, 201):
                    acked.append(f"w{i}")
                if len(acked) >= 20:
                    busy.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert busy.wait(10)
    start = time.monotonic()
    served.proc.terminate()
    served.proc.wait(5)
    took = time.monotonic() - start
    served.proc = None
    assert took < 4, f"exit took {took:.2f}s"  # well inside the 5 s graceful timeout a held stream would cost
    assert stream.ended.wait(2) and stream.error is None, f"stream did not end cleanly: {stream.error!r}"
    writer.join(5)
    served.start()
    page = httpx.get(f"{served.url}/v1/kv/{ns}", params={"limit": 1000, "values": "false"}).json()
    stored = {e["key"] for e in page["entries"]}
    assert set(acked) <= stored, f"lost {len(set(acked) - stored)} acknowledged writes"


def test_keep_alive_then_the_idle_timeout(served, stack):
    with socket.create_connection(("127.0.0.1", served.port)) as s:
        for _ in range(3):  # one connection, several requests
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_response(s).startswith(b"HTTP/1.1 200")
        took = closed_after(s, KEEPALIVE + 2)
    # granian has one timer for the head and the keep-alive idle time: the head timeout bounds both
    expected = KEEPALIVE if stack == "uvicorn" else HEAD
    assert took is not None and expected * 0.8 <= took <= expected + 1, took


def test_a_late_head_is_closed(served):
    with socket.create_connection(("127.0.0.1", served.port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        took = closed_after(s, HEAD + 2)
    assert took is not None and took >= HEAD * 0.8, took


def test_a_stalled_body_is_answered_408(served):
    with socket.create_connection(("127.0.0.1", served.port)) as s:
        s.sendall(b"PUT /v1/kv/t/k HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"a\":")
        start = time.monotonic()
        head = read_response(s)
        took = time.monotonic() - start
    assert head.startswith(b"HTTP/1.1 408"), head
    assert BODY * 0.8 <= took <= BODY + 1.5, took


def test_the_client_address_reaches_the_rate_limiter(stack, make_server):
    served = make_server(("--server", stack), trusted_proxies="127.0.0.1", native_rate_limit=3).start()

    def get(ip: str) -> int:
        return httpx.get(served.url + "/v1/kv/t/none", headers={"X-Forwarded-For": ip}).status_code

    # X-Forwarded-For counts only from a trusted proxy: the server must see the peer address 127.0.0.1
    assert [get("10.0.0.1") for _ in range(4)] == [404, 404, 404, 429]
    assert get("10.0.0.2") == 404


def test_a_taken_port_is_refused(served, stack, tmp_path):
    # granian binds with SO_REUSEPORT: without the check a second server would share the port silently
    proc = subprocess.run([sys.executable, "-m", "stigmer.cli", "serve", "--server", stack, "--host", "127.0.0.1",
                           "--port", str(served.port), "--data-dir", str(tmp_path / "other")],
                          capture_output=True, text=True, timeout=30, env=served.env)
    assert proc.returncode != 0  # uvicorn exits 3 (start-up failed), granian 1
    assert "already in use" in (proc.stdout + proc.stderr).lower()
