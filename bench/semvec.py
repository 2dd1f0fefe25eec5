"""semvec /v1/run and /v1/store on a session holding 10,000 memories (hash-v1 embedder, SQLite store).

The sessions are filled through /v1/store itself (8 client threads), so their tiers are what turns make:
64 short, 512 medium, 4,096 long term, the rest archived (retrieval reads the 4,672 retrievable ones).
Then wrk: one connection (the latency of one request at a time) and 64 connections (throughput, as the other scenarios), each after a
1 s warm-up. The rate limit is off (`STIGMER_SEMVEC_RATE=0`).
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading

import serving
from harness import CPUMeter, log, run_wrk, wrk

MEMORIES = 10_000
TOPICS = ["billing database postgres", "deploy kubernetes gke", "retry policy backoff", "cache eviction lru",
          "auth tokens scopes", "queue backlog workers", "search ranking bm25", "metrics export prometheus",
          "backup restore snapshots", "rate limits buckets"]


def fill(port: int, session: str, n: int, threads: int = 8) -> None:
    def post(conn: http.client.HTTPConnection, path: str, body: dict) -> None:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status}")

    c = http.client.HTTPConnection("127.0.0.1", port)
    post(c, "/v1/session/create", {"session_id": session})

    def work(start: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for k in range(start, n, threads):
            post(conn, "/v1/store", {"session_id": session, "response":
                                     f"note {k}: {TOPICS[k % len(TOPICS)]} detail {k * 7919 % 1000} owner team{k % 23}"})

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def semvec_rows(meter: CPUMeter, secs: float) -> dict:
    srv, data = serving.start_stigmer("uvicorn", "semvec", {"STIGMER_SEMVEC_RATE": "0"})
    out: dict = {"memories": MEMORIES}
    try:
        log(f"semvec: filling two sessions with {MEMORIES} memories each through /v1/store")
        fill(srv.port, "bench", MEMORIES)
        fill(srv.port, "store", MEMORIES)
        for name, script in (("run", "semvec_run"), ("store", "semvec_store")):
            meter.share(wrk(srv.port, script, 1, 1))
            single = wrk(srv.port, script, secs, conns=1)
            log(f"semvec {name} (1 conn): p50 {single['p50_ms']:.2f} ms p99 {single['p99_ms']:.2f} ms "
                f"{single['rps']:.0f} req/s errors {single['errors_total']}")
            out[f"{name}_1"] = single
            out[f"{name}_64"] = run_wrk(meter, srv, script, secs, f"semvec {name} (64 conns)")
        out["rss_kib_after"] = srv.rss_kib()
        return out
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
