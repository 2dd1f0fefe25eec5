"""semvec /v1/run and /v1/store on a session holding 10,000 memories (hash-v1 embedder, SQLite store).

The session is filled by one import (`POST /v1/session/bench/import` of an export the bench completes with
10,000 memories embedded by hash-v1 in this process), its tiers as 10,000 turns leave them: 64 short, 512
medium, 4,096 long term, the rest archived (retrieval reads the 4,672 retrievable ones); its histories full.
/v1/store then adds turns to the same session while it is measured.
Then wrk: one connection (the latency of one request at a time) and 64 connections (throughput, as the other scenarios), each after a
1 s warm-up. The rate limit is off (`STIGMER_SEMVEC_RATE=0`).
"""

from __future__ import annotations

import http.client
import json
import shutil

import numpy as np

import serving
from harness import CPUMeter, log, run_wrk, wrk

MEMORIES = 10_000
TOPICS = ["billing database postgres", "deploy kubernetes gke", "retry policy backoff", "cache eviction lru",
          "auth tokens scopes", "queue backlog workers", "search ranking bm25", "metrics export prometheus",
          "backup restore snapshots", "rate limits buckets"]


def post(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    except BrokenPipeError:  # the server answered before reading the whole body: say what it answered
        pass
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
    return json.loads(data)


def fill(port: int, session: str, n: int) -> None:
    from stigmer.engine.sessions.portable import checksum
    from stigmer.engine.sessions.work import memory_hash
    from stigmer.support.embeddings import HashEmbedder

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    post(conn, "/v1/session/create", {"session_id": session})
    conn.request("GET", f"/v1/session/{session}/export")
    state = json.loads(conn.getresponse().read())["state_dict"]
    texts = [f"note {k}: {TOPICS[k % len(TOPICS)]} detail {k * 7919 % 1000} owner team{k % 23}" for k in range(n)]
    vectors = HashEmbedder().vectors(texts)
    live = 64 + 512 + 4096
    tiers = ["archive"] * max(0, n - live) + ["long_term"] * 4096 + ["medium_term"] * 512 + ["short_term"] * 64
    state["memories"] = [
        {"id": f"01900000-0000-7000-8000-{k:012d}", "semantic_hash": memory_hash(t), "text": t, "embedding": np.round(v, 6).tolist(),
         "embedding_source": "server", "tier": tier, "importance": 1.0, "access_count": 0, "timestamp": 1.7e9 + k,
         "created_turn": k + 1, "last_access_turn": 0, "meta": {}}
        for k, (t, v, tier) in enumerate(zip(texts, vectors, tiers[-n:]))]
    state["interaction_count"] = n
    state["semantic_state"] = vectors[-1].tolist()
    for h in ("beta_history", "similarity_history", "fsm_history", "norm_history"):
        state[h] = [0.85] * 1000
    state["phase_history"] = ["exploration"] * 1000
    state["checksum"] = checksum(state)
    conn.close()  # building the payload outlasts the keep-alive timeout: a new connection for the import
    post(http.client.HTTPConnection("127.0.0.1", port, timeout=600), f"/v1/session/{session}/import",
         {"state_dict": state})


def semvec_rows(meter: CPUMeter, secs: float) -> dict:
    srv, data = serving.start_stigmer("uvicorn", "semvec", {"STIGMER_SEMVEC_RATE": "0"})
    out: dict = {"memories": MEMORIES}
    try:
        log(f"semvec: importing a session of {MEMORIES} memories")
        fill(srv.port, "bench", MEMORIES)
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
