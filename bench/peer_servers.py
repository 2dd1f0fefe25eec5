"""The peers, each started pinned on the server core and driven like Stigmer: the generator's ceiling, the bare
ASGI floors (uvicorn, granian), etcd's HTTP JSON API, the FastAPI baseline and Redis."""

from __future__ import annotations

import base64
import json
import resource
import shutil
import subprocess
import tempfile
import time
import urllib.request

from harness import (BENCH, CONNS, LOAD_CORE, CPUMeter, Server, free_port, http, log, peer_python, pinned,
                     raise_nofile, run_wrk)

PEERS = BENCH / "peers"


def generator_ceiling(meter: CPUMeter, secs: float) -> dict:
    """wrk against a constant-response uvloop responder: the most this generator can drive."""
    port = free_port()
    srv = Server("ceiling", [peer_python(), str(PEERS / "floor.py"), str(port)], port)
    try:
        return run_wrk(meter, srv, "get", secs, "ceiling")
    finally:
        srv.stop()


def floor_argv(server: str, port: int) -> list[str]:
    py = peer_python()
    if server == "uvicorn":
        return [py, "-m", "uvicorn", "asgi_floor:app", "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    if server == "hypercorn":
        return [py, "-m", "hypercorn", "--worker-class", "uvloop", "--bind", f"127.0.0.1:{port}", "--log-level",
                "warning", "asgi_floor:app"]
    return [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--no-ws", "--workers", "1", "--runtime-threads", "1", "--log-level", "warning", "asgi_floor:app"]


def asgi_floors(meter: CPUMeter, secs: float) -> dict:
    """The bare ASGI app (bench/peers/asgi_floor.py) on each server: what the server alone costs. Hypercorn is
    the third well-kept ASGI server (HTTP parsed in Python by h11): measured for the serving-stack choice."""
    out = {}
    for server in ("uvicorn", "granian", "hypercorn"):
        port = free_port()
        srv = Server(f"floor-{server}", floor_argv(server, port), port, cwd=str(PEERS))
        try:
            out[server] = run_wrk(meter, srv, "get", secs, f"ASGI floor on {server}")
        finally:
            srv.stop()
    return out


def _etcd_call(port: int, op: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/kv/{op}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def etcd_bench(meter: CPUMeter, secs: float) -> dict | None:
    """etcd 3.4 (Debian's etcd-server), one member, through its v3 HTTP JSON gateway: range and put."""
    exe = etcd_binary()
    if exe is None:
        log("etcd: not installed (bench/setup.sh installs etcd-server); rows skipped")
        return None
    data = tempfile.mkdtemp(prefix="bench-etcd-")
    port, peer = free_port(), free_port()
    argv = [exe, "--name", "bench", "--data-dir", data, "--listen-client-urls", f"http://127.0.0.1:{port}",
            "--advertise-client-urls", f"http://127.0.0.1:{port}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "error"]

    def ready(p: int) -> bool:
        try:
            _etcd_call(p, "range", {"key": _b64("x")})
            return True
        except OSError:
            return False

    srv = Server("etcd", argv, port, env={"GOMAXPROCS": "1"}, ready=ready)
    try:
        for k in range(100):
            _etcd_call(port, "put", {"key": _b64(f"bench/hot{k}"),
                                     "value": _b64('{"n":%d,"agent":"bench","ok":true}' % k)})
        got = _etcd_call(port, "range", {"key": _b64("bench/hot7")})
        assert got.get("count") == "1", got
        return {s: run_wrk(meter, srv, f"etcd_{s}", secs, "etcd") for s in ("get", "put")}
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


def etcd_version() -> str:
    exe = etcd_binary()
    if not exe:
        return "?"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    return out.split("\n")[0].split(":")[-1].strip()


def fastapi_bench(meter: CPUMeter, secs: float) -> dict:
    """The FastAPI peer in its best configuration (bench/peers/fastapi_kv.py) on uvicorn (uvloop, httptools)."""
    db_dir = tempfile.mkdtemp(prefix="bench-fastapi-")
    port = free_port()
    fa = Server("fastapi", [peer_python(), "-m", "uvicorn", "fastapi_kv:app", "--host", "127.0.0.1", "--port", str(port),
                            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
                port, env={"STIGMER_PEER_DB": f"{db_dir}/peer.db"}, cwd=str(PEERS))
    try:
        for k in range(100):
            http(port, "PUT", f"/v1/kv/bench/hot{k}", b'{"n":%d,"agent":"bench","ok":true}' % k)
        return {s: run_wrk(meter, fa, s, secs, "fastapi") for s in ("get", "put", "mix")}
    finally:
        fa.stop()
        shutil.rmtree(db_dir, ignore_errors=True)


def redis_bench(meter: CPUMeter) -> dict:
    """redis-server with AOF appendfsync always (durable writes, like Stigmer's PUT), GET/SET/INCR at -c 64."""
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    srv = Server("redis", ["redis-server", "--port", str(port), "--dir", tmp, "--save", "", "--appendonly", "yes",
                           "--appendfsync", "always", "--daemonize", "no"], port)
    out = {}
    try:
        # The lock peers of the lease rows: SET NX PX is Redis's lock acquire (one contended name, or a new
        # random name per request), durable under the same AOF policy.
        runs = (("get", 400_000, ["-t", "get"]), ("set", 200_000, ["-t", "set"]), ("incr", 200_000, ["-t", "incr"]),
                ("lock_one", 200_000, ["SET", "bench-lock", "x", "NX", "PX", "30000"]),
                ("lock_many", 200_000, ["-r", "100000000", "SET", "lock:__rand_int__", "x", "NX", "PX", "30000"]))
        for test, n, command in runs:
            rand = [] if "-r" in command else ["-r", "100"]
            argv = pinned(LOAD_CORE, ["redis-benchmark", "-p", str(port), "-c", str(CONNS), "-n", str(n), *rand,
                                      "--csv", "-q", *command])
            meter.reset()
            cpu0, t0 = srv.cpu_seconds(), time.monotonic()
            text = subprocess.run(argv, capture_output=True, text=True, check=True, preexec_fn=raise_nofile).stdout
            wall, cpu = time.monotonic() - t0, srv.cpu_seconds() - cpu0
            rows = [line for line in text.splitlines() if line and not line.startswith('"test"')]
            cells = [c.strip('"') for c in rows[-1].split('","')]
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            out[test] = {"rps": float(cells[1]), "p50_ms": float(cells[4]), "p99_ms": float(cells[6]),
                         "max_ms": float(cells[7]), "requests": n, "_ru": ru.ru_utime + ru.ru_stime, "_wall": wall,
                         "cpu_us_per_req": round(cpu / n * 1e6, 1), "server_cpu_share": round(cpu / wall, 3)}
            out[test]["generator_cpu"] = meter.share(out[test])
            log(f"redis {test}: {out[test]['rps']:.0f} req/s p99 {out[test]['p99_ms']:.2f} ms "
                f"cpu {out[test]['cpu_us_per_req']} µs/req")
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return "?"
