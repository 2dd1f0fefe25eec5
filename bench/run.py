"""Stigmer benchmark: every scenario and its peers in one run on one machine, reported as ratios.

  python bench/run.py            # quick set (< 5 minutes): make bench
  python bench/run.py --full     # everything, incl. 10,000 watchers and 10,000 idle SSE: make bench-full

Servers (Stigmer, the FastAPI baseline, redis-server, the generator-ceiling responder) run pinned to core 0;
load generators (wrk, redis-benchmark, bench/sse.py) run pinned to core 1. Writes bench/results/<stamp>.json,
bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
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
STIGMER = ROOT / ".venv" / "bin" / "stigmer"
PEER_PY = BENCH / ".venv-peers" / "bin" / "python"
SERVER_CORE, LOAD_CORE = "0", "1"
CONNS = 64


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pinned(core: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", core, *argv] if shutil.which("taskset") else argv


class Server:
    def __init__(self, name: str, argv: list[str], port: int, env: dict | None = None, ready_path: str = "/"):
        self.name, self.port = name, port
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(pinned(SERVER_CORE, argv), stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, preexec_fn=_raise_nofile)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid  # taskset execs the server, so this is the server's own pid

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


BENCH_KEY = "stg_bench-admin-key-0123456789abcdefghijklmnopq"  # the keyed pass: every request carries it


def http(port: int, method: str, path: str, body: bytes | None = None, key: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def preload(port: int, key: str | None = None) -> None:
    for k in range(100):
        http(port, "PUT", f"/v1/kv/bench/hot{k}", b'{"n":%d,"agent":"bench","ok":true}' % k, key)
    http(port, "PUT", "/v1/kv/bench/cas", b'{"n":0}', key)


def wrk(port: int, script: str, seconds: float, conns: int = CONNS, key: str | None = None) -> dict:
    """wrk, one thread pinned to the load core; adds the generator's own CPU use (share of its core)."""
    src = (LUA / "common.lua").read_text() + "\n" + (LUA / f"{script}.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(src)
    auth = ["-H", f"Authorization: Bearer {key}"] if key else []
    argv = pinned(LOAD_CORE, ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", f.name, *auth,
                              f"http://127.0.0.1:{port}"])
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_raise_nofile)
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(f.name)
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
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last = ru.ru_utime + ru.ru_stime

    def reset(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last = ru.ru_utime + ru.ru_stime

    def share(self, res: dict) -> float:
        used = res.pop("_ru") - self.last
        self.last += used
        # redis-benchmark / sse.py children between wrk runs are also counted; each measured run resets first
        return round(used / res.pop("_wall"), 3)


def run_wrk(meter: CPUMeter, port: int, script: str, seconds: float, label: str, key: str | None = None) -> dict:
    meter.share(wrk(port, script, 1, CONNS, key))  # warm-up, discarded (also resets the CPU meter)
    res = wrk(port, script, seconds, key=key)
    res["generator_cpu"] = meter.share(res)
    log(f"{label} {script}: {res['rps']:.0f} req/s p99 {res['p99_ms']:.2f} ms errors {res['errors_total']} "
        f"(wrk used {res['generator_cpu']:.0%} of its core)")
    return res


def redis_bench(meter: CPUMeter, seconds_hint: float) -> dict:
    """redis-server with AOF appendfsync always (durable writes, like Stigmer's PUT), GET/SET/INCR at -c 64."""
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    srv = Server("redis", ["redis-server", "--port", str(port), "--dir", tmp, "--save", "", "--appendonly", "yes",
                           "--appendfsync", "always", "--daemonize", "no"], port)
    out = {}
    try:
        for test, n in (("get", 400_000), ("set", 200_000), ("incr", 200_000)):
            argv = pinned(LOAD_CORE, ["redis-benchmark", "-p", str(port), "-c", str(CONNS), "-n", str(n), "-r", "100",
                                      "-t", test, "--csv", "-q"])
            t0 = time.monotonic()
            text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            wall = time.monotonic() - t0
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            rows = [l for l in text.splitlines() if l and not l.startswith('"test"')]
            cells = [c.strip('"') for c in rows[-1].split('","')]
            out[test] = {"rps": float(cells[1]), "p50_ms": float(cells[4]), "p99_ms": float(cells[6]),
                         "max_ms": float(cells[7]), "requests": n, "_ru": ru.ru_utime + ru.ru_stime, "_wall": wall}
            out[test]["generator_cpu"] = meter.share(out[test])
            log(f"redis {test}: {out[test]['rps']:.0f} req/s p99 {out[test]['p99_ms']:.2f} ms")
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def stigmer_server(tag: str, key: str | None = None, database_url: str | None = None) -> tuple[Server, str]:
    data = tempfile.mkdtemp(prefix=f"bench-stigmer-{tag}-")
    port = free_port()
    env = {"STIGMER_LOG_LEVEL": "warning", **({"STIGMER_ADMIN_KEY": key} if key else {}),
           **({"STIGMER_DATABASE_URL": database_url} if database_url else {})}
    return Server("stigmer", [str(STIGMER), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data],
                  port, env=env, ready_path="/healthz"), data


def sse_client(args: list[str]) -> dict:
    argv = pinned(LOAD_CORE, [sys.executable, str(BENCH / "sse.py"), *args])
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=_raise_nofile)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    return {"cpu": cpu, "nproc": os.cpu_count(), "mem": mem, "kernel": platform.release(),
            "python": platform.python_version(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit + ("+dirty" if dirty else ""), "wrk": wrk_v, "load": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="everything: longer runs, 10,000 watchers and idle streams")
    ap.add_argument("--seconds", type=float, help="seconds per wrk run (quick 8, full 20)")
    a = ap.parse_args()
    secs = a.seconds or (20 if a.full else 8)
    _raise_nofile()
    RESULTS.mkdir(exist_ok=True)
    meter = CPUMeter()
    res: dict = {"mode": "full" if a.full else "quick", "seconds": secs, "conns": CONNS, "machine": machine()}
    t_begin = time.monotonic()

    # 1. the generator's ceiling
    port = free_port()
    floor = Server("floor", [str(PEER_PY if PEER_PY.exists() else sys.executable), str(BENCH / "peers" / "floor.py"),
                             str(port)], port)
    try:
        res["floor"] = {"get": run_wrk(meter, port, "get", secs, "floor")}
    finally:
        floor.stop()

    # 2. Stigmer, key scenarios
    srv, data = stigmer_server("kv")
    try:
        preload(srv.port)
        res["stigmer"] = {s: run_wrk(meter, srv.port, s, secs, "stigmer")
                          for s in ("get", "put", "incr", "cas", "list", "mix")}
        res["stigmer"]["rss_kib_after"] = int(open(f"/proc/{srv.pid}/status").read().split("VmRSS:")[1].split()[0])
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)

    # 2b. the same hot paths with keys in force: every request is authenticated by the edge
    srv, data = stigmer_server("keyed", BENCH_KEY)
    try:
        preload(srv.port, BENCH_KEY)
        res["stigmer_keyed"] = {s: run_wrk(meter, srv.port, s, secs, "stigmer keyed", BENCH_KEY) for s in ("get", "put")}
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)

    # 2c. the PostgreSQL store: one replica, two replicas, and raw psycopg at the same concurrency (its floor)
    res["postgres"] = postgres_bench(meter, secs)

    # 3. the typical Python baseline
    db_dir = tempfile.mkdtemp(prefix="bench-fastapi-")
    port = free_port()
    fa = Server("fastapi", [str(PEER_PY), "-m", "uvicorn", "fastapi_kv:app", "--host", "127.0.0.1", "--port", str(port),
                            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
                port, env={"STIGMER_PEER_DB": f"{db_dir}/peer.db", "PYTHONPATH": str(BENCH / "peers")})
    try:
        preload_fastapi(port)
        res["fastapi"] = {s: run_wrk(meter, port, s, secs, "fastapi") for s in ("get", "put", "mix")}
    finally:
        fa.stop()
        shutil.rmtree(db_dir, ignore_errors=True)

    # 4. the limit: Redis
    res["redis"] = redis_bench(meter, secs)

    # 5. change streams
    n_watch = 10_000 if a.full else 1_000
    n_idle = [1_000, 10_000] if a.full else [1_000]
    srv, data = stigmer_server("watch")
    try:
        res["server_nofile"] = srv.nofile()
        log(f"fan-out: {n_watch} watchers")
        rate = 5 if a.full else 20
        res["fanout"] = sse_client(["fanout", "--port", str(srv.port), "--watchers", str(n_watch), "--rate", str(rate),
                                    "--seconds", "10"])
        log(f"fan-out: {res['fanout']}")
        if a.full:
            res["fanout_1000"] = sse_client(["fanout", "--port", str(srv.port), "--watchers", "1000", "--rate", "20",
                                             "--seconds", "10"])
            log(f"fan-out 1000: {res['fanout_1000']}")
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
    res["idle"] = {}
    for n in n_idle:
        srv, data = stigmer_server("idle")  # a fresh process per size, so RSS before is comparable
        try:
            http(srv.port, "PUT", "/v1/kv/idle/x", b"1")
            sse_client(["idle", "--port", str(srv.port), "--conns", "50", "--server-pid", str(srv.pid), "--settle", "0.5"])
            res["idle"][str(n)] = sse_client(["idle", "--port", str(srv.port), "--conns", str(n),
                                              "--server-pid", str(srv.pid)])
            log(f"idle {n}: {res['idle'][str(n)]}")
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)
    res["elapsed_s"] = round(time.monotonic() - t_begin, 1)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(res, indent=2))
    (RESULTS / "latest.md").write_text(render(res))
    log(f"done in {res['elapsed_s']} s: bench/results/latest.md")


PG_ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_database() -> str | None:
    """A fresh database for this run, or None (with the reason logged) when PostgreSQL is not there."""
    try:
        import psycopg
    except ImportError:
        log("postgres: psycopg is not installed (make bench installs stigmer[postgres]); rows skipped")
        return None
    name = f"stigmer_bench_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        log(f"postgres: not reachable at {PG_ADMIN_URL} ({exc}); rows skipped")
        return None
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(url: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _pg_floor(url: str, mode: str, seconds: float) -> dict:
    argv = pinned(SERVER_CORE, [sys.executable, str(BENCH / "peers" / "pg_floor.py"), url, mode, str(seconds), str(CONNS)])
    res = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    log(f"psycopg floor {mode}: {res['rps']:.0f} req/s p99 {res['p99_ms']:.2f} ms")
    return res


def _wrk_pair(meter: CPUMeter, ports: list[int], script: str, seconds: float) -> dict:
    """Two wrk processes at once, CONNS/2 connections each, one per replica; rates add up."""
    meter.share(wrk(ports[0], script, 1, CONNS // 2))
    argvs = []
    for port in ports:
        src = (LUA / "common.lua").read_text() + "\n" + (LUA / f"{script}.lua").read_text()
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(src)
        argvs.append(pinned(LOAD_CORE, ["wrk", "-t1", f"-c{CONNS // 2}", f"-d{seconds}s", "--timeout", "10s", "-s",
                                        f.name, f"http://127.0.0.1:{port}"]))
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in argvs]
    outs = [json.loads(re.search(r"BENCH_JSON (\{.*\})", p.communicate()[0].decode()).group(1)) for p in procs]
    for a in argvs:
        os.unlink(a[a.index("-s") + 1])
    meter.reset()  # two generators at once: their CPU share is not reported
    res = {"rps": sum(o["rps"] for o in outs), "p50_ms": max(o["p50_ms"] for o in outs),
           "p99_ms": max(o["p99_ms"] for o in outs),
           "errors_total": sum(sum(o["errors"].values()) - o.get("conflicts", 0) for o in outs)}
    log(f"stigmer x2 replicas {script}: {res['rps']:.0f} req/s p99 {res['p99_ms']:.2f} ms errors {res['errors_total']}")
    return res


def postgres_bench(meter: CPUMeter, secs: float) -> dict | None:
    url = _pg_database()
    if url is None:
        return None
    out: dict = {}
    try:
        srv, data = stigmer_server("pg1", database_url=url)
        try:
            preload(srv.port)
            out["one"] = {s: run_wrk(meter, srv.port, s, secs, "stigmer on postgres") for s in ("get", "put")}
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)
        pair = [stigmer_server(f"pg2-{i}", database_url=url) for i in range(2)]
        try:
            out["two"] = {s: _wrk_pair(meter, [p[0].port for p in pair], s, secs) for s in ("get", "put")}
        finally:
            for srv, data in pair:
                srv.stop()
                shutil.rmtree(data, ignore_errors=True)
        out["floor"] = {mode: _pg_floor(url, mode, secs) for mode in ("get", "put")}
    finally:
        _drop_pg_database(url)
    return out


def preload_fastapi(port: int) -> None:
    for k in range(100):
        http(port, "PUT", f"/v1/kv/bench/hot{k}", b'{"n":%d,"agent":"bench","ok":true}' % k)


# ---- report ---------------------------------------------------------------------------------------------------

def _f(x: float | None, unit: str = "") -> str:
    if x is None:
        return "–"
    if unit == "ms":
        return f"{x:.2f} ms"
    return f"{x:,.0f}{unit}"


def _wrk_cell(r: dict) -> str:
    s = f"{r['rps']:,.0f}/s · p50 {r['p50_ms']:.2f} · p99 {r['p99_ms']:.2f}"
    if "p999_ms" in r:
        s += f" · p99.9 {r['p999_ms']:.2f} ms"
    else:
        s += " ms"
    if r.get("errors_total"):
        s += f" · **{r['errors_total']} errors**"
    return s


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("✅ yes" if ok else "❌ no")


def render(res: dict) -> str:
    m, st, fa, rd, fl = res["machine"], res["stigmer"], res["fastapi"], res["redis"], res["floor"]
    rows: list[tuple[str, str, str, str, str, str]] = []

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}×" if b else "–"

    g, p = st["get"], st["put"]
    rows.append(("key GET (100 hot keys)", _wrk_cell(g), "FastAPI+SQLAlchemy: " + _wrk_cell(fa["get"]),
                 ratio(g["rps"], fa["get"]["rps"]), "≥ 20,000/s, p99 ≤ 10 ms, ≥ 2.5× FastAPI",
                 _met(g["rps"] >= 20000 and g["p99_ms"] <= 10 and g["rps"] >= 2.5 * fa["get"]["rps"])))
    rows.append(("key GET vs the limit", _wrk_cell(g), f"Redis GET: {rd['get']['rps']:,.0f}/s · p99 {rd['get']['p99_ms']:.2f} ms",
                 ratio(g["rps"], rd["get"]["rps"]), "(how far from the limit)", "–"))
    rows.append(("durable PUT (10,000 keys)", _wrk_cell(p), "FastAPI+SQLAlchemy: " + _wrk_cell(fa["put"]),
                 ratio(p["rps"], fa["put"]["rps"]), "≥ 12,000/s, p99 ≤ 10 ms, ≥ 2.5× FastAPI",
                 _met(p["rps"] >= 12000 and p["p99_ms"] <= 10 and p["rps"] >= 2.5 * fa["put"]["rps"])))
    rows.append(("durable PUT vs the limit", _wrk_cell(p),
                 f"Redis SET, AOF fsync always: {rd['set']['rps']:,.0f}/s · p99 {rd['set']['p99_ms']:.2f} ms",
                 ratio(p["rps"], rd["set"]["rps"]), "(how far from the limit)", "–"))
    for name, r in (res.get("stigmer_keyed") or {}).items():
        base = g if name == "get" else p
        rows.append((f"key {name.upper()} with an API key (vs open mode)", _wrk_cell(r), "Stigmer, open mode: " + _wrk_cell(base),
                     ratio(r["rps"], base["rps"]), "(the edge's key lookup)", "–"))
    i = st["incr"]
    rows.append(("incr, one hot key", _wrk_cell(i), f"Redis INCR (fsync always): {rd['incr']['rps']:,.0f}/s · p99 {rd['incr']['p99_ms']:.2f} ms",
                 ratio(i["rps"], rd["incr"]["rps"]), "–", "–"))
    c = st["cas"]
    rows.append(("compare-and-set retry loop, one hot key",
                 f"{c['cas_ok_per_s']:,.0f} successful CAS/s · {c['rps']:,.0f} req/s · {c['conflicts']:,} conflicts · "
                 f"p99 {c['p99_ms']:.2f} ms · {c.get('unexpected', 0)} unexpected",
                 "–", "–", "–", "–"))
    rows.append(("list by prefix (100 entries with values)", _wrk_cell(st["list"]), "–", "–", "–", "–"))
    mx = st["mix"]
    rows.append(("90/10 read/write mix", _wrk_cell(mx), "FastAPI+SQLAlchemy: " + _wrk_cell(fa["mix"]),
                 ratio(mx["rps"], fa["mix"]["rps"]), "–", "–"))
    for key in ("fanout", "fanout_1000"):
        f = res.get(key)
        if not f:
            continue
        clean = f["lost"] == 0 and f["duplicated"] == 0
        target_ok = clean and f["p99_ms"] is not None and f["p99_ms"] <= 250
        rows.append((f"watch fan-out: {f['watchers']:,} watchers, {f['writes_per_s']:g} writes/s",
                     f"delivery p50 {_f(f['p50_ms'], 'ms')} · p99 {_f(f['p99_ms'], 'ms')} · max {_f(f['max_ms'], 'ms')} · "
                     f"{f['delivered']:,}/{f['expected_deliveries']:,} delivered · lost {f['lost']} · dup {f['duplicated']}",
                     "–", "–", "p99 ≤ 250 ms (at 10,000), lost = dup = 0",
                     _met(target_ok) if f["watchers"] >= 10_000 else ("(quick set: 1,000) " + _met(target_ok))))
    for n, r in res["idle"].items():
        rows.append((f"{int(n):,} idle SSE connections", f"{r['kib_per_conn']:.1f} KiB/conn "
                     f"(RSS {r['rss_before_kib'] / 1024:.0f} → {r['rss_after_kib'] / 1024:.0f} MiB, {r['open']:,} open)",
                     "–", "–", "≤ 20 KiB/conn", _met(r["kib_per_conn"] <= 20 and r["open"] == r["conns"])))
    pg = res.get("postgres")
    if pg:
        for name in ("get", "put"):
            floor_cell = f"raw psycopg, {res['conns']} connections: {_wrk_cell(pg['floor'][name])}"
            label = "key GET (100 hot keys)" if name == "get" else "durable PUT (10,000 keys)"
            rows.append((f"PostgreSQL store, one replica: {label}", _wrk_cell(pg["one"][name]), floor_cell,
                         ratio(pg["one"][name]["rps"], pg["floor"][name]["rps"]), "(vs this store's floor)", "–"))
            rows.append((f"PostgreSQL store, two replicas: {label}", _wrk_cell(pg["two"][name]), floor_cell,
                         ratio(pg["two"][name]["rps"], pg["floor"][name]["rps"]), "(vs this store's floor)", "–"))
    gcpu = max(r.get("generator_cpu", 0) for r in [*st.values()] if isinstance(r, dict))
    lines = [
        "# Stigmer benchmark — latest run",
        "",
        f"- **Date** {m['date']} · **commit** `{m['commit']}` · **mode** {res['mode']} ({res['seconds']:g} s per HTTP run, "
        f"{res['conns']} connections, wrk 1 thread) · total {res['elapsed_s']:g} s",
        f"- **Machine** {m['cpu']} · {m['nproc']} cores · {m['mem']} RAM · Linux {m['kernel']} · Python {m['python']} · "
        f"load average at start {m['load'][0]:.2f}",
        f"- **Pinning** every server (Stigmer, FastAPI, Redis, the ceiling responder) on core 0 with `taskset -c 0`; "
        f"every load generator (wrk, redis-benchmark, `bench/sse.py`) on core 1. Server fd limit {res.get('server_nofile')}.",
        f"- **Generator ceiling** wrk against a constant-response uvloop responder (`bench/peers/floor.py`): "
        f"{_wrk_cell(fl['get'])} — {fl['get']['rps'] / g['rps']:.1f}× Stigmer's GET rate; during Stigmer runs wrk used at "
        f"most {gcpu:.0%} of its core, so the generator is not the bottleneck.",
        "- **Peers** Redis {rv} with AOF `appendfsync always`; FastAPI + SQLAlchemy 2 async (aiosqlite), WAL, "
        "`synchronous=FULL`, one transaction per request (`bench/peers/`). Same machine, same run; other jobs share "
        "the machine, so compare ratios, not absolute figures.".format(rv=_redis_version()),
        "",
        "| scenario | Stigmer | peer | ratio | target | met? |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "Latencies are wrk's (p50 · p99 · p99.9, ms); errors are connect/read/write/timeout errors and non-2xx "
        "responses (409s of the CAS loop are retries, counted separately). Raw figures: `bench/results/latest.json` "
        "(not committed). How to read this: `docs/benchmarks.md`.",
        "",
    ]
    return "\n".join(lines)


def _redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\S+)", out)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    main()
