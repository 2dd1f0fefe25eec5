"""Stigmer benchmark: every scenario and its peers in one run on one machine, reported as ratios.

  python bench/run.py            # quick set (about 6 minutes): make bench
  python bench/run.py --full     # everything, incl. 10,000 watchers and 10,000 idle SSE: make bench-full
  python bench/run.py --only search   # conversation search and appends alone → bench/results/search.md

Servers (Stigmer, the bare-ASGI floors, etcd, the FastAPI peer, redis-server, the generator-ceiling responder)
run pinned to core 0; load generators (wrk, redis-benchmark, bench/sse.py) run pinned to core 1. Writes
bench/results/<stamp>.json, bench/results/latest.json and bench/results/latest.md.

Modules: harness.py (servers, wrk, CPU meters, pinning), peer_servers.py (the peers), serving.py (the app on
uvicorn and on granian, and the guarantee probes), pg_rows.py (the PostgreSQL store), search.py (conversation
search against SQLite FTS5, and appends), report.py (latest.md, search.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_servers  # noqa: E402
import serving  # noqa: E402
from harness import (BENCH, BENCH_KEY, CONNS, RESULTS, SERVER_CORE, CPUMeter, http, log, machine, pinned,  # noqa: E402
                     preload, raise_nofile, run_wrk, sse_client, version_of, VENV_BIN)
from pg_rows import postgres_bench  # noqa: E402
from report import render, render_search  # noqa: E402
from semvec import semvec_rows  # noqa: E402

# The bench servers hold 10,000 streams from one client address: lift the per-client stream cap.
STREAMS_ENV = {"STIGMER_MAX_STREAMS_PER_CLIENT": "20000"}


def stigmer_rows(meter: CPUMeter, secs: float) -> dict:
    srv, data = serving.start_stigmer("uvicorn", "kv")
    try:
        preload(srv.port)
        preload(srv.port, n=1000, prefix="l")
        out = {s: run_wrk(meter, srv, s, secs, "stigmer") for s in ("get", "put", "incr", "cas", "list", "list1000",
                                                                     "mix")}
        out["rss_kib_after"] = srv.rss_kib()
        return out
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


def keyed_rows(meter: CPUMeter, secs: float) -> tuple[dict, dict]:
    """The key GET and PUT with an API key; then token verification: the key GET with a capability token,
    on the same server in the same run (a token's row is read on every request, a key's is cached 1 s)."""
    srv, data = serving.start_stigmer("uvicorn", "keyed", {"STIGMER_ADMIN_KEY": BENCH_KEY})
    try:
        preload(srv.port, BENCH_KEY)
        minted = json.loads(http(srv.port, "POST", "/v1/tokens", json.dumps(
            {"name": "bench", "scopes": ["read"], "prefixes": ["bench"]}).encode(), BENCH_KEY))
        # Both GETs before the PUT run, whose WAL would weigh on whichever GET came after it.
        keyed = {"get": run_wrk(meter, srv, "get", secs, "stigmer keyed", BENCH_KEY)}
        token = {"get": run_wrk(meter, srv, "get", secs, "stigmer token", minted["secret"])}
        keyed["put"] = run_wrk(meter, srv, "put", secs, "stigmer keyed", BENCH_KEY)
        return keyed, token
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


def lease_rows(meter: CPUMeter, secs: float) -> dict:
    """Lease acquire/release on one contended resource and on many resources."""
    srv, data = serving.start_stigmer("uvicorn", "leases")
    try:
        return {s: run_wrk(meter, srv, s, secs, "stigmer leases") for s in ("lease_one", "lease_many")}
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


def stream_rows(res: dict, full: bool) -> None:
    n_watch = 10_000 if full else 1_000
    srv, data = serving.start_stigmer("uvicorn", "watch", STREAMS_ENV)
    try:
        res["server_nofile"] = srv.nofile()
        log(f"fan-out: {n_watch} watchers")
        rate = 5 if full else 20
        res["fanout"] = sse_client(["fanout", "--port", str(srv.port), "--watchers", str(n_watch), "--rate", str(rate),
                                    "--seconds", "10"])
        log(f"fan-out: {res['fanout']}")
        if full:
            res["fanout_1000"] = sse_client(["fanout", "--port", str(srv.port), "--watchers", "1000", "--rate", "20",
                                             "--seconds", "10"])
            log(f"fan-out 1000: {res['fanout_1000']}")
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
    res["idle"] = {}
    for n in ([1_000, 10_000] if full else [1_000]):
        srv, data = serving.start_stigmer("uvicorn", "idle", STREAMS_ENV)  # a fresh process per size
        try:
            http(srv.port, "PUT", "/v1/kv/idle/x", b"1")
            sse_client(["idle", "--port", str(srv.port), "--conns", "50", "--server-pid", str(srv.pid), "--settle", "0.5"])
            res["idle"][str(n)] = sse_client(["idle", "--port", str(srv.port), "--conns", str(n),
                                              "--server-pid", str(srv.pid)])
            log(f"idle {n}: {res['idle'][str(n)]}")
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)


def search_rows() -> dict:
    """Conversation search at 100,000 messages and message appends (bench/search.py), pinned to the server core."""
    log("search: building 100,000 messages, then queries and appends")
    out = subprocess.run(pinned(SERVER_CORE, [sys.executable, str(BENCH / "search.py")]), capture_output=True,
                         text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    for kind, r in res["search"].items():
        log(f"search {kind}: p50 {r['ours']['p50_ms']:.2f} ms (FTS5 {r['floor']['p50_ms']:.2f}), "
            f"p99 {r['ours']['p99_ms']:.2f} ms (FTS5 {r['floor']['p99_ms']:.2f})")
    return res


def versions() -> dict:
    py = peer_servers.peer_python()
    return {"redis": peer_servers.redis_version(), "etcd": peer_servers.etcd_version(),
            "uvicorn": version_of([py, "-m", "uvicorn", "--version"], r"uvicorn (\S+)"),
            "hypercorn": version_of([py, "-m", "pip", "show", "hypercorn"], r"Version: (\S+)"),
            "granian": version_of([str(VENV_BIN / "granian"), "--version"], r"(\d+\.\d+\.\d+)")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="everything: longer runs, 10,000 watchers and idle streams")
    ap.add_argument("--seconds", type=float, help="seconds per wrk run (quick 8, full 20)")
    ap.add_argument("--only", help="comma-separated sections to run (for trying the harness): "
                    "ceiling,floors,stigmer,keyed,leases,semvec,serving,probes,postgres,etcd,fastapi,redis,streams,search")
    a = ap.parse_args()
    secs = a.seconds or (20 if a.full else 8)
    only = set(a.only.split(",")) if a.only else None
    raise_nofile()
    RESULTS.mkdir(exist_ok=True)
    meter = CPUMeter()
    res: dict = {"mode": "full" if a.full else "quick", "seconds": secs, "conns": CONNS, "machine": machine(),
                 "versions": versions(), "default_server": "uvicorn"}
    t_begin = time.monotonic()

    def want(section: str) -> bool:
        return only is None or section in only

    if want("ceiling"):
        res["ceiling"] = peer_servers.generator_ceiling(meter, secs)
    if want("floors"):
        res["floors"] = peer_servers.asgi_floors(meter, secs)
    if want("stigmer"):
        res["stigmer"] = stigmer_rows(meter, secs)
    if want("keyed"):
        res["stigmer_keyed"], res["stigmer_token"] = keyed_rows(meter, secs)
    if want("leases"):
        res["leases"] = lease_rows(meter, secs)
    if want("semvec"):
        res["semvec"] = semvec_rows(meter, secs)
    if want("serving") and serving.available():
        res["serving"] = serving.measure(meter, secs)
    if want("probes") and serving.available():
        res["probes"] = serving.probes()
    if want("postgres"):
        res["postgres"] = postgres_bench(meter, secs)
    if want("etcd"):
        res["etcd"] = peer_servers.etcd_bench(meter, secs)
    if want("fastapi"):
        res["fastapi"] = peer_servers.fastapi_bench(meter, secs)
    if want("redis"):
        res["redis"] = peer_servers.redis_bench(meter)
    if want("streams"):
        stream_rows(res, a.full)
    if want("search"):
        res["search"] = search_rows()
    res["elapsed_s"] = round(time.monotonic() - t_begin, 1)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(res, indent=2))
    if "search" in res:  # committed on its own too, so `--only search` can refresh it
        (RESULTS / "search.md").write_text(render_search(res))
    if only is None:
        (RESULTS / "latest.md").write_text(render(res))
        log(f"done in {res['elapsed_s']} s: bench/results/latest.md")
    else:
        log(f"done in {res['elapsed_s']} s (partial run: bench/results/latest.json only)")


if __name__ == "__main__":
    main()
