"""The native conversation routes through the whole app (both stores under `make test-postgres`): every route,
its statuses and errors, the scopes, and tenant isolation."""

from __future__ import annotations

import json

import pytest

from stigmer.clock import ManualClock
from support import ADMIN_KEY, app_settings, native_error as error, new_key


def msg(i=0, **members):
    return {"role": ("user", "assistant")[i % 2], "content": f"message {i}", **members}


@pytest.fixture
def clocked(tmp_path):
    from starlette.testclient import TestClient

    from stigmer.app import create_app

    clock = ManualClock()
    settings = app_settings({"data_dir": str(tmp_path / "app")})
    with TestClient(create_app(settings, clock), base_url="http://localhost", raise_server_exceptions=False) as c:
        yield c, clock


def test_create_and_read_back(clocked):
    c, clock = clocked
    messages = [msg(0, metadata={"z": 1, "a": [None]}, token_count=3, input_tokens=1, output_tokens=2,
                    cost_microdollars=9, model="m1"),
                msg(1, parent_message_id="p", observation_type="generation", start_time=5, end_time=6,
                    status="success", level="debug")]
    r = c.post("/v1/conversations", json={"external_id": "ext/1 é", "title": "T", "metadata": {"k": "v", "a": 1},
                                          "tags": ["b", "a", "b"], "messages": messages})
    assert r.status_code == 201, r.text
    conv = r.json()
    assert (conv["external_id"], conv["title"], conv["tags"]) == ("ext/1 é", "T", ["a", "b"])
    assert list(conv["metadata"]) == ["k", "a"]
    assert (conv["message_count"], conv["token_count"], conv["total_tokens"], conv["total_cost_microdollars"]) == (
        2, 3, 3, 9)
    assert conv["created_at"] == conv["updated_at"] == "2023-11-14T22:13:20.000Z"
    first, second = conv["messages"]
    assert (first["position"], first["conversation_id"], first["model"], list(first["metadata"])) == (
        0, conv["id"], "m1", ["z", "a"])
    assert (second["observation_type"], second["start_time"], second["status"], second["level"]) == (
        "generation", 5, "success", "debug")
    assert c.get(f"/v1/conversations/{conv['id']}").json() == conv
    assert c.get("/v1/conversations:by-external-id/ext%2F1%20%C3%A9").json() == conv
    assert c.get("/v1/conversations:by-external-id/ext/1 é").json() == conv
    bare = {k: v for k, v in conv.items() if k != "messages"}
    assert c.get(f"/v1/conversations/{conv['id']}", params={"messages": "false"}).json() == bare
    assert c.get("/v1/conversations:by-external-id/ext/1 é", params={"messages": "0"}).json() == bare
    empty = c.post("/v1/conversations", json={}).json()
    assert (empty["external_id"], empty["title"], empty["metadata"], empty["tags"], empty["messages"]) == (
        None, None, None, [], [])


def test_get_caps_at_1000_messages_and_by_external_id_returns_all(client):
    conv = client.post("/v1/conversations", json={"external_id": "big", "messages": [msg(i) for i in range(1000)]}).json()
    client.post(f"/v1/conversations/{conv['id']}/messages", json={"messages": [msg(i) for i in range(1000, 1010)]})
    assert len(client.get(f"/v1/conversations/{conv['id']}").json()["messages"]) == 1000
    everything = client.get("/v1/conversations:by-external-id/big").json()
    assert [m["position"] for m in everything["messages"]] == list(range(1010))


@pytest.mark.parametrize(("body", "field"), [
    ({"messages": [msg(0, role="robot")]}, "messages[0].role"),
    ({"messages": [msg(0), msg(1, content="")]}, "messages[1].content"),
    ({"messages": [msg(0, content="a\x00b")]}, "messages[0].content"),
    ({"messages": [msg(0, content=1)]}, "messages[0].content"),
    ({"messages": [msg(0, token_count=-1)]}, "messages[0].token_count"),
    ({"messages": [msg(0, token_count=2**53)]}, "messages[0].token_count"),
    ({"messages": [msg(0, token_count=None)]}, "messages[0].token_count"),
    ({"messages": [msg(0, level="info")]}, "messages[0].level"),
    ({"messages": [msg(0, metadata=[1])]}, "messages[0].metadata"),
    ({"messages": [msg(0, bogus=1)]}, "messages[0].bogus"),
    ({"messages": [msg(0)] * 1001}, "messages"),
    ({"messages": "nope"}, "messages"),
    ({"tags": ["a b"]}, "tags[0]"),
    ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
    ({"external_id": "e" * 1025}, "external_id"),
    ({"title": "a\x00"}, "title"),
    ({"metadata": "x"}, "metadata"),
    ({"other": 1}, "other"),
])
def test_invalid_bodies_are_400_with_their_field_and_write_nothing(client, body, field):
    error(client.post("/v1/conversations", json=body), 400, field=field)
    assert client.get("/v1/conversations").json()["conversations"] == []


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b"null", b'"x"', b"\xff"])
def test_bodies_that_are_not_an_object_are_400(client, raw):
    r = client.post("/v1/conversations", content=raw)
    assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_json", "invalid_argument"), r.text


def test_too_large_a_body_is_413(client):
    error(client.post("/v1/conversations", content=b'{"title": "' + b"x" * (10 * 1024 * 1024) + b'"}'), 413,
          "payload_too_large")


def test_a_taken_external_id_is_409_conflict(client):
    a = client.post("/v1/conversations", json={"external_id": "e"}).json()
    error(client.post("/v1/conversations", json={"external_id": "e", "messages": [msg(0)]}), 409, "conflict")
    b = client.post("/v1/conversations", json={"external_id": "f"}).json()
    error(client.patch(f"/v1/conversations/{b['id']}", json={"external_id": "e"}), 409, "conflict")
    assert client.patch(f"/v1/conversations/{a['id']}", json={"external_id": "e"}).status_code == 200
    assert len(client.get("/v1/conversations").json()["conversations"]) == 2


def test_list_pages_by_updated_at_with_order_and_tag(clocked):
    c, clock = clocked
    made = []
    for i in range(7):
        clock.advance(1)
        made.append(c.post("/v1/conversations", json={"tags": ["even"] if i % 2 == 0 else ["odd"]}).json())
    seen, cursor = [], None
    while True:
        page = c.get("/v1/conversations", params={"limit": "3", **({"cursor": cursor} if cursor else {})}).json()
        assert all("messages" not in x for x in page["conversations"])
        seen += page["conversations"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [x["id"] for x in seen] == [x["id"] for x in reversed(made)]
    asc = c.get("/v1/conversations", params={"order": "asc", "tag": "even"}).json()
    assert [x["id"] for x in asc["conversations"]] == [x["id"] for x in made[::2]] and asc["next_cursor"] is None
    clock.advance(1)
    c.patch(f"/v1/conversations/{made[0]['id']}", json={"title": "moved"})
    assert c.get("/v1/conversations", params={"limit": "1"}).json()["conversations"][0]["id"] == made[0]["id"]
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "x"}, "limit"),
                          ({"cursor": "!!"}, "cursor"), ({"order": "up"}, "order"), ({"tag": "a b"}, "tag")):
        error(c.get("/v1/conversations", params=params), 400, field=field)


def test_update_changes_only_the_members_given(clocked):
    c, clock = clocked
    conv = c.post("/v1/conversations", json={"external_id": "e", "title": "T", "metadata": {"a": 1},
                                             "messages": [msg(0)]}).json()
    clock.advance(1)
    u = c.patch(f"/v1/conversations/{conv['id']}", json={"title": "New"})
    assert u.status_code == 200, u.text
    u = u.json()
    assert (u["title"], u["metadata"], u["external_id"], u["message_count"]) == ("New", {"a": 1}, "e", 1)
    assert "messages" not in u and u["updated_at"] == "2023-11-14T22:13:21.000Z"
    u = c.patch(f"/v1/conversations/{conv['id']}", json={"metadata": None, "external_id": None}).json()
    assert (u["title"], u["metadata"], u["external_id"]) == ("New", None, None)
    error(c.patch(f"/v1/conversations/{conv['id']}", json={"title": 1}), 400, field="title")
    error(c.patch(f"/v1/conversations/{conv['id']}", json={"metadata": [1]}), 400, field="metadata")
    error(c.patch(f"/v1/conversations/{conv['id']}", json={"nope": 1}), 400, field="nope")
    error(c.patch("/v1/conversations/nope", json={"title": "x"}), 404, "not_found")


def test_delete_then_404_everywhere(client):
    conv = client.post("/v1/conversations", json={"external_id": "e", "tags": ["a"], "messages": [msg(0)]}).json()
    r = client.delete(f"/v1/conversations/{conv['id']}")
    assert (r.status_code, r.json()) == (200, {"deleted": True})
    cid = conv["id"]
    for r in (client.delete(f"/v1/conversations/{cid}"), client.get(f"/v1/conversations/{cid}"),
              client.get("/v1/conversations:by-external-id/e"), client.patch(f"/v1/conversations/{cid}", json={}),
              client.post(f"/v1/conversations/{cid}/messages", json={"messages": [msg(0)]}),
              client.get(f"/v1/conversations/{cid}/messages"), client.delete(f"/v1/conversations/{cid}/messages"),
              client.delete(f"/v1/conversations/{cid}/messages/last"), client.get(f"/v1/conversations/{cid}/tags"),
              client.post(f"/v1/conversations/{cid}/tags", json={"tags": ["x"]}),
              client.delete(f"/v1/conversations/{cid}/tags/a")):
        error(r, 404, "not_found")
    assert client.get("/v1/conversations:tags").json() == {"tags": []}


def test_append_list_pop_and_clear_messages(clocked):
    c, clock = clocked
    conv = c.post("/v1/conversations", json={"messages": [msg(0, token_count=1)]}).json()
    cid = conv["id"]
    clock.advance(1)
    r = c.post(f"/v1/conversations/{cid}/messages", json={"messages": [msg(i, token_count=2) for i in range(1, 5)]})
    assert r.status_code == 201, r.text
    added = r.json()["messages"]
    assert [m["position"] for m in added] == [1, 2, 3, 4] and {m["created_at"] for m in added} == {
        "2023-11-14T22:13:21.000Z"}
    got = c.get(f"/v1/conversations/{cid}", params={"messages": "false"}).json()
    assert (got["message_count"], got["token_count"], got["updated_at"]) == (5, 9, "2023-11-14T22:13:21.000Z")
    seen, cursor = [], None
    while True:
        page = c.get(f"/v1/conversations/{cid}/messages", params={"limit": "2", **({"cursor": cursor} if cursor else {})})
        seen += page.json()["messages"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [m["content"] for m in seen] == [f"message {i}" for i in range(5)]
    last = c.get(f"/v1/conversations/{cid}/messages", params={"last": "2"}).json()
    assert [m["position"] for m in last["messages"]] == [3, 4] and last["next_cursor"] is None
    error(c.get(f"/v1/conversations/{cid}/messages", params={"last": "1", "cursor": cursor or seen[0]["id"]}), 400)
    for params, field in (({"limit": "0"}, "limit"), ({"last": "-1"}, "last"), ({"cursor": "??"}, "cursor")):
        error(c.get(f"/v1/conversations/{cid}/messages", params=params), 400, field=field)
    popped = c.delete(f"/v1/conversations/{cid}/messages/last")
    assert popped.status_code == 200 and popped.json()["message"] == seen[-1]
    got = c.get(f"/v1/conversations/{cid}", params={"messages": "false"}).json()
    assert (got["message_count"], got["token_count"]) == (4, 7)
    cleared = c.delete(f"/v1/conversations/{cid}/messages")
    assert (cleared.status_code, cleared.json()) == (200, {"deleted": 4})
    assert c.delete(f"/v1/conversations/{cid}/messages/last").json() == {"message": None}
    assert c.delete(f"/v1/conversations/{cid}/messages").json() == {"deleted": 0}
    got = c.get(f"/v1/conversations/{cid}").json()
    assert (got["message_count"], got["token_count"], got["messages"]) == (0, 0, [])
    error(c.post(f"/v1/conversations/{cid}/messages", json={"messages": []}), 400, field="messages")
    error(c.post(f"/v1/conversations/{cid}/messages", json={}), 400, field="messages")
    error(c.post("/v1/conversations/nope/messages", json={"messages": [msg(0, role="x")]}), 400)  # validation first


def test_tags(clocked):
    c, clock = clocked
    conv = c.post("/v1/conversations", json={"tags": ["b"]}).json()
    c.post("/v1/conversations", json={"tags": ["Z"]})
    clock.advance(1)
    r = c.post(f"/v1/conversations/{conv['id']}/tags", json={"tags": ["d", "c", "d"]})
    assert (r.status_code, r.json()) == (200, {"tags": ["b", "c", "d"]})
    assert c.get(f"/v1/conversations/{conv['id']}/tags").json() == {"tags": ["b", "c", "d"]}
    assert c.delete(f"/v1/conversations/{conv['id']}/tags/c").json() == {"tags": ["b", "d"]}
    assert c.delete(f"/v1/conversations/{conv['id']}/tags/absent").json() == {"tags": ["b", "d"]}
    assert c.delete(f"/v1/conversations/{conv['id']}/tags/not%20a%20tag").json() == {"tags": ["b", "d"]}
    assert c.get("/v1/conversations:tags").json() == {"tags": ["Z", "b", "d"]}
    assert c.get(f"/v1/conversations/{conv['id']}").json()["updated_at"] == conv["updated_at"]
    error(c.post(f"/v1/conversations/{conv['id']}/tags", json={"tags": []}), 400, field="tags")
    error(c.post(f"/v1/conversations/{conv['id']}/tags", json={"tags": ["x" * 51]}), 400, field="tags[0]")
    error(c.post(f"/v1/conversations/{conv['id']}/tags", json={"tags": "a"}), 400, field="tags")


def test_export_streams_ndjson_newest_first_with_every_message(clocked):
    c, clock = clocked
    made = []
    for i in range(5):
        clock.advance(1)
        made.append(c.post("/v1/conversations", json={"title": f"c{i}", "messages": [msg(j) for j in range(i)]}).json())
    r = c.get("/v1/conversations:export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert r.text.endswith("\n")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [x["id"] for x in lines] == [x["id"] for x in reversed(made)]
    assert lines == list(reversed(made))  # the same shape as a created conversation, messages included
    two = c.get("/v1/conversations:export", params={"limit": "2"}).text.splitlines()
    assert [json.loads(x)["id"] for x in two] == [made[4]["id"], made[3]["id"]]
    for bad in ("0", "x", "-1"):
        error(c.get("/v1/conversations:export", params={"limit": bad}), 400, field="limit")


def test_an_empty_export_is_an_empty_body(client):
    r = client.get("/v1/conversations:export")
    assert (r.status_code, r.content) == (200, b"")


def test_hostile_ids_are_unknown_never_500(client):
    for cid in ("%00", "a%00b", "%ED%A0%80", "x" * 300, "%FF"):
        for r in (client.get(f"/v1/conversations/{cid}"), client.delete(f"/v1/conversations/{cid}/messages/last"),
                  client.get(f"/v1/conversations/{cid}/messages"), client.get(f"/v1/conversations:by-external-id/{cid}"),
                  client.post(f"/v1/conversations/{cid}/messages", json={"messages": [msg(0)]})):
            assert r.status_code in (400, 404), (cid, r.status_code, r.text)


def test_idempotency_key_replays_a_create(client):
    h = {"Idempotency-Key": "create-1"}
    first = client.post("/v1/conversations", json={"title": "T", "messages": [msg(0)]}, headers=h)
    again = client.post("/v1/conversations", json={"messages": [msg(0)], "title": "T"}, headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["idempotency-replayed"] == "true"
    assert len(client.get("/v1/conversations").json()["conversations"]) == 1
    error(client.post("/v1/conversations", json={"title": "U"}, headers=h), 409, "idempotency_conflict")
    cid = first.json()["id"]
    pops = [client.delete(f"/v1/conversations/{cid}/messages/last", headers={"Idempotency-Key": "pop-1"})
            for _ in range(2)]
    assert pops[0].json() == pops[1].json() and pops[0].json()["message"]["content"] == "message 0"


# access


def auth(secret):
    return {"Authorization": f"Bearer {secret}"}


def test_tenants_are_isolated(keyed_client):
    c = keyed_client
    a, b = auth(new_key(c, "team-a", ("read", "write"))), auth(new_key(c, "team-b", ("read", "write")))
    conv = c.post("/v1/conversations", json={"external_id": "same", "tags": ["x"], "messages": [msg(0)]},
                  headers=a).json()
    other = c.post("/v1/conversations", json={"external_id": "same", "tags": ["y"]}, headers=b)
    assert other.status_code == 201  # external ids are per tenant
    cid = conv["id"]
    for r in (c.get(f"/v1/conversations/{cid}", headers=b), c.patch(f"/v1/conversations/{cid}", json={}, headers=b),
              c.delete(f"/v1/conversations/{cid}", headers=b), c.get(f"/v1/conversations/{cid}/messages", headers=b),
              c.post(f"/v1/conversations/{cid}/messages", json={"messages": [msg(0)]}, headers=b),
              c.delete(f"/v1/conversations/{cid}/messages/last", headers=b),
              c.delete(f"/v1/conversations/{cid}/messages", headers=b), c.get(f"/v1/conversations/{cid}/tags", headers=b),
              c.post(f"/v1/conversations/{cid}/tags", json={"tags": ["z"]}, headers=b),
              c.delete(f"/v1/conversations/{cid}/tags/x", headers=b)):
        error(r, 404, "not_found")
    assert c.get("/v1/conversations:by-external-id/same", headers=b).json()["id"] == other.json()["id"]
    assert [x["id"] for x in c.get("/v1/conversations", headers=b).json()["conversations"]] == [other.json()["id"]]
    assert c.get("/v1/conversations:tags", headers=b).json() == {"tags": ["y"]}
    assert [json.loads(x)["id"] for x in c.get("/v1/conversations:export", headers=b).text.splitlines()] == [
        other.json()["id"]]
    assert c.get(f"/v1/conversations/{cid}", headers=a).json()["message_count"] == 1  # untouched


def test_scopes_read_write_and_fine_scopes(keyed_client):
    c = keyed_client
    writer = auth(new_key(c, scopes=("read", "write")))
    cid = c.post("/v1/conversations", json={"messages": [msg(0)]}, headers=writer).json()["id"]
    reader = auth(new_key(c, scopes=("read",)))
    assert c.get(f"/v1/conversations/{cid}", headers=reader).status_code == 200
    assert c.get("/v1/conversations:export", headers=reader).status_code == 200
    for r in (c.post("/v1/conversations", json={}, headers=reader),
              c.post(f"/v1/conversations/{cid}/messages", json={"messages": [msg(0)]}, headers=reader),
              c.delete(f"/v1/conversations/{cid}/messages/last", headers=reader),
              c.delete(f"/v1/conversations/{cid}", headers=reader)):
        assert error(r, 403, "forbidden")["details"]["scope"] == "conversations:write"
    fine = auth(new_key(c, scopes=("conversations:read",)))
    assert c.get(f"/v1/conversations/{cid}", headers=fine).status_code == 200
    error(c.post("/v1/conversations", json={}, headers=fine), 403, "forbidden")
    fine_writer = auth(new_key(c, scopes=("conversations:write",)))
    assert c.post("/v1/conversations", json={}, headers=fine_writer).status_code == 201
    error(c.get(f"/v1/conversations/{cid}", headers=fine_writer), 403, "forbidden")  # write never implies read
    state_only = auth(new_key(c, scopes=("state:read", "state:write", "claim:read")))
    for r in (c.get(f"/v1/conversations/{cid}", headers=state_only), c.get("/v1/conversations", headers=state_only),
              c.post("/v1/conversations", json={}, headers=state_only)):
        error(r, 403, "forbidden")
    error(c.get("/v1/conversations", headers=auth("stg_nope")), 401, "unauthenticated")


def test_prefix_limited_credentials_and_capability_tokens_are_not_widened(keyed_client):
    c = keyed_client
    writer = auth(new_key(c, scopes=("read", "write")))
    cid = c.post("/v1/conversations", json={"messages": [msg(0)]}, headers=writer).json()["id"]
    limited = auth(new_key(c, scopes=("read", "write"), prefixes=("app/",)))
    for r in (c.get(f"/v1/conversations/{cid}", headers=limited), c.get("/v1/conversations", headers=limited),
              c.post("/v1/conversations", json={}, headers=limited),
              c.get("/v1/conversations:export", headers=limited)):
        error(r, 403, "forbidden")
    one = auth(new_key(c, scopes=("read",), prefixes=(f"_conversations/{cid}",)))
    assert c.get(f"/v1/conversations/{cid}", headers=one).status_code == 200
    error(c.get("/v1/conversations", headers=one), 403, "forbidden")
    token = c.post("/v1/tokens", json={"name": "t", "scopes": ["state:read"]}, headers=writer)
    assert token.status_code == 201, token.text
    error(c.get(f"/v1/conversations/{cid}", headers=auth(token.json()["secret"])), 403, "forbidden")
    refused = c.post("/v1/tokens", json={"name": "t", "scopes": ["conversations:read"]}, headers=writer)
    assert refused.status_code == 400, refused.text  # no capability token holds a conversation scope
    narrow = c.post("/v1/tokens", json={"name": "t", "scopes": ["read"], "prefixes": ["app/"]}, headers=writer)
    error(c.get(f"/v1/conversations/{cid}", headers=auth(narrow.json()["secret"])), 403, "forbidden")
    admin = auth(ADMIN_KEY)
    assert c.get(f"/v1/conversations/{cid}", headers=admin).status_code == 200


# hostile input

SCALARS = [None, True, False, 0, -1, 1.5, 2**53, 2**64, 1e308, "", "x", "\u0000", "\udc80", "a b", "9" * 400, [], {}]
MEMBERS = ["external_id", "title", "metadata", "tags", "messages", "role", "content", "token_count", "input_tokens",
           "cost_microdollars", "model", "observation_type", "status", "level", "start_time", "parent_message_id"]
ROUTES = [("POST", "/v1/conversations"), ("GET", "/v1/conversations"), ("GET", "/v1/conversations/{}"),
          ("PATCH", "/v1/conversations/{}"), ("DELETE", "/v1/conversations/{}"),
          ("POST", "/v1/conversations/{}/messages"), ("GET", "/v1/conversations/{}/messages"),
          ("DELETE", "/v1/conversations/{}/messages"), ("DELETE", "/v1/conversations/{}/messages/last"),
          ("GET", "/v1/conversations/{}/tags"), ("POST", "/v1/conversations/{}/tags"),
          ("DELETE", "/v1/conversations/{}/tags/{}"), ("GET", "/v1/conversations:by-external-id/{}"),
          ("GET", "/v1/conversations:export"), ("GET", "/v1/conversations:tags")]
PARAMS = ["limit", "cursor", "order", "tag", "messages", "last"]


def hostile(rng, depth=0):
    pick = rng.random()
    if depth < 3 and pick < 0.2:
        return [hostile(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if depth < 3 and pick < 0.45:
        return {rng.choice(MEMBERS): hostile(rng, depth + 1) for _ in range(rng.randrange(0, 5))}
    return rng.choice(SCALARS)


def hostile_body(rng) -> bytes:
    pick = rng.random()
    if pick < 0.1:
        return rng.choice([b"", b"{", b"nul", b"\xff\xfe", b'{"a":1,"a":2}', b"1e999", b'"\\ud800"'])
    if pick < 0.6:  # a valid body with one member changed: gets past the first checks
        obj = {"messages": [msg(0), msg(1, metadata={"k": [1]})], "tags": ["t"]}
        target = obj["messages"][rng.randrange(2)] if rng.random() < 0.5 else obj
        target[rng.choice(MEMBERS)] = hostile(rng)
    else:
        obj = {rng.choice(MEMBERS): hostile(rng) for _ in range(rng.randrange(0, 6))}
    return json.dumps(obj).encode()


def test_no_input_is_a_500(client):
    import random

    rng = random.Random(20261201)  # fixed: a failure is reproducible
    real = client.post("/v1/conversations", json={"external_id": "e", "messages": [msg(0)], "tags": ["t"]}).json()["id"]
    segments = [real, real, "nope", "%FF", "%00", "a%2Fb", "x" * 1100, "%ED%A0%80", "..", "%20"]
    for i in range(1500):
        method, template = rng.choice(ROUTES)
        path = template.format(*(rng.choice(segments) for _ in range(template.count("{}"))))
        params = {rng.choice(PARAMS): str(rng.choice(SCALARS)).replace("\udc80", "?") for _ in range(rng.randrange(3))}
        r = client.request(method, path, content=hostile_body(rng), params=params,
                           headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (i, method, path, params, r.status_code, r.text[:300])
        if r.status_code >= 400:
            err = r.json()["error"]
            assert {"code", "message", "request_id"} <= set(err) and err["code"].islower(), (i, path, err)
