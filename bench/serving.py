"""The serving stack, chosen by measurement: the whole app on uvicorn (`stigmer serve`, the default) and on granian
(`stigmer serve --server granian`), side by side in one run — rates, CPU per request, and probes of the
guarantees `stigmer serve` gives.

Probes, each against a fresh process with short timeouts (head 1 s, keep-alive 2 s, body 1 s): lifespan (the store opens in it, so /healthz
answering and a clean exit show it ran), no `server` header and a `Date`, a half-sent head closed after the
head timeout, an idle keep-alive connection closed after the keep-alive timeout, a stalled body answered after
the body timeout, 101 request headers answered in the API's error shape, the client address reaching the rate
limiter (a trusted proxy's X-Forwarded-For), and SIGTERM ending an open SSE stream cleanly and quickly.
"""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
import threading
import time

from harness import BENCH, STIGMER, VENV_BIN, CPUMeter, Server, free_port, http_ok, log, preload, run_wrk



def stigmer_argv(server: str, port: int, data: str) -> list[str]:
    return [str(STIGMER), "serve", "--server", server, "--host", "127.0.0.1", "--port", str(port), "--data-dir", data]


def start_stigmer(server: str, tag: str, env: dict | None = None) -> tuple[Server, str]:
    data = tempfile.mkdtemp(prefix=f"bench-stigmer-{tag}-")
    port = free_port()
    env = {"STIGMER_LOG_LEVEL": "warning", **(env or {})}
    srv = Server(f"stigmer-{server}", stigmer_argv(server, port, data), port, env=env,
                 ready=http_ok("/healthz"))
    return srv, data


def available() -> bool:
    return (VENV_BIN / "granian").exists()


def measure(meter: CPUMeter, secs: float, scenarios: tuple[str, ...] = ("get", "put")) -> dict:
    out: dict = {}
    for server in ("uvicorn", "granian"):
        srv, data = start_stigmer(server, f"serve-{server}")
        try:
            preload(srv.port)
            out[server] = {s: run_wrk(meter, srv, s, secs, f"stigmer on {server}") for s in scenarios}
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)
    return out


# ---- guarantee probes -------------------------------------------------------------------------------------------

def _closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes `sock` (discarding what it sends), or None if still open after `limit`."""
    sock.settimeout(limit)
    start = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return round(time.monotonic() - start, 2)


def _request(port: int, raw: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf or len(buf) < buf.index(b"\r\n\r\n") + 4 + _clen(buf):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            pass
        return buf


def _clen(buf: bytes) -> int:
    head = buf.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _status(resp: bytes) -> int | None:
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def probe(server: str) -> dict:
    env = {"STIGMER_HEAD_TIMEOUT_SECONDS": "1", "STIGMER_KEEPALIVE_TIMEOUT_SECONDS": "2",
           "STIGMER_BODY_TIMEOUT_SECONDS": "1", "STIGMER_TRUSTED_PROXIES": "127.0.0.1",
           "STIGMER_NATIVE_RATE_LIMIT": "3", "STIGMER_LOG_LEVEL": "info"}
    srv, data = start_stigmer(server, f"probe-{server}", env)
    out: dict = {"lifespan_startup": True}  # /healthz answered: the store opened in the lifespan
    try:
        resp = _request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = resp.split(b"\r\n\r\n", 1)[0].lower()
        out["server_header"] = next((line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                                     if line.startswith(b"server:")), None)
        out["date_header"] = b"\r\ndate:" in head

        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            out["half_head_closed_s"] = _closed_after(s, 4)
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.settimeout(5)
            s.recv(65536)
            out["idle_keepalive_closed_s"] = _closed_after(s, 4)
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"PUT /v1/kv/probe/k HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"a\":")
            s.settimeout(5)
            t0 = time.monotonic()
            try:
                got = s.recv(65536)
            except TimeoutError:
                got = b""
            out["stalled_body"] = {"status": _status(got), "after_s": round(time.monotonic() - t0, 2)}

        many = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
        resp = _request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + many + b"\r\n")
        body = resp.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in resp else b""
        out["many_headers"] = {"status": _status(resp), "error_shape": body.startswith(b'{"error"')}

        codes = []
        for ip in ("10.0.0.1",) * 4 + ("10.0.0.2",):
            r = _request(srv.port, b"GET /v1/kv/probe/none HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: "
                         + ip.encode() + b"\r\n\r\n")
            codes.append(_status(r))
        out["rate_limit_by_client"] = {"codes": codes, "ok": codes[3] == 429 and codes[4] != 429}

        ended: dict = {}
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /v1/watch?namespace=probe HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.settimeout(5)
        first = s.recv(65536)
        out["sse_opened"] = _status(first) == 200

        def read_to_end() -> None:
            buf = first
            s.settimeout(10)
            try:
                while chunk := s.recv(65536):
                    buf += chunk
            except OSError:
                pass
            ended["at"] = time.monotonic()
            ended["clean"] = buf.endswith(b"0\r\n\r\n")

        reader = threading.Thread(target=read_to_end, daemon=True)
        reader.start()
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            srv.proc.wait(15)
        except Exception:  # noqa: BLE001 - recorded as not exiting
            pass
        exited = time.monotonic() - t0
        reader.join(12)
        s.close()
        out["sigterm"] = {"exit_s": round(exited, 2), "exit_code": srv.proc.poll(),
                          "stream_ended_s": round(ended["at"] - t0, 2) if "at" in ended else None,
                          "stream_clean_end": ended.get("clean", False)}
        text = open(srv.log.name, errors="replace").read()
        out["traceback_in_log"] = "Traceback" in text
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
    out["verdict"] = verdict(out)
    log(f"probes {server}: {out}")
    return out


def verdict(p: dict) -> dict[str, bool]:
    """Each guarantee `stigmer serve` gives, kept (True) or lost (False) on this server."""
    half, idle, body = p.get("half_head_closed_s"), p.get("idle_keepalive_closed_s"), p.get("stalled_body", {})
    sig = p.get("sigterm", {})
    return {
        "lifespan (start, and stop on SIGTERM)": (p.get("lifespan_startup", False) and sig.get("exit_code") in (0, -15)
                                                  and not p.get("traceback_in_log")),
        "no server header, a Date": p.get("server_header") is None and p.get("date_header", False),
        "head timeout (1 s)": half is not None and 0.8 <= half <= 2.0,
        "keep-alive timeout (2 s, apart from the head timeout)": idle is not None and 1.7 <= idle <= 3.0,
        "body timeout (1 s)": body.get("status") == 408 and body.get("after_s", 0) <= 2.5,
        "101 headers: served, or refused in the API's error shape": (p.get("many_headers", {}).get("status") == 200
                                                                     or bool(p.get("many_headers", {}).get("error_shape"))),
        "client address for rate limits": p.get("rate_limit_by_client", {}).get("ok", False),
        "SIGTERM ends SSE streams (< 1.5 s, clean)": (sig.get("stream_clean_end", False)
                                                      and sig.get("stream_ended_s") is not None
                                                      and sig["stream_ended_s"] < 1.5
                                                      and sig.get("exit_s", 99) < 3),
    }


def probes() -> dict:
    return {server: probe(server) for server in ("uvicorn", "granian")}


if __name__ == "__main__":  # python bench/serving.py: the probes alone
    import json
    import sys

    sys.path.insert(0, str(BENCH))
    print(json.dumps(probes(), indent=2))
