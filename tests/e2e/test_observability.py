"""Observability of the real server (issue 15 item 4): /metrics after a known workload, JSON logs, --version."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from stigmer import __version__
from support import metric_samples, sample, until

ADMIN = "stg_obs-admin-key-for-the-metrics-tests-0001"
PASSWORD = "metrics-s3cret"
KEYS = {"Authorization": f"Bearer {ADMIN}"}
SCRAPE = ("ops", PASSWORD)
KV_ROUTE = "/v1/kv/{namespace}/{key:path}"


def scrape(url: str) -> dict:
    r = httpx.get(url + "/metrics", auth=SCRAPE)
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert ADMIN not in r.text and PASSWORD not in r.text
    return metric_samples(r.text)


def test_metrics_count_a_known_workload(start_server):
    s = start_server(admin_key=ADMIN, metrics_user="ops", metrics_password=PASSWORD)
    url = s.url
    # the credential is required, and no refusal names it
    for auth in (None, ("ops", "wrong")):
        r = httpx.get(url + "/metrics", auth=auth)
        assert r.status_code == 401 and PASSWORD not in r.text and "ops" not in r.text
    with httpx.Client(base_url=url, headers=KEYS) as c:
        for i in range(5):
            assert c.put(f"/v1/kv/app/k{i}", json={"n": i}).status_code == 201  # the key fast path
        for _ in range(7):
            assert c.get("/v1/kv/app/k0").status_code == 200
        assert c.get("/v1/kv/app/k0", params={"x": "1"}).status_code == 200  # the routed path: same template
        assert c.get("/v1/kv/app/missing").status_code == 404
        for _ in range(3):
            assert c.post("/v1/session/create", json={}).status_code == 200  # semvec
        for i in range(2):
            assert c.post(f"/v1/state/wf/k{i}", json={"value": i}).status_code == 200  # CntrlNode's own dispatcher
        assert c.get("/v1/state/wf/k0").status_code == 200
    for _ in range(2):
        assert httpx.get(url + "/v1/kv/app/k0").status_code == 401  # refused at the edge: no route reached
    got = scrape(url)
    http = "stigmer_http_requests_total"
    native = {"surface": "native", "route": KV_ROUTE}
    assert sample(got, http, **native, method="PUT", status="201") == 5
    assert sample(got, http, **native, method="GET", status="200") == 8
    assert sample(got, http, **native, method="GET", status="404") == 1
    assert sample(got, http, surface="native", route="(none)", method="GET", status="401") == 2
    assert sample(got, http, surface="semvec", route="/v1/session/create", method="POST", status="200") == 3
    cntrlnode = {"surface": "cntrlnode", "route": "/v1/state/{workflowId}/{key}", "status": "200"}
    assert sample(got, http, **cntrlnode, method="POST") == 2 and sample(got, http, **cntrlnode, method="GET") == 1
    duration = "stigmer_http_request_duration_seconds"
    assert sample(got, duration + "_count", **native, method="PUT") == 5
    assert sample(got, duration + "_count", **native, method="GET") == 9
    assert sample(got, duration + "_bucket", **native, method="GET", le="+Inf") == 9
    assert sample(got, duration + "_count", surface="semvec", route="/v1/session/create", method="POST") == 3
    # semvec's own series (§5.51) beside the server's; scrapes of /metrics are counted in neither
    assert sample(got, "semvec_requests_total", method="POST", endpoint="/v1/session/create", status="200") == 3
    assert sample(got, "semvec_active_sessions") == 3
    assert not any(dict(labels).get("route") == "/metrics" for _, labels in got)
    # the writers' groups hold at least the workload's writes (the bootstrap key's too)
    assert sample(got, "stigmer_store_commit_group_size_sum") >= 5 + 3 + 2
    assert sample(got, "stigmer_store_commit_seconds_count") == sample(got, "stigmer_store_commit_group_size_count")
    assert sample(got, "stigmer_job_queue_depth") == 0 and sample(got, "stigmer_webhook_backlog") == 0
    assert sample(got, "stigmer_watchers") == 0
    with httpx.stream("GET", url + "/v1/watch", params={"namespace": "app"}, headers=KEYS, timeout=10) as stream:
        assert stream.status_code == 200
        until(lambda: sample(scrape(url), "stigmer_watchers") == 1, "the watch to be counted")
        assert sample(scrape(url), "stigmer_streams_open", surface="native") == 1


def test_json_log_lines_carry_the_request_id_tenant_route_and_status(make_server):
    s = make_server(admin_key=ADMIN, log_level="info", log_format="json").start()
    httpx.put(s.url + "/v1/kv/app/k", json=1, headers={**KEYS, "X-Request-ID": "rid-put-1"})
    httpx.get(s.url + "/v1/kv/app/k?apiKey=s3cret-1&limit=5", headers={**KEYS, "X-Request-ID": "rid-get-2"})
    httpx.get(s.url + "/v1/kv/app/k", headers={"X-Request-ID": "rid-anon-3"})
    s.stop()
    log = "".join(p.read_text() for p in s.data_dir.parent.glob(f"server-{s.port}-*.log"))
    assert "s3cret" not in log and ADMIN not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON, uvicorn's too
    assert all({"ts", "level", "logger"} <= line.keys() for line in lines)
    by_id = {line.get("request_id"): line for line in lines}
    put = by_id["rid-put-1"]
    assert (put["tenant"], put["surface"], put["route"], put["method"], put["status"]) == \
        ("default", "native", KV_ROUTE, "PUT", 201)
    assert isinstance(put["duration_ms"], float) and put["logger"] == "stigmer.access"
    get = by_id["rid-get-2"]
    assert get["status"] == 200 and get["path"] == "/v1/kv/app/k?apiKey=***&limit=5"
    anon = by_id["rid-anon-3"]
    assert anon["status"] == 401 and anon["tenant"] is None and anon["route"] == "(none)"
    start = next(line for line in lines if line["msg"].startswith(f"stigmer {__version__} on {s.url}"))
    assert start["store"] in ("sqlite", "postgresql") and start["auth"] == "api-keys"
    assert "native" in start["surfaces"] and "semvec" in start["surfaces"]
    assert start["data"] in start["msg"]


def test_version():
    out = subprocess.run([sys.executable, "-m", "stigmer.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"stigmer {__version__}"
