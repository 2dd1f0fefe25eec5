"""GET /v1/memories/search and POST /v1/context on the Statewave surface (specs/statewave.md §5.7, §5.8):
shapes, ranking, validation items, tenancy. In-process app; SQLite, and PostgreSQL with TEST_STORE=postgres."""

from __future__ import annotations

import re

import pytest

from statewave_support import episode, err, locs

Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
MEMORY_KEYS = ["id", "subject_id", "kind", "content", "summary", "confidence", "valid_from", "valid_to",
               "source_episode_ids", "metadata", "status", "created_at", "updated_at"]


@pytest.fixture
def sw(make_client):
    return make_client()


def seed(sw, *texts, subject="user-42", headers=None):
    for t in texts:
        assert sw.post("/v1/episodes", json=episode(subject, t), headers=headers).status_code == 201
    r = sw.post("/v1/memories/compile", json={"subject_id": subject}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["memories"]


def search(sw, headers=None, **params):
    r = sw.get("/v1/memories/search", params={"subject_id": "user-42", **params}, headers=headers)
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["memories"]
    return r.json()["memories"]


def test_search_shapes_and_ranking(sw):
    seed(sw, "apple apple pie", "red apple", "green apple and pear")
    found = search(sw, q="apple")
    assert [m["content"] for m in found] == ["apple apple pie", "red apple", "green apple and pear"]
    assert list(found[0]) == MEMORY_KEYS and Z.match(found[0]["created_at"]) and found[0]["status"] == "active"
    assert [m["content"] for m in search(sw, q="APPLE pear")] == ["green apple and pear"]
    assert search(sw, q="%") == [] and search(sw, q="apple banana") == []
    assert len(search(sw)) == 3 and len(search(sw, q="")) == 3  # no q: newest first
    assert len(search(sw, q="apple", limit=1)) == 1
    assert search(sw, q="apple", kind="profile_fact") == [] and search(sw, q="apple", kind="nope") == []
    assert [m["content"] for m in search(sw, q="apple", semantic="true")] == [m["content"] for m in found]
    assert search(sw, subject_id="nobody", q="apple") == []


def test_search_active_only(sw):
    seed(sw, "I work at Initech")
    seed(sw, "I work at Globex")
    assert [m["content"] for m in search(sw, kind="profile_fact")] == ["I work at Globex"]
    assert search(sw, q="initech", kind="profile_fact") == []


@pytest.mark.parametrize("params, expected", [
    ({}, [("missing", ["query", "subject_id"])]),
    ({"subject_id": ""}, [("string_too_short", ["query", "subject_id"])]),
    ({"subject_id": "s" * 257}, [("string_too_long", ["query", "subject_id"])]),
    ({"subject_id": "s", "limit": 0}, [("greater_than_equal", ["query", "limit"])]),
    ({"subject_id": "s", "limit": -1}, [("greater_than_equal", ["query", "limit"])]),
    ({"subject_id": "s", "limit": 101}, [("less_than_equal", ["query", "limit"])]),
    ({"subject_id": "s", "limit": "x"}, [("int_parsing", ["query", "limit"])]),
    ({"subject_id": "s", "semantic": "maybe"}, [("bool_parsing", ["query", "semantic"])]),
])
def test_search_validation(sw, params, expected):
    r = sw.get("/v1/memories/search", params=params)
    got = locs(r)
    assert [(t, loc) for t, loc in got] == expected


def test_search_tenancy(sw):
    a, b = {"X-Tenant-ID": "team-a"}, {"X-Tenant-ID": "team-b"}
    seed(sw, "secret alpha plan", headers=a)
    seed(sw, "secret beta plan", headers=b)
    assert [m["content"] for m in search(sw, headers=a, q="secret")] == ["secret alpha plan"]
    assert [m["content"] for m in search(sw, headers=b, q="plan")] == ["secret beta plan"]
    assert len(search(sw, q="secret")) == 2  # unscoped sees both (§3.2)
    assert search(sw, headers={"X-Tenant-ID": "team-c"}, q="secret") == []


def context(sw, headers=None, **body):
    r = sw.post("/v1/context", json={"subject_id": "user-42", **body}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_context_shape(sw):
    assert sw.post("/v1/episodes", json=episode(text="I work at Initech", session_id="s1")).status_code == 201
    sw.post("/v1/memories/compile", json={"subject_id": "user-42"})
    sw.post("/v1/episodes", json=episode(text="Can you help with billing for the invoice?", session_id="s1"))
    c = context(sw, task="Help the user with billing")
    assert list(c) == ["subject_id", "task", "facts", "episodes", "procedures", "provenance", "assembled_context",
                       "token_estimate", "sessions"]
    assert c["subject_id"] == "user-42" and c["task"] == "Help the user with billing"
    assert [m["kind"] for m in c["facts"]] == ["profile_fact", "episode_summary"]
    assert list(c["facts"][0]) == MEMORY_KEYS
    assert c["provenance"] == {"fact_ids": [c["facts"][0]["id"]], "summary_ids": [c["facts"][1]["id"]],
                               "procedure_ids": [], "episode_ids": [c["episodes"][0]["id"]]}
    assert c["assembled_context"] == (
        "## Task\nHelp the user with billing\n\n## About this user\n- I work at Initech\n\n"
        "## Recent history\n- I work at Initech\n\n## Recent interactions\n"
        "- [chat/conversation] Can you help with billing for the invoice?\n")
    assert isinstance(c["token_estimate"], int) and c["token_estimate"] > 0
    s = c["sessions"]
    assert [(x["session_id"], x["episode_count"]) for x in s] == [("s1", 1)] and Z.match(s[0]["first_at"])
    assert c["procedures"] == []


def test_context_of_an_empty_subject(sw):
    c = context(sw, subject_id="nobody", task="hello world")
    assert c["assembled_context"] == "## Task\nhello world\n" and c["token_estimate"] == 6
    assert c["facts"] == c["episodes"] == c["procedures"] == c["sessions"] == []


def test_context_budget_and_special_tokens(sw):
    seed(sw, "I work at Initech", "My name is Ada Lovelace")
    small = context(sw, task="who", max_tokens=20)
    assert small["facts"] == [] and small["assembled_context"] == "## Task\nwho\n"
    # special-token text is ordinary text (§6.7; upstream answered 500)
    c = context(sw, task="<|endoftext|> hello")
    assert c["assembled_context"].startswith("## Task\n<|endoftext|> hello\n")


@pytest.mark.parametrize("body, expected", [
    ({"task": "t", "subject_id": ""}, [("string_too_short", ["body", "subject_id"])]),
    ({"subject_id": "s"}, [("missing", ["body", "task"])]),
    ({"subject_id": "s", "task": ""}, [("string_too_short", ["body", "task"])]),
    ({"subject_id": "s", "task": "x" * 4001}, [("string_too_long", ["body", "task"])]),
    ({"subject_id": "s", "task": "t", "max_tokens": 0}, [("greater_than_equal", ["body", "max_tokens"])]),
    ({"subject_id": "s", "task": "t", "max_tokens": 128_001}, [("less_than_equal", ["body", "max_tokens"])]),
    ({"subject_id": "s", "task": "t", "max_tokens": "many"}, [("int_parsing", ["body", "max_tokens"])]),
    ({"subject_id": "s", "task": "t", "session_id": "s" * 257}, [("string_too_long", ["body", "session_id"])]),
])
def test_context_validation(sw, body, expected):
    got = locs(sw.post("/v1/context", json=body))
    assert [(t, loc) for t, loc in got] == expected


def test_context_bad_json_and_method(sw):
    r = sw.post("/v1/context", content=b"{not json", headers={"content-type": "application/json"})
    assert locs(r)[0][0] == "json_invalid"
    err(sw.get("/v1/context"), 405, "method_not_allowed")


def test_context_tenancy(sw):
    a, b = {"X-Tenant-ID": "team-a"}, {"X-Tenant-ID": "team-b"}
    seed(sw, "I work at Initech", headers=a)
    seed(sw, "I work at Globex", headers=b)
    assert "Globex" not in context(sw, headers=a, task="where")["assembled_context"]
    assert "Initech" in context(sw, headers=a, task="where")["assembled_context"]
    both = context(sw, task="where")["assembled_context"]
    assert "Initech" in both and "Globex" in both
