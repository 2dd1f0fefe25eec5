"""The PostgreSQL rows: Stigmer on the PostgreSQL store with one and two replicas, and raw psycopg (its floor)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from harness import BENCH, CONNS, SERVER_CORE, CPUMeter, _lua, http, log, pinned, preload, run_wrk, wrk, wrk_argv
from serving import start_stigmer


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
        argvs.append(wrk_argv(port, _lua(script), seconds, CONNS // 2))
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
        srv, data = start_stigmer("uvicorn", "pg1", {"STIGMER_DATABASE_URL": url})
        try:
            preload(srv.port)
            out["one"] = {"get": run_wrk(meter, srv, "get", secs, "stigmer on postgres")}
            # token verification on this store (before the PUT run): every request reads its token's row
            minted = json.loads(http(srv.port, "POST", "/v1/tokens", json.dumps(
                {"name": "bench", "scopes": ["read"], "prefixes": ["bench"]}).encode()))
            out["one"]["token_get"] = run_wrk(meter, srv, "get", secs, "stigmer on postgres, token", minted["secret"])
            out["one"]["put"] = run_wrk(meter, srv, "put", secs, "stigmer on postgres")
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)
        pair = [start_stigmer("uvicorn", f"pg2-{i}", {"STIGMER_DATABASE_URL": url}) for i in range(2)]
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


