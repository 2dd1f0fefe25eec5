"""statevec rate limiting (§3.8): headers, 429 body, per-IP and per-key buckets, trusted proxies."""

from __future__ import annotations

import math
import time

from support import ADMIN_KEY, new_key, revision, stored

H = "9fea0be54ab75af70b2560d112efbf66c684861964ab19fef5f8118c9dcd4a2d"


def test_headers_on_every_response_and_429(make_client):
    c = make_client(statevec_rate_limit_anon=3)
    now = time.time()
    statuses = []
    for i, req in enumerate([lambda: c.get("/v/" + H), lambda: c.get("/v/zz"), lambda: c.head("/v/" + H)]):
        r = req()
        statuses.append(r.status_code)
        assert r.headers["x-ratelimit-limit"] == "3"
        assert r.headers["x-ratelimit-remaining"] == str(2 - i)
        reset = int(r.headers["x-ratelimit-reset"])
        assert math.ceil(now) <= reset <= math.ceil(time.time() + 60 * (i + 1) / 3) + 1
    assert statuses == [404, 400, 404]  # 404, 4xx and HEAD all cost a token
    r = c.put("/v", json={"key": "s", "val": 1})
    assert r.status_code == 429
    body = r.json()
    assert list(body) == ["ok", "error", "limit", "remaining", "reset", "retry_after", "hint"]
    assert body["ok"] is False and body["error"] == "rate limit exceeded"
    assert body["limit"] == 3 and body["remaining"] == 0
    assert body["hint"] == "Slow down: limit is 3/min"
    assert r.headers["retry-after"] == str(body["retry_after"]) and body["retry_after"] >= 1
    assert r.headers["x-ratelimit-reset"] == str(body["reset"])
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert r.headers["access-control-allow-origin"] == "*"
    # a limited request is not executed
    c.app.state.services  # noqa: B018
    assert stored(c, "default", "statevec", "0" * 64) is None
    assert revision(c, "default") == 0


def test_limited_before_path_and_method_checks_and_options_free(make_client):
    c = make_client(statevec_rate_limit_anon=1)
    assert c.post("/v/batch", json={"hashes": [H] * 20}).status_code == 200
    for _ in range(3):
        r = c.options("/v")
        assert r.status_code == 204 and "x-ratelimit-limit" not in r.headers
    assert c.get("/v").status_code == 429  # would be 405
    assert c.get("/v/x/y").status_code == 429  # would be 404


def test_keyed_bucket_independent_and_hint(make_client):
    c = make_client(statevec_rate_limit_anon=1, statevec_rate_limit_key=2, admin_key=ADMIN_KEY)
    good = new_key(c, "any-tenant", scopes=["read"])
    assert c.get("/v/" + H).status_code == 404
    r = c.get("/v/" + H)
    assert r.status_code == 429 and r.json()["hint"] == "Add x-statevec-key header for 2/min"
    # an unknown key is anonymous: same (empty) bucket, no 401
    assert c.get("/v/" + H, headers={"x-statevec-key": "bad"}).status_code == 429
    r = c.get("/v/" + H, headers={"x-statevec-key": good})
    assert r.status_code == 404 and r.headers["x-ratelimit-limit"] == "2"
    assert c.get("/v/" + H, headers={"x-statevec-key": good}).status_code == 404
    r = c.get("/v/" + H, headers={"x-statevec-key": good})
    assert r.status_code == 429 and r.json()["hint"] == "Slow down: limit is 2/min"


def test_zero_disables_and_omits_headers(make_client):
    c = make_client(statevec_rate_limit_anon=0, statevec_rate_limit_key=1, admin_key=ADMIN_KEY)
    k = new_key(c)
    for _ in range(5):
        r = c.get("/v/" + H)
        assert r.status_code == 404 and "x-ratelimit-limit" not in r.headers
    assert c.get("/v/" + H, headers={"x-statevec-key": k}).headers["x-ratelimit-limit"] == "1"


def test_upgrade_member_only_when_configured(make_client):
    c = make_client(statevec_rate_limit_anon=1, statevec_upgrade_url="https://example.org/more")
    c.get("/v/" + H)
    body = c.get("/v/" + H).json()
    assert list(body) == ["ok", "error", "limit", "remaining", "reset", "retry_after", "upgrade", "hint"]
    assert body["upgrade"] == "https://example.org/more"


def test_forwarded_for_only_from_trusted_proxy(make_client):
    # TestClient's peer is "testclient", not an IP: X-Forwarded-For is ignored, one bucket for all
    c = make_client(statevec_rate_limit_anon=1)
    assert c.get("/v/" + H, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 404
    assert c.get("/v/" + H, headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429


def test_trusted_proxy_uses_rightmost_untrusted(make_client, monkeypatch):
    from stigmer.support.ratelimit import client_ip, parse_networks

    trusted = parse_networks("10.0.0.0/8")
    assert client_ip("10.0.0.1", "9.9.9.9, 8.8.8.8, 10.0.0.5", trusted) == "8.8.8.8"
    assert client_ip("1.2.3.4", "8.8.8.8", trusted) == "1.2.3.4"
    assert client_ip("10.0.0.1", None, trusted) == "10.0.0.1"
