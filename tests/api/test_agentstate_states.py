"""AgentState states (specs/agentstate.md §5.1, §6.1–6.5): shapes, validation messages, paths, time travel,
the event log, queries and lease enforcement on writes, in-process over real HTTP on a real store."""

from __future__ import annotations

import pytest

from agentstate_support import V1, agentstate_app, err
from pg_support import ON_POSTGRES

STATE_KEYS = ["state_key", "agent_id", "data", "metadata", "tags", "latest_sequence", "created_at", "updated_at",
              "deleted_at"]
EVENT_KEYS = ["sequence", "id", "state_key", "agent_id", "event_type", "data", "metadata", "tags",
              "idempotency_key", "created_at"]


def put(c, key, body=None, **headers):
    return c.put(f"{V1}/states/{key}", json=body if body is not None else {"agent_id": "w1", "data": {"n": 1}},
                 headers=headers)


def test_put_example_of_the_spec(c, app):
    clock = app[1]
    r = c.put(f"{V1}/states/task%3Aorder-42%2Fprogress", json={
        "agent_id": "w1", "data": {"step": 1, "next": "parse"}, "metadata": {"run": "r1"},
        "tags": ["pipeline", "active"]})
    assert r.status_code == 200, r.text
    s = r.json()
    assert list(s) == STATE_KEYS
    now_ms = int(clock.now() * 1000)
    assert s == {"state_key": "task:order-42/progress", "agent_id": "w1", "data": {"step": 1, "next": "parse"},
                 "metadata": {"run": "r1"}, "tags": ["active", "pipeline"], "latest_sequence": s["latest_sequence"],
                 "created_at": now_ms, "updated_at": now_ms, "deleted_at": None}
    assert isinstance(s["latest_sequence"], int) and s["latest_sequence"] > 0
    assert c.get(f"{V1}/states/task%3Aorder-42%2Fprogress").json() == s
    # the state is a key of the reserved namespace `_states`, readable natively
    native = c.get("/v1/kv/_states/task:order-42/progress")
    assert native.status_code == 200 and native.json()["value"]["data"] == {"step": 1, "next": "parse"}
    err_native = c.put("/v1/kv/_states/task:order-42/progress", json={"value": 1})
    assert err_native.status_code == 403  # states are written only through /api/v1/states


def test_full_replace_keeps_created_at_and_resurrects(c, app):
    clock = app[1]
    first = put(c, "k", {"agent_id": "a", "data": {"x": 1}, "metadata": {"m": 1}, "tags": ["t"]}).json()
    clock.advance(5)
    second = put(c, "k", {"agent_id": "b", "data": {"y": 2}}).json()
    assert second["metadata"] is None and second["tags"] == [] and second["agent_id"] == "b"
    assert second["created_at"] == first["created_at"] and second["updated_at"] == first["updated_at"] + 5000
    assert second["latest_sequence"] > first["latest_sequence"]
    r = c.delete(f"{V1}/states/k")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"deleted", "event"} and body["deleted"] is True
    e = body["event"]
    assert list(e) == EVENT_KEYS
    assert e["event_type"] == "delete" and e["data"] is None and e["agent_id"] == "b" and e["metadata"] is None
    assert e["idempotency_key"] is None and len(e["id"]) == 21
    err(c.get(f"{V1}/states/k"), 404, "NOT_FOUND", "State not found")
    err(c.delete(f"{V1}/states/k"), 404, "NOT_FOUND", "State not found")
    clock.advance(5)
    third = put(c, "k", {"agent_id": "c", "data": {"z": 3}}).json()
    assert third["created_at"] == first["created_at"] and third["deleted_at"] is None


def test_a_long_key_that_does_not_compress_is_never_a_500(c):
    from urllib.parse import quote
    import random
    key = "".join(chr(random.randrange(0x4E00, 0x9FFF)) for _ in range(1024))  # 3,072 UTF-8 bytes, random
    r = c.put(f"{V1}/states/{quote(key, safe='')}", json={"agent_id": "w", "data": {}})
    if ON_POSTGRES:  # beyond what a PostgreSQL B-tree entry holds: refused, in the surface's shape
        err(r, 400, "BAD_REQUEST")
        assert "PostgreSQL" in r.json()["error"]["message"]
    else:
        assert r.status_code == 200 and r.json()["state_key"] == key


def test_keys_are_one_encoded_segment(c):
    assert put(c, "a%2Fb").json()["state_key"] == "a/b"
    assert put(c, "a%252Fb").json()["state_key"] == "a%2Fb"
    assert put(c, "sp%20ace%3A%E2%9C%93").json()["state_key"] == "sp ace:✓"
    err(c.put(f"{V1}/states/a/b", json={"agent_id": "w", "data": {}}), 404, "NOT_FOUND", "Not found")
    assert put(c, "x" * 1024).status_code == 200
    err(put(c, "x" * 1025), 400, "BAD_REQUEST", "state_key must be at most 1024 characters")
    # `watch` is writable, and read back through the query
    assert put(c, "watch").status_code == 200
    assert any(s["state_key"] == "watch" for s in c.post(f"{V1}/states/query", json={}).json()["data"])


@pytest.mark.parametrize("body,message", [
    ({"data": {}}, "Required"),
    ({"agent_id": 5, "data": {}}, "Expected string, received number"),
    ({"agent_id": "", "data": {}}, "String must contain at least 1 character(s)"),
    ({"agent_id": "a" * 256, "data": {}}, "String must contain at most 255 character(s)"),
    ({"agent_id": "w"}, "Required"),
    ({"agent_id": "w", "data": [1]}, "Expected object, received array"),
    ({"agent_id": "w", "data": None}, "Expected object, received null"),
    ({"agent_id": "w", "data": "x"}, "Expected object, received string"),
    ({"agent_id": "w", "data": {}, "metadata": [1]}, "Expected object, received array"),
    ({"agent_id": "w", "data": {}, "tags": "a"}, "Expected array, received string"),
    ({"agent_id": "w", "data": {}, "tags": [""]}, "tag cannot be empty"),
    ({"agent_id": "w", "data": {}, "tags": ["a" * 256]}, "tag cannot exceed 255 characters"),
    ({"agent_id": "w", "data": {}, "tags": ["a b"]}, "tag cannot contain whitespace or control characters"),
    ({"agent_id": "w", "data": {}, "tags": ["a\x01"]}, "tag cannot contain whitespace or control characters"),
    ({"agent_id": "w", "data": {}, "tags": [1]}, "Expected string, received number"),
    ({"agent_id": "w", "data": {}, "tags": ["t"] * 51}, "Array must contain at most 50 element(s)"),
    ({"agent_id": "w", "data": {}, "lease_id": ""}, "String must contain at least 1 character(s)"),
    ({"agent_id": 1, "data": []}, "Expected string, received number"),  # only the first failure
])
def test_put_validation_messages(c, body, message):
    err(c.put(f"{V1}/states/k", json=body), 400, "BAD_REQUEST", message)


@pytest.mark.parametrize("raw,message", [(b"", "Invalid JSON body"), (b"{", "Invalid JSON body"),
                                         (b"null", "Invalid JSON body"), (b"[]", "Expected object, received array"),
                                         (b'"s"', "Expected object, received string"),
                                         (b"3", "Expected object, received number")])
def test_bodies_must_be_objects(c, raw, message):
    err(c.put(f"{V1}/states/k", content=raw), 400, "BAD_REQUEST", message)


def test_null_optional_members_are_omitted_and_tags_checkpointer_style(c):
    s = put(c, "k", {"agent_id": "w", "data": {}, "metadata": None, "tags": None, "lease_id": None}).json()
    assert s["metadata"] is None and s["tags"] == []
    tags = ["agentstate:thread:6f1c", "b", "agentstate:thread:6f1c", "A"]
    assert put(c, "k", {"agent_id": "w", "data": {}, "tags": tags}).json()["tags"] == ["A", "agentstate:thread:6f1c", "b"]
    assert put(c, "k2", {"agent_id": "w", "data": {}, "tags": ["t"] * 50}).status_code == 200


def test_member_order_of_data_is_kept(c):
    raw = b'{"agent_id":"w","data":{"z":1,"a":{"y":2,"b":[3,{"q":1,"c":2}]},"m":null}}'
    r = c.put(f"{V1}/states/order", content=raw)
    assert b'"data":{"z":1,"a":{"y":2,"b":[3,{"q":1,"c":2}]},"m":null}' in r.content
    assert b'"data":{"z":1,"a":{"y":2,"b":[3,{"q":1,"c":2}]},"m":null}' in c.get(f"{V1}/states/order").content
    events = c.get(f"{V1}/states/order/events").content
    assert b'"data":{"z":1,"a":{"y":2,"b":[3,{"q":1,"c":2}]},"m":null}' in events


def test_time_travel(c, app):
    clock = app[1]
    v1 = put(c, "tt", {"agent_id": "w", "data": {"v": 1}}).json()
    clock.advance(10)
    t_between = int(clock.now() * 1000) - 1
    v2 = put(c, "tt", {"agent_id": "w", "data": {"v": 2}}).json()
    clock.advance(10)
    c.delete(f"{V1}/states/tt")
    err(c.get(f"{V1}/states/tt"), 404, "NOT_FOUND", "State not found")
    old = c.get(f"{V1}/states/tt", params={"at_sequence": v1["latest_sequence"]}).json()
    assert old["data"] == {"v": 1} and old["latest_sequence"] == v1["latest_sequence"]
    assert old["created_at"] == old["updated_at"] == v1["updated_at"] and old["deleted_at"] is None
    assert c.get(f"{V1}/states/tt", params={"at_time": t_between}).json()["data"] == {"v": 1}
    assert c.get(f"{V1}/states/tt", params={"at_sequence": v2["latest_sequence"]}).json()["data"] == {"v": 2}
    # both bounds hold at once
    both = c.get(f"{V1}/states/tt", params={"at_sequence": v2["latest_sequence"], "at_time": t_between})
    assert both.json()["data"] == {"v": 1}
    err(c.get(f"{V1}/states/tt", params={"at_sequence": v2["latest_sequence"] + 100}), 404, "NOT_FOUND")  # the delete
    err(c.get(f"{V1}/states/tt", params={"at_sequence": v1["latest_sequence"] - 1}), 404, "NOT_FOUND")
    # a parameter that is not a positive integer is ignored: the live (deleted) state
    err(c.get(f"{V1}/states/tt", params={"at_sequence": "abc"}), 404, "NOT_FOUND")
    put(c, "tt", {"agent_id": "w", "data": {"v": 3}})
    assert c.get(f"{V1}/states/tt", params={"at_sequence": "-1"}).json()["data"] == {"v": 3}


def test_event_log_pages(c):
    seqs = [put(c, "ev", {"agent_id": "w", "data": {"i": i}}).json()["latest_sequence"] for i in range(5)]
    c.delete(f"{V1}/states/ev")
    put(c, "ev", {"agent_id": "w", "data": {"i": 9}})
    page = c.get(f"{V1}/states/ev/events", params={"limit": 2}).json()
    assert [e["sequence"] for e in page["data"]] == seqs[:2]
    assert page["pagination"] == {"limit": 2, "next_cursor": str(seqs[1])}
    rest = c.get(f"{V1}/states/ev/events", params={"after": seqs[1], "limit": "500abc"}).json()
    assert [e["event_type"] for e in rest["data"]] == ["upsert"] * 3 + ["delete", "upsert"]
    last = rest["pagination"]["next_cursor"]
    assert c.get(f"{V1}/states/ev/events", params={"after": last}).json() == {
        "data": [], "pagination": {"limit": 0, "next_cursor": None}}
    assert c.get(f"{V1}/states/nobody/events").json() == {"data": [], "pagination": {"limit": 0, "next_cursor": None}}
    e = page["data"][0]
    assert list(e) == EVENT_KEYS and e["data"] == {"i": 0} and e["tags"] == []


def test_query_example_filters_and_exact_pages(c, app):
    clock = app[1]
    put(c, "task:order-42/progress".replace("/", "%2F").replace(":", "%3A"),
        {"agent_id": "w1", "data": {"step": 1, "next": "parse"}, "metadata": {"run": "r1"}, "tags": ["pipeline", "active"]})
    put(c, "other", {"agent_id": "w2", "data": {"step": 2, "next": "emit", "deep": {"list": [1, {"x": None}]}},
                     "tags": ["active"]})
    r = c.post(f"{V1}/states/query", json={"tags": ["active"], "json_path": "$.next", "json_equals": "parse",
                                           "limit": 10})
    assert r.status_code == 200
    body = r.json()
    assert [s["state_key"] for s in body["data"]] == ["task:order-42/progress"]
    assert body["pagination"] == {"limit": 1, "next_cursor": None}
    q = lambda **b: [s["state_key"] for s in c.post(f"{V1}/states/query", json=b).json()["data"]]  # noqa: E731
    assert q() == ["other", "task:order-42/progress"]  # latest_sequence descending
    assert q(agent_id="w2") == ["other"]
    assert q(tags=["active", "pipeline"]) == ["task:order-42/progress"]
    assert q(predicates=[{"path": "$.deep.list[1].x", "equals": None}]) == ["other"]
    assert q(predicates=[{"path": "$.deep"}]) == ["task:order-42/progress"]  # no `equals`: the path must not resolve
    assert q(predicates=[{"path": "$.step", "equals": 1.0}]) == ["task:order-42/progress"]  # numeric equality
    assert q(predicates=[{"path": "$.step", "equals": True}]) == []
    assert q(json_path="$.deep", json_equals={"list": [1, {"x": None}]}) == ["other"]
    now = int(clock.now() * 1000)
    assert q(updated_after=now) == ["other", "task:order-42/progress"] and q(updated_after=now + 1) == []
    assert q(updated_before=now - 1) == []
    assert q(cursor=None) == q(cursor="junk") == ["other", "task:order-42/progress"]
    for i in range(7):
        put(c, f"p{i}", {"agent_id": "pager", "data": {"i": i}})
    seen, cursor = [], None
    while True:
        page = c.post(f"{V1}/states/query", json={"agent_id": "pager", "limit": 3, "cursor": cursor}).json()
        seen += [s["state_key"] for s in page["data"]]
        cursor = page["pagination"]["next_cursor"]
        assert page["pagination"]["limit"] == len(page["data"])
        if cursor is None:
            assert len(page["data"]) > 0  # exact pages: never a cursor before an empty page
            break
        assert len(page["data"]) == 3
    assert seen == [f"p{i}" for i in reversed(range(7))]


def test_query_historical(c):
    a1 = put(c, "h1", {"agent_id": "w", "data": {"v": 1}}).json()["latest_sequence"]
    put(c, "h2", {"agent_id": "w", "data": {"v": 1}})
    put(c, "h1", {"agent_id": "w", "data": {"v": 2}})
    c.delete(f"{V1}/states/h2")
    rows = c.post(f"{V1}/states/query", json={"at_sequence": a1}).json()["data"]
    assert [(s["state_key"], s["data"]) for s in rows] == [("h1", {"v": 1})]
    assert rows[0]["latest_sequence"] == a1
    live = c.post(f"{V1}/states/query", json={}).json()["data"]
    assert [(s["state_key"], s["data"]) for s in live] == [("h1", {"v": 2})]


@pytest.mark.parametrize("body,message", [
    ({"json_path": "$..a", "json_equals": 1}, "Unsupported JSON path"),
    ({"predicates": [{"path": "a"}]}, "Unsupported JSON path"),
    ({"predicates": [{"equals": 1}]}, "Required"),
    ({"predicates": [{"path": "$.a"}] * 11}, "Array must contain at most 10 element(s)"),
    ({"limit": 101}, "Number must be less than or equal to 100"),
    ({"limit": 0}, "Number must be greater than or equal to 1"),
    ({"limit": 1.5}, "Expected integer, received float"),
    ({"at_sequence": 0}, "Number must be greater than 0"),
    ({"updated_after": -1}, "Number must be greater than or equal to 0"),
    ({"agent_id": ""}, "String must contain at least 1 character(s)"),
    ({"json_path": "", "json_equals": 1}, "String must contain at least 1 character(s)"),
    ({"limit": "5"}, "Expected number, received string"),
])
def test_query_validation(c, body, message):
    err(c.post(f"{V1}/states/query", json=body), 400, "BAD_REQUEST", message)
    err(c.post(f"{V1}/states/query", content=b""), 400, "BAD_REQUEST", "Invalid JSON body")


def test_lease_enforcement_on_writes(c, app):
    clock = app[1]
    put(c, "L")
    r = c.post(f"{V1}/states/L/lease", json={"holder": "w1", "ttl_ms": 30000})
    assert r.status_code == 201, r.text
    lease = r.json()
    assert list(lease) == ["id", "state_key", "holder", "fencing_token", "expires_at", "created_at", "renewed_at"]
    now = int(clock.now() * 1000)
    assert lease["fencing_token"] == 1 and len(lease["id"]) == 21 and lease["state_key"] == "L"
    assert lease["created_at"] == lease["renewed_at"] == now and lease["expires_at"] == now + 30000
    err(c.post(f"{V1}/states/L/lease", json={"holder": "w2"}), 409, "LEASE_CONFLICT", "State already has an active lease")
    err(put(c, "L"), 409, "LEASE_REQUIRED", "Active lease requires lease_id")
    err(c.delete(f"{V1}/states/L"), 409, "LEASE_REQUIRED", "Active lease requires lease_id")
    err(put(c, "L", {"agent_id": "w", "data": {}, "lease_id": "nope"}), 409, "LEASE_CONFLICT",
        "lease_id does not match active lease")
    assert put(c, "L", {"agent_id": "w", "data": {"ok": 1}, "lease_id": lease["id"]}).status_code == 200
    # renew extends from now; no holder check
    clock.advance(10)
    renewed = c.post(f"{V1}/leases/{lease['id']}/renew", json={"ttl_ms": 5000}).json()
    assert renewed["renewed_at"] == now + 10000 and renewed["expires_at"] == now + 15000
    assert renewed["created_at"] == now and renewed["fencing_token"] == 1
    # expiry: writes without a lease pass, renew says expired, release still works
    clock.advance(6)
    assert put(c, "L").status_code == 200
    err(c.post(f"{V1}/leases/{lease['id']}/renew", json={}), 409, "LEASE_EXPIRED", "Lease has expired")
    assert put(c, "L", {"agent_id": "w", "data": {}, "lease_id": lease["id"]}).status_code == 200  # not superseded
    second = c.post(f"{V1}/states/L/lease", json={"holder": "w2"}).json()
    assert second["fencing_token"] == 2
    err(c.post(f"{V1}/leases/{lease['id']}/renew", json={}), 404, "NOT_FOUND", "Lease not found")  # superseded
    err(c.delete(f"{V1}/leases/{lease['id']}"), 404, "NOT_FOUND", "Lease not found")
    r = c.delete(f"{V1}/leases/{second['id']}")
    assert r.status_code == 204 and r.content == b""
    err(c.delete(f"{V1}/leases/{second['id']}"), 404, "NOT_FOUND", "Lease not found")
    # D4: a superseded lease id is refused forever, even with no lease active
    err(put(c, "L", {"agent_id": "w", "data": {}, "lease_id": lease["id"]}), 409, "LEASE_CONFLICT")
    err(put(c, "L", {"agent_id": "w", "data": {}, "lease_id": "unknown-id"}), 409, "LEASE_CONFLICT")
    assert put(c, "L").status_code == 200  # advisory when none is active
    third = c.post(f"{V1}/states/L/lease", json={"holder": "w3"}).json()
    assert third["fencing_token"] == 3
    # the deleting holder passes its lease in X-Lease-Id or ?lease_id=
    assert c.delete(f"{V1}/states/L", headers={"X-Lease-Id": third["id"]}).status_code == 200
    put_ok = put(c, "L", {"agent_id": "w", "data": {}, "lease_id": third["id"]})
    assert put_ok.status_code == 200
    assert c.delete(f"{V1}/states/L", params={"lease_id": third["id"]}).status_code == 200


def test_lease_acquire_needs_no_state_and_validates(c, app):
    r = c.post(f"{V1}/states/never-written/lease", json={"holder": "w"})
    assert r.status_code == 201 and r.json()["expires_at"] - r.json()["created_at"] == 60000
    err(c.post(f"{V1}/states/x/lease", json={}), 400, "BAD_REQUEST", "Required")
    err(c.post(f"{V1}/states/x/lease", json={"holder": "w", "ttl_ms": 999}), 400, "BAD_REQUEST",
        "Number must be greater than or equal to 1000")
    err(c.post(f"{V1}/states/x/lease", json={"holder": "w", "ttl_ms": 3600001}), 400, "BAD_REQUEST",
        "Number must be less than or equal to 3600000")
    err(c.post(f"{V1}/leases/whatever/renew", content=b""), 400, "BAD_REQUEST", "Invalid JSON body")
    err(c.post(f"{V1}/leases/whatever/renew", json={}), 404, "NOT_FOUND", "Lease not found")
    err(c.post(f"{V1}/leases/whatever/renew", json={"ttl_ms": "1"}), 400, "BAD_REQUEST",
        "Expected number, received string")


def test_idempotent_put_and_delete(c):
    k = {"Idempotency-Key": "k1"}
    first = put(c, "I", {"agent_id": "w", "data": {"a": 1, "b": 2}}, **k)
    assert first.status_code == 200 and "idempotency-replayed" not in first.headers
    again = put(c, "I", {"data": {"b": 2, "a": 1}, "agent_id": "w", "unknown": 1, "metadata": None}, **k)
    assert again.status_code == 200 and again.headers["idempotency-replayed"] == "true"
    assert again.content == first.content
    events = c.get(f"{V1}/states/I/events").json()["data"]
    assert len(events) == 1 and events[0]["idempotency_key"] == "k1"
    err(put(c, "I", {"agent_id": "w", "data": {"a": 2}}, **k), 409, "IDEMPOTENCY_CONFLICT",
        "Idempotency-Key was already used for a different request")
    err(put(c, "other", {"agent_id": "w", "data": {"a": 1, "b": 2}}, **k), 409, "IDEMPOTENCY_CONFLICT")
    # keys are per project, not per state key; a rejected request does not consume its key
    c.post(f"{V1}/states/I/lease", json={"holder": "h"})
    err(put(c, "I", {"agent_id": "w", "data": {}}, **{"Idempotency-Key": "k2"}), 409, "LEASE_REQUIRED")
    # the replay is served even though the state is now leased
    assert put(c, "I", {"agent_id": "w", "data": {"a": 1, "b": 2}}, **k).headers["idempotency-replayed"] == "true"
    err(put(c, "I", {"agent_id": "w", "data": {}}, **{"Idempotency-Key": "x" * 256}), 400, "BAD_REQUEST",
        "Idempotency-Key must be at most 255 characters")
    assert put(c, "J", **{"Idempotency-Key": ""}).status_code == 200  # empty = absent
    d = c.delete(f"{V1}/states/J", headers={"Idempotency-Key": "del-1"})
    assert d.status_code == 200 and d.json()["event"]["idempotency_key"] == "del-1"
    again = c.delete(f"{V1}/states/J", headers={"Idempotency-Key": "del-1"})
    assert again.status_code == 200 and again.content == d.content and again.headers["idempotency-replayed"] == "true"
    assert len(c.get(f"{V1}/states/J/events").json()["data"]) == 2


def test_idempotency_records_expire(c, app):
    k = {"Idempotency-Key": "old"}
    put(c, "E", {"agent_id": "w", "data": {"v": 1}}, **k)
    err(put(c, "E", {"agent_id": "w", "data": {"v": 2}}, **k), 409, "IDEMPOTENCY_CONFLICT")
    app[1].advance(86_400 + 1)  # the default retention (D10): then the key is new again
    r = put(c, "E", {"agent_id": "w", "data": {"v": 2}}, **k)
    assert r.status_code == 200 and "idempotency-replayed" not in r.headers and r.json()["data"] == {"v": 2}


def test_watch_once_replays_the_backlog_as_frames(c):
    seqs = [put(c, f"w{i}", {"agent_id": "a", "data": {"n": i}}).json()["latest_sequence"] for i in range(3)]
    c.delete(f"{V1}/states/w0")
    r = c.get(f"{V1}/states/watch", params={"once": "true", "after": seqs[0]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
    assert r.headers["x-ratelimit-limit"] and r.headers["x-request-id"]  # D31
    frames = [f for f in r.text.split("\n\n") if f.strip()]
    assert len(frames) == 3
    lines = frames[0].split("\n")
    assert lines[0] == f"id: {seqs[1]}" and lines[1] == "event: state.upsert" and lines[2].startswith("data: {")
    import json
    data = json.loads(lines[2][6:])
    assert list(data) == EVENT_KEYS and data["data"] == {"n": 1} and data["tags"] == []
    assert frames[2].split("\n")[1] == "event: state.delete"
    # Last-Event-ID is used when `after` is absent
    r = c.get(f"{V1}/states/watch", params={"once": "true"}, headers={"Last-Event-ID": str(seqs[2])})
    assert [f.split("\n")[1] for f in r.text.split("\n\n") if f.strip()] == ["event: state.delete"]


def test_watch_streams_give_their_slot_back(tmp_path):
    with agentstate_app(tmp_path, "slots", max_streams_per_client=2) as (c, clock):
        put(c, "s")
        for _ in range(6):  # more streams than the client's slots, one after another
            r = c.get(f"{V1}/states/watch", params={"once": "true"})
            assert r.status_code == 200 and "event: state.upsert" in r.text
