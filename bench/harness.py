"""The harness: pinned server processes, wrk, the generator's CPU meter and the servers' CPU per request."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LUA = BENCH / "lua"
VENV_BIN = ROOT / ".venv" / "bin"
STIGMER = VENV_BIN / "stigmer"
PEER_PY = BENCH / ".venv-peers" / "bin" / "python"
SERVER_CORE, LOAD_CORE = "0", "1"
CONNS = 64
BENCH_KEY = "stg_bench-admin-key-0123456789abcdefghijklmnopq"  # the keyed pass: every request carries it
_TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peer_python() -> str:
    return str(PEER_PY if PEER_PY.exists() else sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pinned(core: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", core, *argv] if shutil.which("taskset") else argv


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (every thread), in seconds."""
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def tree_rss_kib(pid: int) -> int:
    total = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += int(f.read().split("VmRSS:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


class Server:
    """A server process pinned to the server core; up once its port accepts connections."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict | None = None, cwd: str | None = None,
                 ready: object = None):
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(pinned(SERVER_CORE, argv), stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd,
                                     env={**os.environ, **(env or {})}, preexec_fn=raise_nofile)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
                if ready is None or ready(port):  # type: ignore[operator]
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not start: see {self.log.name}")

    @property
    def pid(self) -> int:
        return self.proc.pid  # taskset execs the server, so this is the server's own pid

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return tree_rss_kib(self.pid)

    def nofile(self) -> int | None:
        try:
            for line in open(f"/proc/{self.pid}/limits"):
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http(port: int, method: str, path: str, body: bytes | None = None, key: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def http_ok(path: str):
    """A readiness check for Server(ready=...): `path` answers 2xx."""
    def check(port: int) -> bool:
        try:
            http(port, "GET", path)
            return True
        except OSError:
            return False
    return check


def preload(port: int, key: str | None = None, n: int = 100, prefix: str = "hot") -> None:
    for k in range(n):
        http(port, "PUT", f"/v1/kv/bench/{prefix}{k}", b'{"n":%d,"agent":"bench","ok":true}' % k, key)
    http(port, "PUT", "/v1/kv/bench/cas", b'{"n":0}', key)


def _lua(script: str) -> str:
    src = (LUA / "common.lua").read_text() + "\n" + (LUA / f"{script}.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(src)
    return f.name


def wrk_argv(port: int, script_file: str, seconds: float, conns: int, key: str | None = None) -> list[str]:
    auth = ["-H", f"Authorization: Bearer {key}"] if key else []
    return pinned(LOAD_CORE, ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "-s", script_file,
                              *auth, f"http://127.0.0.1:{port}"])


def wrk(port: int, script: str, seconds: float, conns: int = CONNS, key: str | None = None) -> dict:
    """wrk, one thread pinned to the load core; adds the generator's rusage for its CPU share."""
    name = _lua(script)
    t0 = time.monotonic()
    proc = subprocess.Popen(wrk_argv(port, name, seconds, conns, key), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=raise_nofile)
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(name)
    m = re.search(r"BENCH_JSON (\{.*\})", out.decode())
    if not m:
        raise RuntimeError(f"wrk failed: {out.decode()} {err.decode()}")
    res = json.loads(m.group(1))
    res["errors_total"] = sum(res["errors"].values()) - res.get("conflicts", 0)
    res["_ru"] = ru.ru_utime + ru.ru_stime
    res["_wall"] = wall
    return res


class CPUMeter:
    """The load generator's CPU share of its core, from the children's rusage deltas."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last = ru.ru_utime + ru.ru_stime

    def share(self, res: dict) -> float:
        used = res.pop("_ru") - self.last
        self.last += used
        return round(used / res.pop("_wall"), 3)


def run_wrk(meter: CPUMeter, srv: Server, script: str, seconds: float, label: str, key: str | None = None) -> dict:
    """A discarded 1 s warm-up, then the measured run; adds the server's CPU time per request (µs)."""
    meter.share(wrk(srv.port, script, 1, CONNS, key))
    cpu0 = srv.cpu_seconds()
    res = wrk(srv.port, script, seconds, key=key)
    cpu = srv.cpu_seconds() - cpu0
    res["generator_cpu"] = meter.share(res)
    res["server_cpu_s"] = round(cpu, 3)
    res["cpu_us_per_req"] = round(cpu / res["requests"] * 1e6, 1) if res["requests"] else None
    res["server_cpu_share"] = round(cpu / res["duration_s"], 3) if res["duration_s"] else None
    log(f"{label} {script}: {res['rps']:.0f} req/s p99 {res['p99_ms']:.2f} ms errors {res['errors_total']} "
        f"cpu {res['cpu_us_per_req']} µs/req (server {res['server_cpu_share']:.0%}, wrk {res['generator_cpu']:.0%})")
    return res


def sse_client(args: list[str]) -> dict:
    argv = pinned(LOAD_CORE, [sys.executable, str(BENCH / "sse.py"), *args])
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=raise_nofile)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def version_of(argv: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True).stdout
    except OSError:
        return "?"
    m = re.search(pattern, out)
    return m.group(1) if m else "?"


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()[1].split()[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "?", False
    try:  # a partial run (`--only search`) may run where wrk is not installed
        wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    except OSError:
        wrk_v = "?"
    return {"cpu": cpu, "nproc": os.cpu_count(), "mem": mem, "kernel": platform.release(),
            "python": platform.python_version(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit + ("+dirty" if dirty else ""), "wrk": wrk_v, "load": os.getloadavg()}
