"""AgentState conversations, messages, tags, export and AI endpoints (specs/agentstate.md §5.5–5.8; D7, D12,
D13, D15, D28, D33), over HTTP in-process, with the AI endpoints against a real chat-completions server."""

from __future__ import annotations

import pytest

from agentstate_support import V1, agentstate_app, err, live_key
from chat_server import FOLLOW_UPS, TITLE, running_chat_server

CONVERSATION_KEYS = ["id", "project_id", "external_id", "title", "metadata", "message_count", "token_count",
                     "total_cost_microdollars", "total_tokens", "created_at", "updated_at"]
MESSAGE_KEYS = ["id", "role", "content", "metadata", "token_count", "model", "input_tokens", "output_tokens",
                "cost_microdollars", "parent_message_id", "observation_type", "start_time", "end_time", "status",
                "level", "created_at"]
NOT_FOUND = "Conversation not found"
T0 = 1_795_460_000_000


def create(c, **body):
    r = c.post(f"{V1}/conversations", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def say(*contents, role="user"):
    return [{"role": role, "content": text} for text in contents]


def test_create_example_counters_and_shape(c, app):
    body = create(c, external_id="ext-1", title="T", metadata={"k": "v"},
                  messages=[{"role": "user", "content": "hello", "token_count": 5},
                            {"role": "assistant", "content": "hi", "input_tokens": 3, "output_tokens": 4,
                             "cost_microdollars": 12, "model": "m1", "metadata": {"b": 1, "a": 2}}])
    assert list(body) == CONVERSATION_KEYS + ["messages"]
    assert body["project_id"] == "default" and body["external_id"] == "ext-1" and body["metadata"] == {"k": "v"}
    assert (body["message_count"], body["token_count"], body["total_tokens"], body["total_cost_microdollars"]) == (
        2, 5, 7, 12)
    assert body["created_at"] == body["updated_at"] == T0
    first, second = body["messages"]
    assert list(first) == MESSAGE_KEYS and len(first["id"]) == 21 and len(body["id"]) == 21
    assert first["token_count"] == 5 and first["metadata"] is None and first["model"] is None
    assert first["created_at"] == second["created_at"] == T0  # one request, one created_at
    assert list(second["metadata"]) == ["b", "a"] and second["token_count"] == 0
    assert c.get(f"{V1}/conversations/{body['id']}").json() == body


def test_create_without_anything_and_conflicting_external_id(c):
    empty = create(c)
    assert empty["messages"] == [] and empty["title"] is None and empty["external_id"] is None
    create(c, external_id="dup")
    err(c.post(f"{V1}/conversations", json={"external_id": "dup", "messages": say("x")}), 409, "CONFLICT",
        "A conversation with this external_id already exists")
    assert len(c.get(f"{V1}/conversations").json()["data"]) == 2  # the refused one left nothing (D13)


@pytest.mark.parametrize("body, message", [
    ({"external_id": 5}, "Expected string, received number"),
    ({"external_id": "x" * 1025}, "String must contain at most 1024 character(s)"),
    ({"title": ["t"]}, "Expected string, received array"),
    ({"metadata": [1]}, "Expected object, received array"),
    ({"messages": {}}, "Expected array, received object"),
    ({"messages": [{"content": "x"}]}, "Required"),
    ({"messages": [{"role": "robot", "content": "x"}]},
     "Invalid enum value. Expected 'system' | 'user' | 'assistant' | 'tool', received 'robot'"),
    ({"messages": [{"role": "user"}]}, "Required"),
    ({"messages": [{"role": "user", "content": ""}]}, "String must contain at least 1 character(s)"),
    ({"messages": [{"role": "user", "content": "x", "metadata": "m"}]}, "Expected object, received string"),
    ({"messages": [{"role": "user", "content": "x", "token_count": -1}]},
     "Number must be greater than or equal to 0"),
    ({"messages": [{"role": "user", "content": "x", "input_tokens": 1.5}]}, "Expected integer, received float"),
    ({"messages": [{"role": "user", "content": "x", "model": "m" * 101}]},
     "String must contain at most 100 character(s)"),
    ({"messages": [{"role": "user", "content": "x", "observation_type": "thought"}]},
     "Invalid enum value. Expected 'generation' | 'tool' | 'agent' | 'chain' | 'span' | 'event', received 'thought'"),
    ({"messages": [{"role": "user", "content": "x", "status": "ok"}]},
     "Invalid enum value. Expected 'success' | 'error', received 'ok'"),
    ({"messages": [{"role": "user", "content": "x", "level": "info"}]},
     "Invalid enum value. Expected 'debug' | 'default' | 'warning' | 'error', received 'info'"),
    ({"messages": [{"role": "user", "content": "ok"}, {"role": 1, "content": 2}]}, "Expected string, received number"),
    # the first failing member in the listed order wins
    ({"external_id": 1, "title": 2}, "Expected string, received number"),
    ({"messages": [{"role": "user", "content": "x", "token_count": "a", "model": 3}]},
     "Expected number, received string"),
])
def test_create_validation(c, body, message):
    err(c.post(f"{V1}/conversations", json=body), 400, "BAD_REQUEST", message)


def test_bodies_that_are_not_objects(c):
    for raw in (b"", b"null", b"{", b"[]"):
        r = c.post(f"{V1}/conversations", content=raw, headers={"Content-Type": "application/json"})
        err(r, 400, "BAD_REQUEST", "Expected object, received array" if raw == b"[]" else "Invalid JSON body")


def test_null_members_count_as_omitted(c):
    body = create(c, external_id=None, title=None, metadata=None,
                  messages=[{"role": "user", "content": "x", "token_count": None, "model": None}])
    assert body["messages"][0]["token_count"] == 0 and body["title"] is None


def test_a_thousand_messages_in_one_request_and_no_more(c):
    body = create(c, messages=say(*[f"m{i}" for i in range(1000)]))
    assert body["message_count"] == 1000 and [m["content"] for m in body["messages"]][-1] == "m999"
    err(c.post(f"{V1}/conversations", json={"messages": say(*["x"] * 1001)}), 400, "BAD_REQUEST",
        "Array must contain at most 1000 element(s)")
    err(c.post(f"{V1}/conversations/{body['id']}/messages", json={"messages": say(*["x"] * 1001)}), 400,
        "BAD_REQUEST", "Array must contain at most 1000 element(s)")


def test_text_no_store_can_hold_is_refused_not_a_500(c):
    r = c.post(f"{V1}/conversations", json={"messages": say("a\x00b")})
    err(r, 400, "BAD_REQUEST")
    r = c.post(f"{V1}/conversations", content=b'{"title": "\\ud800"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text


def test_list_orders_pages_and_filters_by_tag(c, app):
    ids = []
    for i in range(5):
        ids.append(create(c, title=f"c{i}")["id"])
        app[1].advance(1)
    c.post(f"{V1}/conversations/{ids[1]}/tags", json={"tags": ["red"]})
    c.post(f"{V1}/conversations/{ids[3]}/tags", json={"tags": ["red", "blue"]})
    page = c.get(f"{V1}/conversations?limit=2").json()
    assert [x["id"] for x in page["data"]] == [ids[4], ids[3]]
    assert page["pagination"] == {"limit": 2, "next_cursor": f"{T0 + 3000}.{ids[3]}"}
    assert list(page["data"][0]) == CONVERSATION_KEYS  # no messages in a list
    seen = [x["id"] for x in page["data"]]
    cursor = page["pagination"]["next_cursor"]
    while cursor:
        page = c.get(f"{V1}/conversations", params={"limit": 2, "cursor": cursor}).json()
        seen += [x["id"] for x in page["data"]]
        cursor = page["pagination"]["next_cursor"]
    assert seen == ids[::-1]
    asc = c.get(f"{V1}/conversations?order=asc&limit=10").json()
    assert [x["id"] for x in asc["data"]] == ids and asc["pagination"] == {"limit": 10, "next_cursor": None}
    # a bare <ms> cursor skips that whole millisecond
    assert [x["id"] for x in c.get(f"{V1}/conversations?order=asc&cursor={T0 + 1000}").json()["data"]] == ids[2:]
    assert [x["id"] for x in c.get(f"{V1}/conversations?cursor={T0 + 1000}").json()["data"]] == [ids[0]]
    assert [x["id"] for x in c.get(f"{V1}/conversations?tag=red").json()["data"]] == [ids[3], ids[1]]
    assert c.get(f"{V1}/conversations?limit=abc").json()["pagination"]["limit"] == 50
    assert c.get(f"{V1}/conversations?limit=0").json()["pagination"]["limit"] == 50
    assert c.get(f"{V1}/conversations?limit=7x").json()["pagination"]["limit"] == 7
    assert c.get(f"{V1}/conversations?limit=1000").json()["pagination"]["limit"] == 100
    cursor_message = "Cursor must be a valid positive number (Unix timestamp in milliseconds)"
    for bad in ("abc", "-1", f"{T0}.", "1e400", str(2**53)):
        err(c.get(f"{V1}/conversations", params={"cursor": bad}), 400, "INVALID_CURSOR", cursor_message)
    err(c.get(f"{V1}/conversations?tag=no%20spaces"), 400, "INVALID_TAG",
        "tag can only contain letters, numbers, hyphens, and underscores")
    err(c.get(f"{V1}/conversations", params={"tag": "x" * 51}), 400, "INVALID_TAG", "tag cannot exceed 50 characters")
    err(c.get(f"{V1}/conversations?tag="), 400, "INVALID_TAG", "tag cannot be empty")


def test_get_fields_and_ids(c):
    body = create(c, title="T", messages=say("a", "b"))
    cid = body["id"]
    assert c.get(f"{V1}/conversations/{cid}?fields=id,title").json() == {"id": cid, "title": "T"}
    assert c.get(f"{V1}/conversations/{cid}?fields= id , messages").json() == {
        "id": cid, "messages": body["messages"]}
    assert list(c.get(f"{V1}/conversations/{cid}?fields=!messages").json()) == CONVERSATION_KEYS
    assert c.get(f"{V1}/conversations/{cid}?fields=").json() == body
    assert c.get(f"{V1}/conversations/{cid}?include=messages").json() == body  # D15
    err(c.get(f"{V1}/conversations/{cid}?fields=id,bogus,nope"), 400, "INVALID_FIELD",
        "Invalid field(s): bogus, nope. Valid fields: id, project_id, external_id, title, metadata, message_count, "
        "token_count, total_cost_microdollars, total_tokens, created_at, updated_at, messages")
    err(c.get(f"{V1}/conversations/missing_id"), 404, "NOT_FOUND", NOT_FOUND)
    for bad in ("has%20space", "a.b", "x" * 256, "%00"):
        err(c.get(f"{V1}/conversations/{bad}"), 400, "BAD_REQUEST", "Invalid conversation id")
        err(c.delete(f"{V1}/conversations/{bad}"), 400, "BAD_REQUEST", "Invalid conversation id")
        err(c.put(f"{V1}/conversations/{bad}", json={"title": "x"}), 400, "BAD_REQUEST", "Invalid conversation id")
    # other routes find a malformed id unknown
    err(c.get(f"{V1}/conversations/a.b/messages"), 404, "NOT_FOUND", NOT_FOUND)


def test_get_caps_messages_at_a_thousand_but_by_external_id_gives_all(c):
    body = create(c, external_id="a/b c", messages=say(*[f"m{i}" for i in range(1000)]))
    c.post(f"{V1}/conversations/{body['id']}/messages", json={"messages": say("m1000", "m1001")})
    got = c.get(f"{V1}/conversations/{body['id']}").json()
    assert got["message_count"] == 1002 and len(got["messages"]) == 1000 and got["messages"][-1]["content"] == "m999"
    every = c.get(f"{V1}/conversations/by-external-id/a%2Fb%20c?fields=id").json()  # fields ignored
    assert every["id"] == body["id"] and len(every["messages"]) == 1002 and every["messages"][-1]["content"] == "m1001"
    err(c.get(f"{V1}/conversations/by-external-id/nope"), 404, "NOT_FOUND", NOT_FOUND)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_title_and_metadata(c, app, method):
    body = create(c, title="old", metadata={"a": 1}, messages=say("x"))
    app[1].advance(2)
    r = c.request(method, f"{V1}/conversations/{body['id']}", json={"metadata": {"b": 2}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert list(out) == CONVERSATION_KEYS and out["title"] == "old" and out["metadata"] == {"b": 2}
    assert out["updated_at"] == T0 + 2000 and out["created_at"] == T0
    out = c.request(method, f"{V1}/conversations/{body['id']}", json={"title": "new", "metadata": None}).json()
    assert out["title"] == "new" and out["metadata"] == {"b": 2}  # null = omitted (D17)
    # body validation before the id's shape, the id's shape before existence
    err(c.request(method, f"{V1}/conversations/a.b", json={"title": 1}), 400, "BAD_REQUEST",
        "Expected string, received number")
    err(c.request(method, f"{V1}/conversations/unknown", json={"title": "x"}), 404, "NOT_FOUND", NOT_FOUND)


def test_delete_and_bulk_delete(c):
    a, b, d = (create(c, messages=say("x"))["id"] for _ in range(3))
    assert c.delete(f"{V1}/conversations/{a}").status_code == 204
    err(c.get(f"{V1}/conversations/{a}"), 404, "NOT_FOUND", NOT_FOUND)
    err(c.delete(f"{V1}/conversations/{a}"), 404, "NOT_FOUND", NOT_FOUND)
    r = c.post(f"{V1}/conversations/bulk-delete", json={"ids": [b, b, a, "nope", d]})
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert c.get(f"{V1}/conversations").json()["data"] == []
    err(c.post(f"{V1}/conversations/bulk-delete", json={"ids": []}), 400, "BAD_REQUEST",
        "Array must contain at least 1 element(s)")
    err(c.post(f"{V1}/conversations/bulk-delete", json={"ids": ["x"] * 101}), 400, "BAD_REQUEST",
        "Array must contain at most 100 element(s)")
    err(c.post(f"{V1}/conversations/bulk-delete", json={}), 400, "BAD_REQUEST", "Required")
    err(c.post(f"{V1}/conversations/bulk-delete", json={"ids": [1]}), 400, "BAD_REQUEST",
        "Expected string, received number")
    ids = [create(c)["id"] for _ in range(100)]
    assert c.post(f"{V1}/conversations/bulk-delete", json={"ids": ids}).json() == {"deleted": 100}  # D12


def test_export(c, app):
    ids = []
    for i in range(3):
        ids.append(create(c, title=f"c{i}", messages=say(f"m{i}", "again"))["id"])
        app[1].advance(1)
    r = c.post(f"{V1}/conversations/export", json={})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["count"] == 3 and [x["id"] for x in body["data"]] == ids[::-1]
    item = body["data"][-1]
    assert set(item) == set(CONVERSATION_KEYS) | {"messages"} and item["message_count"] == 2
    assert [list(m) for m in item["messages"]] == [["id", "role", "content", "metadata", "token_count", "model",
                                                   "input_tokens", "output_tokens", "cost_microdollars",
                                                   "created_at"]] * 2
    assert [m["content"] for m in item["messages"]] == ["m0", "again"]
    c.post(f"{V1}/conversations/{ids[0]}/messages", json={"messages": say("late")})  # ids[0] is now the newest
    picked = c.post(f"{V1}/conversations/export", json={"ids": [ids[2], "nope", ids[0]]}).json()
    assert [x["id"] for x in picked["data"]] == [ids[0], ids[2]] and picked["count"] == 2  # D28
    assert picked["data"][0]["message_count"] == 3
    assert c.post(f"{V1}/conversations/export", json={"ids": ["nope"]}).json() == {"data": [], "count": 0}
    assert c.post(f"{V1}/conversations/export", json={"ids": []}).json()["count"] == 3
    err(c.post(f"{V1}/conversations/export", json={"ids": ["x"] * 101}), 400, "BAD_REQUEST",
        "Array must contain at most 100 element(s)")


def test_export_without_ids_is_the_hundred_most_recent(c, app):
    ids = []
    for i in range(101):
        ids.append(create(c)["id"])
        app[1].advance(0.001)
    body = c.post(f"{V1}/conversations/export", json={}).json()
    assert body["count"] == 100 and [x["id"] for x in body["data"]] == ids[:0:-1]


def test_append_and_page_messages(c, app):
    body = create(c, messages=say("a"))
    cid = body["id"]
    app[1].advance(5)
    r = c.post(f"{V1}/conversations/{cid}/messages",
               json={"messages": [*say("b", "c"), {"role": "tool", "content": "d", "token_count": 2,
                                                    "input_tokens": 1, "cost_microdollars": 9}]})
    assert r.status_code == 201, r.text
    added = r.json()["messages"]
    assert [m["content"] for m in added] == ["b", "c", "d"] and {m["created_at"] for m in added} == {T0 + 5000}
    got = c.get(f"{V1}/conversations/{cid}?fields=!messages").json()
    assert (got["message_count"], got["token_count"], got["total_tokens"], got["total_cost_microdollars"],
            got["updated_at"]) == (4, 2, 1, 9, T0 + 5000)
    page = c.get(f"{V1}/conversations/{cid}/messages?limit=3").json()
    assert [m["content"] for m in page["data"]] == ["a", "b", "c"]
    assert page["pagination"] == {"limit": 3, "next_cursor": page["data"][-1]["id"]}
    rest = c.get(f"{V1}/conversations/{cid}/messages", params={"after": page["pagination"]["next_cursor"]}).json()
    assert [m["content"] for m in rest["data"]] == ["d"] and rest["pagination"] == {"limit": 100, "next_cursor": None}
    assert list(rest["data"][0]) == MESSAGE_KEYS
    unknown = c.get(f"{V1}/conversations/{cid}/messages?after=nope").json()  # D33: first page
    assert len(unknown["data"]) == 4
    assert c.get(f"{V1}/conversations/{cid}/messages?limit=9999").json()["pagination"]["limit"] == 500
    # validated before existence
    err(c.post(f"{V1}/conversations/nope/messages", json={"messages": []}), 400, "BAD_REQUEST",
        "Array must contain at least 1 element(s)")
    err(c.post(f"{V1}/conversations/nope/messages", json={}), 400, "BAD_REQUEST", "Required")
    err(c.post(f"{V1}/conversations/nope/messages", json={"messages": say("x")}), 404, "NOT_FOUND", NOT_FOUND)
    err(c.get(f"{V1}/conversations/nope/messages"), 404, "NOT_FOUND", NOT_FOUND)


def test_tags(c, app):
    a, b = create(c)["id"], create(c)["id"]
    app[1].advance(3)
    r = c.post(f"{V1}/conversations/{a}/tags", json={"tags": ["zeta", "alpha", "zeta"]})
    assert r.status_code == 201 and r.json() == {"data": {"tags": ["alpha", "zeta"]}}
    c.post(f"{V1}/conversations/{b}/tags", json={"tags": ["beta", "alpha"]})
    assert c.get(f"{V1}/conversations/{a}").json()["updated_at"] == T0  # tags do not move updated_at
    assert c.get(f"{V1}/tags").json() == {"data": {"tags": ["alpha", "beta", "zeta"]}}
    assert c.get(f"{V1}/conversations/{a}/tags").json() == {"data": {"tags": ["alpha", "zeta"]}}
    assert c.delete(f"{V1}/conversations/{a}/tags/zeta").status_code == 204
    assert c.delete(f"{V1}/conversations/{a}/tags/absent").status_code == 204
    assert c.delete(f"{V1}/conversations/{a}/tags/not%20a%20tag").status_code == 204
    assert c.get(f"{V1}/conversations/{a}/tags").json() == {"data": {"tags": ["alpha"]}}
    fifty = [f"t{i}" for i in range(50)]
    assert len(c.post(f"{V1}/conversations/{b}/tags", json={"tags": fifty}).json()["data"]["tags"]) == 52  # D12
    err(c.post(f"{V1}/conversations/{a}/tags", json={"tags": fifty + ["x"]}), 400, "BAD_REQUEST",
        "Array must contain at most 50 element(s)")
    err(c.post(f"{V1}/conversations/{a}/tags", json={"tags": []}), 400, "BAD_REQUEST",
        "Array must contain at least 1 element(s)")
    err(c.post(f"{V1}/conversations/{a}/tags", json={"tags": ["ok", "no way"]}), 400, "BAD_REQUEST",
        "tag can only contain letters, numbers, hyphens, and underscores")
    err(c.post(f"{V1}/conversations/{a}/tags", json={"tags": [""]}), 400, "BAD_REQUEST", "tag cannot be empty")
    err(c.post(f"{V1}/conversations/nope/tags", json={"tags": [7]}), 400, "BAD_REQUEST",
        "Expected string, received number")
    err(c.post(f"{V1}/conversations/nope/tags", json={"tags": ["x"]}), 404, "NOT_FOUND", NOT_FOUND)
    err(c.get(f"{V1}/conversations/nope/tags"), 404, "NOT_FOUND", NOT_FOUND)
    err(c.delete(f"{V1}/conversations/nope/tags/x"), 404, "NOT_FOUND", NOT_FOUND)
    c.delete(f"{V1}/conversations/{b}")
    assert c.get(f"{V1}/tags").json() == {"data": {"tags": ["alpha"]}}


def test_ai_endpoints_use_the_heuristics_without_a_model(c, app):
    cid = create(c, messages=[{"role": "system", "content": "be brief"},
                              {"role": "user", "content": "  How   do I configure leases for a fleet of many agents at once?"}])["id"]
    app[1].advance(1)
    no_body = {"Content-Type": "application/json"}  # the TypeScript SDK sends it on every request
    r = c.post(f"{V1}/conversations/{cid}/generate-title", headers=no_body)
    assert r.status_code == 200 and r.json() == {"title": "How do I configure leases for a fleet of many agents at"}
    got = c.get(f"{V1}/conversations/{cid}?fields=title,updated_at").json()
    assert got == {"title": "How do I configure leases for a fleet of many agents at", "updated_at": T0 + 1000}
    assert c.post(f"{V1}/conversations/{cid}/follow-ups", headers=no_body).json() == {"questions": []}
    assert c.post(f"{V1}/conversations/{cid}/generate-all", content=b"", headers=no_body).json() == {
        "title": "How do I configure leases for a fleet of many agents at", "follow_ups": []}
    untitled = create(c, messages=say("only the assistant", role="assistant"))["id"]
    assert c.post(f"{V1}/conversations/{untitled}/generate-title").json() == {"title": "Untitled conversation"}
    for path in ("generate-title", "follow-ups", "generate-all"):
        err(c.post(f"{V1}/conversations/nope/{path}"), 404, "NOT_FOUND", NOT_FOUND)


def test_ai_endpoints_ask_the_configured_model_and_fall_back_when_it_fails(tmp_path):
    with running_chat_server() as chat:
        with agentstate_app(tmp_path, "good", llm_base_url=chat.url + "/good", llm_timeout_seconds=5) as (c, _):
            messages = [*say(*[f"early {i}" for i in range(25)]), *say("the last one", role="assistant")]
            cid = create(c, messages=messages)["id"]
            assert c.post(f"{V1}/conversations/{cid}/generate-all").json() == {"title": TITLE,
                                                                                 "follow_ups": FOLLOW_UPS}
            assert c.get(f"{V1}/conversations/{cid}?fields=title").json() == {"title": TITLE}
            prompts = {r["body"]["messages"][0]["content"][:10]: r["body"]["messages"][1]["content"]
                       for r in chat.requests}
            title_prompt, follow_prompt = sorted(prompts.values(), key=lambda p: "early 0" not in p)
            assert "early 0" in title_prompt and "early 19" in title_prompt and "early 20" not in title_prompt
            assert "early 5" not in follow_prompt and "early 6" in follow_prompt and "the last one" in follow_prompt
        with agentstate_app(tmp_path, "down", llm_base_url=chat.url + "/error") as (c, _):
            cid = create(c, messages=say("Why is the sky blue?"))["id"]
            assert c.post(f"{V1}/conversations/{cid}/generate-all").json() == {"title": "Why is the sky blue?",
                                                                                 "follow_ups": []}


def test_api_keys_only_scopes_and_projects(tmp_path):
    with agentstate_app(tmp_path) as (c, _):
        admin = {"Authorization": f"Bearer {live_key(c, 'as_live_' + 'a' * 40)}"}
        reader = {"Authorization": f"Bearer {live_key(c, 'as_live_' + 'r' * 40, ['conversations:read'])}"}
        other = {"Authorization": f"Bearer {live_key(c, 'as_live_' + 'o' * 40, tenant='other')}"}
        cid = c.post(f"{V1}/conversations", json={"messages": say("secret plan")}, headers=admin).json()["id"]
        token = c.post(f"{V1}/capability-tokens", json={"name": "t", "scopes": ["state:read"]},
                       headers=admin).json()["token"]
        err(c.get(f"{V1}/conversations", headers={"Authorization": f"Bearer {token}"}), 401, "UNAUTHORIZED",
            "Unauthorized")  # D2
        assert c.get(f"{V1}/conversations/{cid}", headers=reader).status_code == 200
        err(c.post(f"{V1}/conversations", json={}, headers=reader), 403, "FORBIDDEN",
            "Missing required scope: conversations:write")
        err(c.post(f"{V1}/conversations/{cid}/generate-title", headers=reader), 403, "FORBIDDEN",
            "Missing required scope: conversations:write")
        # another project's conversation is indistinguishable from a missing one, on every route
        err(c.get(f"{V1}/conversations/{cid}", headers=other), 404, "NOT_FOUND", NOT_FOUND)
        err(c.get(f"{V1}/conversations/{cid}/messages", headers=other), 404, "NOT_FOUND", NOT_FOUND)
        err(c.post(f"{V1}/conversations/{cid}/messages", json={"messages": say("x")}, headers=other), 404,
            "NOT_FOUND", NOT_FOUND)
        err(c.put(f"{V1}/conversations/{cid}", json={"title": "x"}, headers=other), 404, "NOT_FOUND", NOT_FOUND)
        err(c.post(f"{V1}/conversations/{cid}/tags", json={"tags": ["x"]}, headers=other), 404, "NOT_FOUND")
        err(c.post(f"{V1}/conversations/{cid}/generate-title", headers=other), 404, "NOT_FOUND", NOT_FOUND)
        err(c.delete(f"{V1}/conversations/{cid}", headers=other), 404, "NOT_FOUND", NOT_FOUND)
        assert c.get(f"{V1}/conversations", headers=other).json()["data"] == []
        assert c.post(f"{V1}/conversations/export", json={"ids": [cid]}, headers=other).json()["count"] == 0
        assert c.post(f"{V1}/conversations/export", json={}, headers=other).json()["count"] == 0
        assert c.post(f"{V1}/conversations/bulk-delete", json={"ids": [cid]}, headers=other).json() == {"deleted": 0}
        assert c.get(f"{V1}/conversations/{cid}", headers=admin).json()["message_count"] == 1


def test_conversation_changes_reach_the_change_feed(c):
    """Every conversation change is a put of `_conversations/<id>` (its document without messages), so native
    watchers see them in revision order."""
    cid = create(c, title="T", messages=say("a"))["id"]
    c.post(f"{V1}/conversations/{cid}/messages", json={"messages": say("b", "c")})
    c.post(f"{V1}/conversations/{cid}/tags", json={"tags": ["x"]})
    c.delete(f"{V1}/conversations/{cid}")
    r = c.get("/v1/watch", params={"namespace": "_conversations", "index": 0, "wait": 0})
    assert r.status_code == 200, r.text
    changes = [change for event in r.json()["events"] for change in event["changes"]]
    assert [(x["type"], x["key"]) for x in changes] == [("put", cid)] * 3 + [("delete", cid)]
    assert [x["value"]["message_count"] for x in changes[:3]] == [1, 3, 3]
    assert changes[0]["value"]["title"] == "T" and changes[2]["value"]["tags"] == ["x"]


def test_search_ranks_pages_and_snippets(c, app):
    """BM25 over the project: a message saying `lease` three times in few words beats one saying it once in many."""
    weak = create(c, title="weak", messages=say("we talked about a lease once among many other words here today"))
    app[1].advance(1)
    strong = create(c, title="strong", messages=say("lease lease lease"))
    app[1].advance(1)
    other = create(c, title="other", messages=say("nothing relevant", "lease renewal and fencing"))
    app[1].advance(1)
    create(c, title="none", messages=say("leases are plural and do not match"))
    r = c.get(f"{V1}/conversations/search", params={"q": "  Lease  "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["data", "next_cursor"] and body["next_cursor"] is None
    assert [h["id"] for h in body["data"]] == [strong["id"], other["id"], weak["id"]]
    hit = body["data"][1]
    assert list(hit) == ["id", "title", "snippet", "message_count", "created_at", "updated_at"]
    assert hit == {"id": other["id"], "title": "other", "snippet": "lease renewal and fencing", "message_count": 2,
                   "created_at": other["created_at"], "updated_at": other["updated_at"]}
    first = c.get(f"{V1}/conversations/search?q=lease&limit=2").json()
    assert [h["id"] for h in first["data"]] == [strong["id"], other["id"]] and first["next_cursor"] == "2"
    rest = c.get(f"{V1}/conversations/search?q=lease&limit=2&cursor=2").json()
    assert [h["id"] for h in rest["data"]] == [weak["id"]] and rest["next_cursor"] is None
    assert c.get(f"{V1}/conversations/search?q=lease&cursor=99").json() == {"data": [], "next_cursor": None}
    assert len(c.get(f"{V1}/conversations/search?q=lease&limit=abc").json()["data"]) == 3  # lenient: default 20


def test_search_snippet_window_and_every_token_must_match(c):
    text = "x" * 100 + " the needle-ab12 sits here " + "y" * 300
    cid = create(c, messages=say(text, "needle alone"))["id"]
    hits = c.get(f"{V1}/conversations/search", params={"q": "needle-AB12"}).json()["data"]
    assert [h["id"] for h in hits] == [cid]
    p = text.index("needle")
    assert hits[0]["snippet"] == "…" + text[p - 40:p - 40 + 200] + "…"
    assert c.get(f"{V1}/conversations/search", params={"q": "needle ab12 alone"}).json()["data"] == []
    assert c.get(f"{V1}/conversations/search", params={"q": "needl"}).json()["data"] == []


@pytest.mark.parametrize("q", ['%', '_', '"', "'", '*', 'a*', '"unclosed', 'NEAR(a b)', 'a AND OR NOT b', '(', ')',
                               'title:x', '^x', '\\', '-x', '%_%', 'x' * 10_000, "\U0001F600", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"])
def test_search_hostile_queries_are_plain_text(c, q):
    create(c, messages=say("a plain message about x and b and unclosed things"))
    r = c.get(f"{V1}/conversations/search", params={"q": q})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"data", "next_cursor"}


def test_search_errors_and_isolation(tmp_path):
    with agentstate_app(tmp_path) as (c, _):
        mine = {"Authorization": f"Bearer {live_key(c, 'as_live_' + 'm' * 40)}"}
        theirs = {"Authorization": f"Bearer {live_key(c, 'as_live_' + 't' * 40, tenant='other')}"}
        c.post(f"{V1}/conversations", json={"messages": say("the secret launch code")}, headers=theirs)
        mine_id = c.post(f"{V1}/conversations", json={"messages": say("a launch party")}, headers=mine).json()["id"]
        found = c.get(f"{V1}/conversations/search?q=launch", headers=mine).json()["data"]
        assert [h["id"] for h in found] == [mine_id]
        assert c.get(f"{V1}/conversations/search?q=secret", headers=mine).json() == {"data": [], "next_cursor": None}
        message = "Query parameter 'q' is required and must not be empty"
        for params in ({}, {"q": ""}, {"q": "   "}):
            err(c.get(f"{V1}/conversations/search", params=params, headers=mine), 400, "BAD_REQUEST", message)
        assert c.get(f"{V1}/conversations/search?q=%25%25", headers=mine).json() == {"data": [], "next_cursor": None}
        for bad in ("0", "-1", "+1", "01", "1.5", "abc", "1e3", f"{T0}.abc"):
            err(c.get(f"{V1}/conversations/search", params={"q": "launch", "cursor": bad}, headers=mine), 400,
                "INVALID_CURSOR", "Invalid cursor")
