"""AgentState traces and analytics over HTTP (specs/agentstate.md §5.9-5.10, D13, D24, D25, D27): ingest with
`$N` parents, the trace list and tree, the lenient analytics parameters, scopes and API keys only."""

from __future__ import annotations

import datetime
import json
import sys

import pytest

from stigmer.engine.conversations import Message, append_in
from stigmer.engine.ids import new_id

from agentstate_support import V1, agentstate_app, err, live_key
from support import ADMIN_KEY

CONVERSATION_KEYS = ["id", "project_id", "external_id", "title", "metadata", "message_count", "token_count",
                     "total_cost_microdollars", "total_tokens", "created_at", "updated_at"]
MESSAGE_KEYS = ["id", "role", "content", "metadata", "token_count", "model", "input_tokens", "output_tokens",
                "cost_microdollars", "parent_message_id", "observation_type", "start_time", "end_time", "status",
                "level", "created_at"]
DAY = 86_400_000


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def ingest(c, *observations, trace=None, **kw):
    return c.post(f"{V1}/conversations/traces/ingest", json={"trace": trace if trace is not None else {},
                                                              "observations": list(observations)}, **kw)


def span(content: str, **members) -> dict:
    return {"content": content, "observation_type": "span", **members}


def ms_of(*parts) -> int:
    return round(datetime.datetime(*parts, tzinfo=datetime.timezone.utc).timestamp() * 1000)


def nodes(observations) -> list:
    return [(o["content"], nodes(o["children"])) for o in observations]


# traces


def test_ingest_answers_the_conversation_and_its_observations(c, app):
    r = ingest(c, {"content": "agent", "observation_type": "agent", "start_time": 10, "end_time": 90,
                   "status": "success", "level": "default"},
               {"role": "tool", "content": "call", "observation_type": "tool", "parent_message_id": "$1",
                "input_tokens": 3, "output_tokens": 4, "token_count": 7, "cost_microdollars": 11, "model": "m"},
               span("kept", parent_message_id="outside-id"), span("beyond", parent_message_id="$5"),
               trace={"external_id": "run-1", "title": "Run", "metadata": {"b": 1, "a": 2}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert list(body) == ["conversation", "observations"]
    conv, obs = body["conversation"], body["observations"]
    assert list(conv) == CONVERSATION_KEYS and all(list(o) == MESSAGE_KEYS for o in obs)
    now = int(app[1].now() * 1000)
    assert conv["project_id"] == "default" and conv["created_at"] == conv["updated_at"] == now
    assert (conv["external_id"], conv["title"], conv["metadata"]) == ("run-1", "Run", {"b": 1, "a": 2})
    assert list(conv["metadata"]) == ["b", "a"]
    assert (conv["message_count"], conv["token_count"], conv["total_tokens"], conv["total_cost_microdollars"]) == (
        4, 7, 7, 11)
    assert [o["role"] for o in obs] == ["assistant", "tool", "assistant", "assistant"]
    assert [o["parent_message_id"] for o in obs] == [None, obs[0]["id"], "outside-id", "$5"]
    assert obs[0]["start_time"] == 10 and obs[0]["status"] == "success" and obs[1]["model"] == "m"
    assert all(o["created_at"] == now for o in obs)
    # the same conversation through the conversation routes
    got = c.get(f"{V1}/conversations/{conv['id']}").json()
    assert {k: got[k] for k in CONVERSATION_KEYS} == conv and got["messages"] == obs


@pytest.mark.parametrize(("body", "message"), [
    ({"observations": [span("x")]}, "Required"),
    ({"trace": None, "observations": [span("x")]}, "Expected object, received null"),
    ({"trace": [], "observations": [span("x")]}, "Expected object, received array"),
    ({"trace": {"external_id": "e" * 1025}, "observations": [span("x")]},
     "String must contain at most 1024 character(s)"),
    ({"trace": {"title": 5}, "observations": [span("x")]}, "Expected string, received number"),
    ({"trace": {"metadata": "m"}, "observations": [span("x")]}, "Expected object, received string"),
    ({"trace": {}}, "Required"),
    ({"trace": {}, "observations": {}}, "Expected array, received object"),
    ({"trace": {}, "observations": []}, "Array must contain at least 1 element(s)"),
    ({"trace": {}, "observations": [span(str(i)) for i in range(101)]}, "Array must contain at most 100 element(s)"),
    ({"trace": {}, "observations": [span("ok"), {"content": "no type"}]}, "Required"),
    ({"trace": {}, "observations": [{"content": "x", "observation_type": "trace"}]},
     "Invalid enum value. Expected 'generation' | 'tool' | 'agent' | 'chain' | 'span' | 'event', received 'trace'"),
    ({"trace": {}, "observations": [{"role": "robot", "content": "x", "observation_type": "span"}]},
     "Invalid enum value. Expected 'system' | 'user' | 'assistant' | 'tool', received 'robot'"),
    ({"trace": {}, "observations": [span("")]}, "String must contain at least 1 character(s)"),
    ({"trace": {}, "observations": [span("x", start_time=1.5)]}, "Expected integer, received float"),
    ({"trace": {}, "observations": [span("x", token_count=-1)]}, "Number must be greater than or equal to 0"),
    ({"trace": {}, "observations": ["x"]}, "Expected object, received string"),
])
def test_ingest_validation_in_the_spec_order(c, body, message):
    err(c.post(f"{V1}/conversations/traces/ingest", json=body), 400, "BAD_REQUEST", message)
    assert c.get(f"{V1}/conversations").json()["data"] == []


def test_ingest_bodies_and_the_duplicate_external_id(c):
    err(c.post(f"{V1}/conversations/traces/ingest", content=b""), 400, "BAD_REQUEST", "Invalid JSON body")
    err(c.post(f"{V1}/conversations/traces/ingest", json=[1]), 400, "BAD_REQUEST", "Expected object, received array")
    first = ingest(c, span("a"), trace={"external_id": "dup"})
    assert first.status_code == 201
    err(ingest(c, span("b"), trace={"external_id": "dup"}), 409, "CONFLICT",
        "A conversation with this external_id already exists")
    assert [x["id"] for x in c.get(f"{V1}/conversations").json()["data"]] == [first.json()["conversation"]["id"]]
    assert ingest(c, *[span(str(i)) for i in range(100)]).status_code == 201  # the documented maximum


def test_get_builds_the_tree(c, app):
    now = int(app[1].now() * 1000)
    made = ingest(c, span("r1", start_time=now + 5), span("r2"), span("r3", start_time=now - 10),
                  span("r4", start_time=now), span("c1", parent_message_id="$2", start_time=1),
                  span("c2", parent_message_id="$2"), span("g1", parent_message_id="$5")).json()
    tid = made["conversation"]["id"]
    app[1].advance(1)
    r = c.post(f"{V1}/conversations/{tid}/messages", json={"messages": [
        {"role": "user", "content": "late", "parent_message_id": made["observations"][0]["id"]},
        {"role": "user", "content": "orphan", "parent_message_id": "no-such-message"}]})
    assert r.status_code == 201
    got = c.get(f"{V1}/conversations/traces/{tid}")
    assert got.status_code == 200, got.text
    body = got.json()
    assert list(body) == CONVERSATION_KEYS + ["observations"]
    assert body["message_count"] == 9 and body["updated_at"] == now + 1000
    assert nodes(body["observations"]) == [("r3", []), ("r2", [("c1", [("g1", [])]), ("c2", [])]), ("r4", []),
                                           ("r1", [("late", [])]), ("orphan", [])]
    root = body["observations"][0]
    assert list(root) == MESSAGE_KEYS + ["children"] and root["start_time"] == now - 10


def test_a_deep_chain_is_one_tree(c):
    made = ingest(c, span("0"), *[span(str(i), parent_message_id=f"${i}") for i in range(1, 100)]).json()
    tid, parent = made["conversation"]["id"], made["observations"][-1]["id"]
    chain = []  # 600 more, each the child of the one before (ids chosen here): past the JSON encoder's depth limit
    for i in range(100, 700):
        chain.append(Message(new_id(), tid, "assistant", str(i), parent_message_id=parent))
        parent = chain[-1].id
    store = c.app.state.services.store
    c.portal.call(lambda: store.submit("default", lambda tx: append_in(tx, tid, chain)))
    r = c.get(f"{V1}/conversations/traces/{tid}")
    assert r.status_code == 200, r.text
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # Python's json module recurses once per level
    try:
        body = json.loads(r.text)
    finally:
        sys.setrecursionlimit(limit)
    node, depth = body["observations"][0], 1
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert depth == 700 and node["content"] == "699"


def test_get_not_found_and_plain_conversations(c):
    for ident in ("nope", "%00", "x" * 300, "%C3%A9"):
        err(c.get(f"{V1}/conversations/traces/{ident}"), 404, "NOT_FOUND", "Trace not found")
    plain = c.post(f"{V1}/conversations", json={"messages": [{"role": "user", "content": "hi"}]}).json()
    body = c.get(f"{V1}/conversations/traces/{plain['id']}").json()  # any conversation reads as a trace
    assert nodes(body["observations"]) == [("hi", [])] and body["observations"][0]["observation_type"] is None
    empty = c.post(f"{V1}/conversations", json={}).json()
    assert c.get(f"{V1}/conversations/traces/{empty['id']}").json()["observations"] == []


def test_the_list_pages_traces_only(c, app):
    made = []
    for i in range(7):
        app[1].advance(0.001)
        made.append(ingest(c, span(str(i))).json()["conversation"])
        c.post(f"{V1}/conversations", json={"messages": [{"role": "user", "content": "plain"}]})
    want = [t["id"] for t in sorted(made, key=lambda t: (t["updated_at"], t["id"]), reverse=True)]
    seen, cursor = [], None
    while True:
        r = c.get(f"{V1}/conversations/traces", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        body = r.json()
        assert list(body) == ["data", "has_more", "next_cursor"]
        assert body["has_more"] == (body["next_cursor"] is not None)
        assert all(list(t) == CONVERSATION_KEYS for t in body["data"])
        seen += [t["id"] for t in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        last = body["data"][-1]
        assert cursor == f"{last['updated_at']}.{last['id']}"
    assert seen == want
    asc = c.get(f"{V1}/conversations/traces", params={"order": "asc", "limit": "100x"}).json()
    assert [t["id"] for t in asc["data"]] == want[::-1] and asc["has_more"] is False
    assert len(c.get(f"{V1}/conversations/traces", params={"limit": "-3"}).json()["data"]) == 7  # default 50
    assert len(c.get(f"{V1}/conversations/traces", params={"limit": "2"}).json()["data"]) == 2
    err(c.get(f"{V1}/conversations/traces", params={"cursor": "abc"}), 400, "INVALID_CURSOR",
        "Cursor must be a valid positive number (Unix timestamp in milliseconds)")
    err(c.get(f"{V1}/conversations/traces", params={"cursor": "5."}), 400, "INVALID_CURSOR")
    newest = made[-1]["updated_at"]
    bare = c.get(f"{V1}/conversations/traces", params={"cursor": str(newest)}).json()  # legacy bare <ms>
    assert [t["id"] for t in bare["data"]] == want[1:]


# analytics


@pytest.fixture
def dataset(c, app):
    """Conversations at chosen UTC times: 2026-01-01 is a Thursday, its first Monday the 5th."""
    plan = [((2025, 12, 31, 23, 59, 59, 999000), ["a"], [2, 8]), ((2026, 1, 1), ["a", "b"], [5]),
            ((2026, 1, 4, 23, 59, 59, 999000), ["b"], [0]), ((2026, 1, 5), ["a", "b", "c"], [7])]
    made = []
    for when, tags, tokens in plan:
        app[1].set(ms_of(*when) / 1000)
        conv = c.post(f"{V1}/conversations", json={"messages": [{"role": "user", "content": "x", "token_count": t}
                                                                for t in tokens]}).json()
        assert c.post(f"{V1}/conversations/{conv['id']}/tags", json={"tags": tags}).status_code == 201
        made.append(conv)
    app[1].set(ms_of(2026, 1, 20) / 1000)
    return made


def test_summary_period_and_averages(c, dataset):
    start, end = dataset[0]["created_at"], dataset[-1]["created_at"]
    r = c.get(f"{V1}/analytics/summary", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    assert r.json() == {"total_conversations": 4, "total_messages": 5, "total_tokens": 22,
                        "avg_messages_per_conversation": 1.3, "avg_tokens_per_conversation": 5.5,
                        "period": {"start": start, "end": end}}
    assert list(r.json()) == ["total_conversations", "total_messages", "total_tokens", "avg_messages_per_conversation",
                              "avg_tokens_per_conversation", "period"]
    inner = c.get(f"{V1}/analytics/summary", params={"start": start + 1, "end": end - 1}).json()
    assert (inner["total_conversations"], inner["avg_messages_per_conversation"]) == (2, 1)
    assert '"avg_messages_per_conversation":1,' in c.get(f"{V1}/analytics/summary",
                                                         params={"start": start + 1, "end": end - 1}).text
    fractions = c.get(f"{V1}/analytics/summary", params={"start": f"{start - 1}.5", "end": f"{end}.9"}).json()
    assert fractions["period"] == {"start": start, "end": end} and fractions["total_conversations"] == 4
    none = c.get(f"{V1}/analytics/summary", params={"start": end + 1}).json()
    assert none["total_conversations"] == 0 and none["avg_tokens_per_conversation"] == 0


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "NaN", "Infinity", "1e999", "", "0x10", "1_000"])
def test_start_and_end_that_are_not_finite_positive_numbers_are_ignored(c, dataset, raw):
    now = ms_of(2026, 1, 20)
    body = c.get(f"{V1}/analytics/summary", params={"start": raw, "end": raw}).json()
    assert body["period"] == {"start": now - 30 * DAY, "end": now}
    assert body["total_conversations"] == 4  # all four lie in the last 30 days


def test_default_period_and_huge_values(c, dataset):
    now = ms_of(2026, 1, 20)
    assert c.get(f"{V1}/analytics/summary").json()["period"] == {"start": now - 30 * DAY, "end": now}
    end = dataset[1]["created_at"]
    assert c.get(f"{V1}/analytics/summary", params={"end": end}).json()["period"] == {"start": end - 30 * DAY,
                                                                                       "end": end}
    big = c.get(f"{V1}/analytics/summary", params={"start": "1", "end": "1e300"}).json()
    assert big["period"] == {"start": 1, "end": 2**53 - 1} and big["total_conversations"] == 4


def test_all_tags_are_required(c, dataset):
    def count(*tags):
        return c.get(f"{V1}/analytics/summary", params=[("tag", t) for t in tags]).json()["total_conversations"]

    assert (count(), count("a"), count("a", "b"), count("b", "a", "b"), count("a", "b", "c")) == (4, 3, 2, 2, 1)
    assert (count("c", "zzz"), count("a", "not a tag"), count("")) == (0, 0, 0)
    series = c.get(f"{V1}/analytics/timeseries", params=[("tag", "b"), ("tag", "c")]).json()
    assert series["data"] == [{"bucket": "2026-01-05", "value": 1}]


@pytest.mark.parametrize(("params", "metric", "granularity", "data"), [
    ({}, "conversations", "day", [("2025-12-31", 1), ("2026-01-01", 1), ("2026-01-04", 1), ("2026-01-05", 1)]),
    ({"granularity": "week"}, "conversations", "week", [("2025-W52", 1), ("2026-W00", 2), ("2026-W01", 1)]),
    ({"granularity": "month", "metric": "messages"}, "messages", "month", [("2025-12", 2), ("2026-01", 3)]),
    ({"metric": "tokens", "granularity": "hour"}, "tokens", "day",
     [("2025-12-31", 10), ("2026-01-01", 5), ("2026-01-04", 0), ("2026-01-05", 7)]),
    ({"metric": "cost", "granularity": "WEEK"}, "conversations", "day",
     [("2025-12-31", 1), ("2026-01-01", 1), ("2026-01-04", 1), ("2026-01-05", 1)]),
])
def test_timeseries(c, dataset, params, metric, granularity, data):
    r = c.get(f"{V1}/analytics/timeseries", params=params)
    assert r.status_code == 200, r.text
    now = ms_of(2026, 1, 20)
    assert r.json() == {"metric": metric, "granularity": granularity, "period": {"start": now - 30 * DAY, "end": now},
                        "data": [{"bucket": b, "value": v} for b, v in data]}


def test_tags_ranking_and_limit(c, dataset):
    r = c.get(f"{V1}/analytics/tags", params={"tag": "c"})  # `tag` does not apply here
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["period", "data"]
    assert r.json()["data"] == [{"tag": "a", "conversation_count": 3, "message_count": 4, "token_count": 22},
                                {"tag": "b", "conversation_count": 3, "message_count": 3, "token_count": 12},
                                {"tag": "c", "conversation_count": 1, "message_count": 1, "token_count": 7}]
    for raw, n in (("2", 2), ("0", 3), ("x", 3), ("1000", 3)):
        assert len(c.get(f"{V1}/analytics/tags", params={"limit": raw}).json()["data"]) == n
    later = c.get(f"{V1}/analytics/tags", params={"start": dataset[1]["created_at"],
                                                  "end": dataset[2]["created_at"]}).json()
    assert [(t["tag"], t["conversation_count"]) for t in later["data"]] == [("b", 2), ("a", 1)]


def test_analytics_are_fresh(c, dataset, app):
    before = c.get(f"{V1}/analytics/summary").json()["total_conversations"]
    c.post(f"{V1}/conversations", json={})
    assert c.get(f"{V1}/analytics/summary").json()["total_conversations"] == before + 1  # no cache (D25)


# credentials


@pytest.fixture
def keyed(tmp_path):
    with agentstate_app(tmp_path, "keyed", admin_key=ADMIN_KEY) as (client, clock):
        yield client


ROUTES = [("POST", "/conversations/traces/ingest", "conversations:write"),
          ("GET", "/conversations/traces", "conversations:read"),
          ("GET", "/conversations/traces/some-id", "conversations:read"),
          ("GET", "/analytics/summary", "analytics:read"),
          ("GET", "/analytics/timeseries", "analytics:read"),
          ("GET", "/analytics/tags", "analytics:read")]


def test_scopes_and_api_keys_only(keyed):
    c = keyed
    full = live_key(c, "as_live_" + "F" * 40, ["*"])
    token = c.post(f"{V1}/capability-tokens", json={"name": "t", "scopes": ["state:read", "claim:read"]},
                   headers=bearer(full)).json()["token"]
    wrong = live_key(c, "as_live_" + "W" * 40, ["state:read", "claim:read"])
    keys = {scope: live_key(c, "as_live_" + scope.replace(":", "").ljust(40, "x")[:40], [scope])
            for scope in {scope for _, _, scope in ROUTES}}
    for method, path, scope in ROUTES:
        err(c.request(method, V1 + path, headers=bearer(token)), 401, "UNAUTHORIZED", "Unauthorized")
        err(c.request(method, V1 + path), 401, "UNAUTHORIZED")
        err(c.request(method, V1 + path, headers=bearer(wrong)), 403, "FORBIDDEN", f"Missing required scope: {scope}")
        r = c.request(method, V1 + path, headers=bearer(keys[scope]), json={"trace": {}, "observations": [span("x")]})
        assert r.status_code in (200, 201, 404), (path, r.text)
    reader = live_key(c, "as_live_" + "R" * 40, ["conversations:read"])
    err(ingest(c, span("x"), headers=bearer(reader)), 403, "FORBIDDEN", "Missing required scope: conversations:write")


def test_projects_are_isolated(keyed):
    c = keyed
    a = live_key(c, "as_live_" + "a" * 40, ["*"], tenant="proj-a")
    b = live_key(c, "as_live_" + "b" * 40, ["*"], tenant="proj-b")
    made = ingest(c, span("x", token_count=5), trace={"external_id": "shared"}, headers=bearer(a)).json()
    tid = made["conversation"]["id"]
    assert c.post(f"{V1}/conversations/{tid}/tags", json={"tags": ["t"]}, headers=bearer(a)).status_code == 201
    assert made["conversation"]["project_id"] == "proj-a"
    err(c.get(f"{V1}/conversations/traces/{tid}", headers=bearer(b)), 404, "NOT_FOUND", "Trace not found")
    assert c.get(f"{V1}/conversations/traces", headers=bearer(b)).json()["data"] == []
    assert ingest(c, span("y"), trace={"external_id": "shared"}, headers=bearer(b)).status_code == 201  # per project
    summary = c.get(f"{V1}/analytics/summary", headers=bearer(b)).json()
    assert (summary["total_conversations"], summary["total_tokens"]) == (1, 0)
    assert c.get(f"{V1}/analytics/tags", headers=bearer(b)).json()["data"] == []
    assert c.get(f"{V1}/analytics/summary", headers=bearer(a)).json()["total_tokens"] == 5
    assert [p["value"] for p in c.get(f"{V1}/analytics/timeseries", params={"metric": "tokens"},
                                      headers=bearer(b)).json()["data"]] == [0]
