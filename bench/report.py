"""bench/results/latest.md from one run's figures: the targets table, the serving stack, every scenario."""

from __future__ import annotations

# The targets of issue 10, each judged from figures of the same run (ratios) or absolute where it must be.
GET_VS_FLOOR, PUT_VS_REDIS, INCR_VS_REDIS, VS_ETCD = 0.7, 0.3, 0.3, 3.0
P99_KEY_MS, P99_LIST_MS, FANOUT_P99_MS, IDLE_KIB = 10.0, 20.0, 250.0, 12.0


def _f(x: float | None, unit: str = "") -> str:
    if x is None:
        return "–"
    if unit == "ms":
        return f"{x:.2f} ms"
    return f"{x:,.0f}{unit}"


def cell(r: dict | None) -> str:
    if not r:
        return "–"
    s = f"{r['rps']:,.0f}/s · p50 {r['p50_ms']:.2f} · p99 {r['p99_ms']:.2f}"
    s += f" · p99.9 {r['p999_ms']:.2f} ms" if "p999_ms" in r else " ms"
    if r.get("errors_total"):
        s += f" · **{r['errors_total']} errors**"
    return s


def cpu(r: dict | None) -> str:
    return f"{r['cpu_us_per_req']:.0f}" if r and r.get("cpu_us_per_req") is not None else "–"


def met(ok: bool | None) -> str:
    return "–" if ok is None else ("✅ met" if ok else "❌ not met")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def _cpu_ratio(st: dict | None, peer: dict | None) -> str:
    """Peer CPU per request ÷ Stigmer's: above 1 means Stigmer spends less CPU on each request."""
    a, b = (st or {}).get("cpu_us_per_req"), (peer or {}).get("cpu_us_per_req")
    return f"{b / a:.2f}×" if a and b else "–"


def cpu_met(st: dict | None, peer: dict | None, want: float) -> str:
    """The same ratio target judged on CPU per request (peer's ÷ Stigmer's), which the machine's load moves less."""
    a, b = (st or {}).get("cpu_us_per_req"), (peer or {}).get("cpu_us_per_req")
    return met(b / a >= want) if a and b else "–"


def targets(res: dict) -> list[tuple[str, ...]]:
    st, rd, et = res["stigmer"], res["redis"], res.get("etcd")
    fl = {k: v for k, v in res["floors"].items() if k in ("uvicorn", "granian")}
    g, p, inc, ls = st["get"], st["put"], st["incr"], st["list"]
    fast = max(fl.values(), key=lambda r: r["rps"])
    fast_name = max(fl, key=lambda k: fl[k]["rps"])
    rows = [
        ("key GET ≥ 0.7× the faster bare-ASGI floor", cell(g), f"ASGI floor on {fast_name}: {cell(fast)}",
         ratio(g["rps"], fast["rps"]), f"{cpu(g)} · {cpu(fast)}", _cpu_ratio(g, fast),
         met(g["rps"] >= GET_VS_FLOOR * fast["rps"]), cpu_met(g, fast, GET_VS_FLOOR)),
        ("durable PUT ≥ 0.3× Redis SET (`appendfsync always`)", cell(p), f"Redis SET: {cell(rd['set'])}",
         ratio(p["rps"], rd["set"]["rps"]), f"{cpu(p)} · {cpu(rd['set'])}", _cpu_ratio(p, rd["set"]),
         met(p["rps"] >= PUT_VS_REDIS * rd["set"]["rps"]), cpu_met(p, rd["set"], PUT_VS_REDIS)),
        ("incr on one hot key ≥ 0.3× Redis INCR", cell(inc), f"Redis INCR: {cell(rd['incr'])}",
         ratio(inc["rps"], rd["incr"]["rps"]), f"{cpu(inc)} · {cpu(rd['incr'])}", _cpu_ratio(inc, rd["incr"]),
         met(inc["rps"] >= INCR_VS_REDIS * rd["incr"]["rps"]), cpu_met(inc, rd["incr"], INCR_VS_REDIS)),
    ]
    for name, r, op in (("GET", g, "get"), ("PUT", p, "put")):
        e = (et or {}).get(op)
        rows.append((f"key {name} ≥ 3× etcd's HTTP API", cell(r),
                     f"etcd {'range' if op == 'get' else 'put'}: {cell(e)}" if e else "etcd: not run",
                     ratio(r["rps"], e["rps"] if e else None), f"{cpu(r)} · {cpu(e)}", _cpu_ratio(r, e),
                     met(r["rps"] >= VS_ETCD * e["rps"]) if e else met(None), cpu_met(r, e, VS_ETCD)))
    for name, r, lim in (("key GET", g, P99_KEY_MS), ("durable PUT", p, P99_KEY_MS),
                         ("list of 100 entries", ls, P99_LIST_MS)):
        rows.append((f"{name} p99 ≤ {lim:g} ms", cell(r), "–", "–", cpu(r), "–", met(r["p99_ms"] <= lim), "–"))
    f = res.get("fanout")
    if f:
        ok = f["lost"] == 0 and f["duplicated"] == 0 and f["p99_ms"] is not None and f["p99_ms"] <= FANOUT_P99_MS
        judged = f["watchers"] >= 10_000
        rows.append(("watch fan-out to 10,000 watchers: p99 ≤ 250 ms, 0 lost, 0 duplicated"
                     + ("" if judged else f" (quick set: {f['watchers']:,} watchers)"),
                     f"{f['watchers']:,} watchers, {f['writes_per_s']:g} writes/s: p99 {_f(f['p99_ms'], 'ms')} · "
                     f"lost {f['lost']} · dup {f['duplicated']}", "–", "–", "–", "–",
                     met(ok) if judged else f"{met(ok)} at {f['watchers']:,} (judged by `make bench-full`)", "–"))
    for n, r in res["idle"].items():
        rows.append((f"≤ 12 KiB server memory per idle SSE connection ({int(n):,} streams)",
                     f"{r['kib_per_conn']:.1f} KiB/conn ({r['open']:,} open)", "–", "–", "–", "–",
                     met(r["kib_per_conn"] <= IDLE_KIB and r["open"] == r["conns"]), "–"))
    return rows


def serving_rows(res: dict) -> list[str]:
    sv, fl = res.get("serving"), res["floors"]
    if not sv:
        return ["(granian not installed: `pip install 'stigmer[granian]'`; comparison skipped)"]
    lines = ["| scenario | uvicorn (default) | granian | rate granian ÷ uvicorn | CPU µs/req uvicorn · granian | "
             "CPU/req granian ÷ uvicorn |", "|---|---|---|---|---|---|"]
    label = {"get": "key GET", "put": "durable PUT", "list": "list of 100 entries"}
    for s in sv["uvicorn"]:
        u, gr = sv["uvicorn"][s], sv["granian"][s]
        lines.append(f"| Stigmer {label.get(s, s)} | {cell(u)} | {cell(gr)} | {ratio(gr['rps'], u['rps'])} | "
                     f"{cpu(u)} · {cpu(gr)} | {ratio(gr['cpu_us_per_req'], u['cpu_us_per_req'])} |")
    u, gr = fl["uvicorn"], fl["granian"]
    lines.append(f"| bare-ASGI floor, GET | {cell(u)} | {cell(gr)} | {ratio(gr['rps'], u['rps'])} | "
                 f"{cpu(u)} · {cpu(gr)} | {ratio(gr['cpu_us_per_req'], u['cpu_us_per_req'])} |")
    if "hypercorn" in fl:
        h = fl["hypercorn"]
        lines += ["", f"Hypercorn {res.get('versions', {}).get('hypercorn', '')} (uvloop worker), the bare-ASGI floor: "
                  f"{cell(h)}, {cpu(h)} µs/req — {ratio(h['rps'], u['rps'])} uvicorn's floor rate, "
                  f"{ratio(h['cpu_us_per_req'], u['cpu_us_per_req'])} its CPU per request: not a candidate."]
    pr = res.get("probes")
    if pr:
        lines += ["", "| guarantee (probed on the real process: head and body timeouts 1 s, keep-alive 2 s) | uvicorn | granian |", "|---|---|---|"]
        for name in pr["uvicorn"]["verdict"]:
            lines.append(f"| {name} | {'✅' if pr['uvicorn']['verdict'][name] else '❌'} | "
                         f"{'✅' if pr['granian']['verdict'].get(name) else '❌'} |")
        lines.append("")
        for srv in ("uvicorn", "granian"):
            p = pr[srv]
            sig = p.get("sigterm", {})
            lines.append(f"- {srv}: `server` header {p.get('server_header')!r}; half head closed after "
                         f"{p.get('half_head_closed_s')} s; idle keep-alive closed after {p.get('idle_keepalive_closed_s')} s; "
                         f"stalled body → {p.get('stalled_body', {}).get('status')} after "
                         f"{p.get('stalled_body', {}).get('after_s')} s; 101 headers → {p.get('many_headers', {}).get('status')}; "
                         f"rate limit by client address {p.get('rate_limit_by_client', {}).get('codes')}; SIGTERM with an open "
                         f"stream: stream ended after {sig.get('stream_ended_s')} s (clean end {sig.get('stream_clean_end')}), "
                         f"process exited after {sig.get('exit_s')} s (code {sig.get('exit_code')})")
    return lines


def scenario_rows(res: dict) -> list[tuple[str, ...]]:
    st, fa, rd, et = res["stigmer"], res["fastapi"], res["redis"], res.get("etcd") or {}
    g, p = st["get"], st["put"]
    rows = [
        ("key GET (100 hot keys)", cell(g), cpu(g), "FastAPI best config: " + cell(fa["get"]), cpu(fa["get"]),
         ratio(g["rps"], fa["get"]["rps"])),
        ("key GET", cell(g), cpu(g), "Redis GET: " + cell(rd["get"]), cpu(rd["get"]), ratio(g["rps"], rd["get"]["rps"])),
        ("key GET", cell(g), cpu(g), "etcd range (HTTP JSON): " + cell(et.get("get")), cpu(et.get("get")),
         ratio(g["rps"], (et.get("get") or {}).get("rps"))),
        ("durable PUT (10,000 keys)", cell(p), cpu(p), "FastAPI best config: " + cell(fa["put"]), cpu(fa["put"]),
         ratio(p["rps"], fa["put"]["rps"])),
        ("durable PUT", cell(p), cpu(p), "Redis SET, fsync always: " + cell(rd["set"]), cpu(rd["set"]),
         ratio(p["rps"], rd["set"]["rps"])),
        ("durable PUT", cell(p), cpu(p), "etcd put (HTTP JSON): " + cell(et.get("put")), cpu(et.get("put")),
         ratio(p["rps"], (et.get("put") or {}).get("rps"))),
    ]
    for name, r in (res.get("stigmer_keyed") or {}).items():
        base = g if name == "get" else p
        rows.append((f"key {name.upper()} with an API key", cell(r), cpu(r), "Stigmer, open mode: " + cell(base),
                     cpu(base), ratio(r["rps"], base["rps"])))
    for name, r in (res.get("stigmer_token") or {}).items():  # token verification
        base = res["stigmer_keyed"][name]
        rows.append((f"key {name.upper()} with a capability token", cell(r), cpu(r), "Stigmer, API key: " + cell(base),
                     cpu(base), ratio(r["rps"], base["rps"])))
    i = st["incr"]
    rows.append(("incr, one hot key", cell(i), cpu(i), "Redis INCR, fsync always: " + cell(rd["incr"]),
                 cpu(rd["incr"]), ratio(i["rps"], rd["incr"]["rps"])))
    c = st["cas"]
    rows.append(("compare-and-set retry loop, one hot key",
                 f"{c['cas_ok_per_s']:,.0f} successful CAS/s · {c['rps']:,.0f} req/s · {c['conflicts']:,} conflicts · "
                 f"p99 {c['p99_ms']:.2f} ms · {c.get('unexpected', 0)} unexpected", cpu(c), "–", "–", "–"))
    ls = res.get("leases") or {}
    one, many = ls.get("lease_one"), ls.get("lease_many")
    if one:  # Redis has no queue: its lock peer is clients spinning on SET NX, so no ratio is fair here
        rows.append(("lease hand-off: one resource, 64 clients queued (blocking acquire)",
                     f"{one['granted_per_s']:,.0f} hand-offs/s · {cell(one)} · {one.get('unexpected', 0)} unexpected",
                     cpu(one), "Redis SET NX PX spinning on one name (attempts, no queue): " + cell(rd.get("lock_one")),
                     cpu(rd.get("lock_one")), "–"))
    if many:
        rows.append(("lease acquire + release, a new resource each",
                     f"{many['granted_per_s']:,.0f} acquired/s · {cell(many)} · {many.get('unexpected', 0)} unexpected",
                     cpu(many), "Redis SET NX PX, random names (acquire only): " + cell(rd.get("lock_many")),
                     cpu(rd.get("lock_many")), ratio(many["rps"], (rd.get("lock_many") or {}).get("rps"))))
    rows.append(("list by prefix, 100 entries with values", cell(st["list"]), cpu(st["list"]), "–", "–", "–"))
    if "list1000" in st:
        rows.append(("list by prefix, 1,000 entries with values", cell(st["list1000"]), cpu(st["list1000"]),
                     "–", "–", "–"))
    mx = st["mix"]
    rows.append(("90/10 read/write mix", cell(mx), cpu(mx), "FastAPI best config: " + cell(fa["mix"]), cpu(fa["mix"]),
                 ratio(mx["rps"], fa["mix"]["rps"])))
    for key in ("fanout", "fanout_1000"):
        f = res.get(key)
        if f:
            rows.append((f"watch fan-out: {f['watchers']:,} watchers, {f['writes_per_s']:g} writes/s",
                         f"delivery p50 {_f(f['p50_ms'], 'ms')} · p99 {_f(f['p99_ms'], 'ms')} · max {_f(f['max_ms'], 'ms')} · "
                         f"{f['delivered']:,}/{f['expected_deliveries']:,} delivered · lost {f['lost']} · "
                         f"dup {f['duplicated']}", "–", "–", "–", "–"))
    for n, r in res["idle"].items():
        rows.append((f"{int(n):,} idle SSE connections", f"{r['kib_per_conn']:.1f} KiB/conn (RSS "
                     f"{r['rss_before_kib'] / 1024:.0f} → {r['rss_after_kib'] / 1024:.0f} MiB, {r['open']:,} open)",
                     "–", "–", "–", "–"))
    pg = res.get("postgres")
    if pg:
        for name in ("get", "put"):
            fl = pg["floor"][name]
            label = "key GET" if name == "get" else "durable PUT"
            for n in ("one", "two"):
                rows.append((f"PostgreSQL store, {n} replica{'s' if n == 'two' else ''}: {label}", cell(pg[n][name]),
                             cpu(pg[n][name]), f"raw psycopg, {res['conns']} connections: {cell(fl)}", "–",
                             ratio(pg[n][name]["rps"], fl["rps"])))
        t, base = pg["one"].get("token_get"), pg["one"]["get"]
        if t:  # token verification: the row is read on every request
            rows.append(("PostgreSQL store, one replica: key GET with a capability token", cell(t), cpu(t),
                         "the same GET without a credential (open mode): " + cell(base), cpu(base),
                         ratio(t["rps"], base["rps"])))
    return rows


def search_lines(res: dict) -> list[str]:
    """The conversation search section: our search beside SQLite FTS5 queried directly, and append rates."""
    s = res.get("search")
    if not s:
        return []
    lines = ["## Conversation search (SQLite store, in-process, pinned to core 0)", "",
             f"{s['messages']:,} messages in {s['messages'] // 20:,} conversations of one tenant (seeded corpus, "
             f"Zipf-like vocabulary of 30,000 words; built through the engine in {s['build_s']:g} s). Stigmer: "
             "`ConversationSearch.search` (20 conversations with snippets, BM25 over the tenant's own statistics). "
             "Floor: one FTS5 table over the same texts, `MATCH ? ORDER BY rank LIMIT 20` from Python (20 message "
             "rowids). 5 queries × 20 rounds per kind. The ratio is Stigmer's time ÷ the floor's (lower is better).",
             "", "| query kind | Stigmer p50 · p99 | FTS5 floor p50 · p99 | ratio p50 · p99 | hits/query |",
             "|---|---|---|---|---|"]
    for kind, r in s["search"].items():
        o, f = r["ours"], r["floor"]
        lines.append(f"| {kind} (e.g. `{r['queries'][0]}`) | {o['p50_ms']:.2f} · {o['p99_ms']:.2f} ms | "
                     f"{f['p50_ms']:.2f} · {f['p99_ms']:.2f} ms | {ratio(o['p50_ms'], f['p50_ms'])} · "
                     f"{ratio(o['p99_ms'], f['p99_ms'])} | {r['hits_per_query']:g} |")
    lines += ["", "| message append | messages/s |", "|---|---|"]
    for a in s["append"]:
        lines.append(f"| batches of {a['batch']}, {a['writers']} concurrent writers (durable, each its own "
                     f"conversation) | {a['messages_per_s']:,.0f} |")
    return lines


def semvec_lines(res: dict) -> list[str]:
    """The semvec section: /v1/run and /v1/store on a session of 10,000 memories (bench/semvec.py)."""
    s = res.get("semvec")
    if not s:
        return []
    lines = ["## semvec: /v1/run and /v1/store on a session of 10,000 memories (hash-v1, SQLite)", "",
             f"{s['memories']:,} memories (4,672 retrievable), one session; `/v1/run` target: p50 ≤ 4.9 ms "
             "(upstream: 49 ms).", "", "| request | 1 connection: p50 · p99 · req/s | 64 connections | CPU µs/req |",
             "|---|---|---|---|"]
    for name in ("run", "store"):
        one, many = s[f"{name}_1"], s[f"{name}_64"]
        lines.append(f"| `/v1/{name}` | {one['p50_ms']:.2f} · {one['p99_ms']:.2f} ms · {one['rps']:,.0f} | "
                     f"{cell(many)} | {many.get('cpu_us_per_req')} |")
    return lines


def render_search(res: dict) -> str:
    """bench/results/search.md: the search section with the run's header."""
    m = res["machine"]
    return "\n".join([
        "# Stigmer benchmark — conversation search", "",
        f"- **Date** {m['date']} · **commit** `{m['commit']}` · **Machine** {m['cpu']} · {m['nproc']} cores · "
        f"Python {m['python']} · load average at start {m['load'][0]:.2f} (shared with other jobs: compare "
        "ratios, not absolute figures)", "", *search_lines(res), "",
        "How to read this: `docs/benchmarks.md`; the search itself: `docs/search.md`.", ""])


def render(res: dict) -> str:
    m, ce = res["machine"], res["ceiling"]
    g = res["stigmer"]["get"]
    gcpu = max(r.get("generator_cpu", 0) for r in res["stigmer"].values() if isinstance(r, dict))
    v = res.get("versions", {})
    lines = [
        "# Stigmer benchmark — latest run",
        "",
        f"- **Date** {m['date']} · **commit** `{m['commit']}` · **mode** {res['mode']} ({res['seconds']:g} s per HTTP "
        f"run, {res['conns']} connections, wrk 1 thread) · total {res['elapsed_s']:g} s",
        f"- **Machine** {m['cpu']} · {m['nproc']} cores · {m['mem']} RAM · Linux {m['kernel']} · Python {m['python']} · "
        f"load average at start {m['load'][0]:.2f} (shared with other jobs: compare ratios, not absolute figures)",
        f"- **Pinning** every server (Stigmer, the floors, etcd, FastAPI, Redis, the ceiling responder) on core 0 with "
        f"`taskset -c 0`; every load generator (wrk, redis-benchmark, `bench/sse.py`) on core 1. Server fd limit "
        f"{res.get('server_nofile')}.",
        f"- **Stigmer** runs on {res.get('default_server', 'uvicorn')} (the default of `stigmer serve`).",
        f"- **Generator ceiling** wrk against a constant-response uvloop responder (`bench/peers/floor.py`): {cell(ce)} — "
        f"{ce['rps'] / g['rps']:.1f}× Stigmer's GET rate; during Stigmer runs wrk used at most {gcpu:.0%} of its core.",
        f"- **Peers** bare-ASGI floor (`bench/peers/asgi_floor.py`) on uvicorn {v.get('uvicorn', '?')} (uvloop, httptools) "
        f"and on granian {v.get('granian', '?')}; etcd {v.get('etcd', '?')} (one member, v3 HTTP JSON gateway); "
        f"Redis {v.get('redis', '?')} with AOF `appendfsync always`; FastAPI + SQLAlchemy Core, sync, 40 threads, WAL, "
        "`synchronous=FULL`, one transaction per request (`bench/peers/fastapi_kv.py`).",
        "- **CPU/req** is the server's CPU time (user + system, every thread and child process, from /proc) during "
        "the measured run ÷ requests served, in µs: steadier than rates on a shared machine. The CPU ratio is the "
        "peer's CPU/req ÷ Stigmer's (above 1: Stigmer spends less per request).",
        "",
        "## Targets",
        "",
        "`met?` judges the rate ratio (or the figure) of this run; `met by CPU/req?` judges the same ratio target on "
        "CPU per request (the peer's ÷ Stigmer's), which the machine's other jobs move far less.",
        "",
        "| target | Stigmer | peer | ratio | CPU µs/req Stigmer · peer | CPU ratio | met? | met by CPU/req? |",
        "|---|---|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in targets(res)),
        "",
        "## Serving stack: the whole app on uvicorn and on granian",
        "",
        *serving_rows(res),
        "",
        "## Every scenario",
        "",
        "| scenario | Stigmer | CPU µs/req | peer | peer CPU µs/req | ratio |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in scenario_rows(res)),
        "",
        *search_lines(res),
        "",
        *semvec_lines(res),
        "",
        "Latencies are wrk's (p50 · p99 · p99.9, ms; redis-benchmark gives no p99.9); errors are connect/read/write/"
        "timeout errors and non-2xx responses (409s of the CAS loop are retries, counted apart). Raw figures: "
        "`bench/results/latest.json` (not committed). How to read this: `docs/benchmarks.md`.",
        "",
    ]
    return "\n".join(lines)
