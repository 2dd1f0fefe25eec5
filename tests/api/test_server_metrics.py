"""GET /v1/admin/metrics: the metrics registry's server-wide figures as JSON, for the unrestricted admin only."""

from __future__ import annotations

from support import ADMIN_KEY, new_key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_server_admin_reads_totals_that_grow_with_requests(keyed_client):
    c = keyed_client
    before = c.get("/v1/admin/metrics", headers=auth(ADMIN_KEY))
    assert before.status_code == 200, before.text
    b = before.json()
    lat = b["latency"]
    assert len(lat["counts"]) == len(lat["buckets"]) + 1 and lat["counts"] == sorted(lat["counts"])
    assert lat["counts"][-1] == b["requests"] and b["watchers"] == 0
    assert b["job_queue_depth"] >= 0 and b["webhook_backlog"] >= 0
    for _ in range(3):
        c.get("/v1/revision", headers=auth(ADMIN_KEY))
    after = c.get("/v1/admin/metrics", headers=auth(ADMIN_KEY)).json()
    assert after["requests"] >= b["requests"] + 4 and after["at"] >= b["at"]  # the 3 reads and the first call


def test_a_tenant_admin_or_a_reader_is_refused(keyed_client):
    c = keyed_client
    for key in (new_key(c, "team-a", scopes=["admin"]), new_key(c, "default", scopes=["read"]),
                new_key(c, "default", scopes=["admin"], prefixes=["app"])):
        r = c.get("/v1/admin/metrics", headers=auth(key))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert c.get("/v1/admin/metrics").status_code == 401
