"""GET /v1/conversations:search through the whole app (both stores under `make test-postgres`): the same hits,
order and snippets as the engine, highlight offsets, native cursors and errors, scopes and tenant isolation."""

from __future__ import annotations

import pytest

from stigmer.engine.conversation_search import highlights
from support import native_error as error, new_key

SEARCH = "/v1/conversations:search"


def auth(secret):
    return {"Authorization": f"Bearer {secret}"}


def create(c, content, headers=None, **members):
    r = c.post("/v1/conversations", json={"messages": [{"role": "user", "content": content}], **members},
               headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def marked(hit):
    """The highlighted texts of a hit (offsets are code points, as Python indexes strings)."""
    return [hit["snippet"][a:b] for a, b in hit["highlights"]]


def test_hits_snippets_and_highlights(client):
    fox = create(client, "The quick brown fox jumps over the lazy dog; a FOX again", title="Fox")
    create(client, "nothing here about animals")
    r = client.get(SEARCH, params={"q": "  brown Fox "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    [hit] = body["hits"]
    assert (hit["id"], hit["title"], hit["message_count"]) == (fox, "Fox", 1)
    assert hit["snippet"] == "The quick brown fox jumps over the lazy dog; a FOX again"
    assert marked(hit) == ["brown", "fox", "FOX"]
    assert hit["created_at"].endswith("Z") and hit["updated_at"] == hit["created_at"]
    assert client.get(SEARCH, params={"q": "fo"}).json() == {"hits": [], "next_cursor": None}  # whole tokens only
    assert client.get(SEARCH, params={"q": "%_*"}).json() == {"hits": [], "next_cursor": None}  # no token: nothing


def test_highlights_count_code_points_and_case_folding(client):
    create(client, "😀 Straße und STRASSE, été")
    [hit] = client.get(SEARCH, params={"q": "strasse ÉTÉ"}).json()["hits"]
    assert marked(hit) == ["Straße", "STRASSE", "été"]


def test_a_token_cut_by_the_snippet_edge_is_not_marked():
    cut = "\u2026dles and a needle, then needl\u2026"  # "needles" and "needle" were cut by the snippet
    assert [cut[a:b] for a, b in highlights(cut, {"dles", "needle", "needl"})] == ["needle"]


def test_pages_follow_the_ranking_with_opaque_cursors(client):
    ids = {create(client, " ".join(["alpha"] * n + ["filler"] * 5)) for n in range(1, 6)}
    everything = client.get(SEARCH, params={"q": "alpha", "limit": "100"}).json()["hits"]
    assert {h["id"] for h in everything} == ids
    seen, cursor = [], None
    while True:
        page = client.get(SEARCH, params={"q": "alpha", "limit": "2", **({"cursor": cursor} if cursor else {})}).json()
        seen += [h["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert not cursor.isdigit()  # the native codec, not the AgentState "<n>"
    assert seen == [h["id"] for h in everything]


@pytest.mark.parametrize("params, field", [
    ({}, "q"), ({"q": "   "}, "q"), ({"q": "x", "limit": "0"}, "limit"), ({"q": "x", "limit": "101"}, "limit"),
    ({"q": "x", "limit": "two"}, "limit"), ({"q": "x", "cursor": "!!"}, "cursor"), ({"q": "x", "cursor": "7"}, "cursor"),
])
def test_bad_input_is_400_with_its_field(client, params, field):
    error(client.get(SEARCH, params=params), 400, field=field)


def test_a_cursor_of_another_list_is_refused(client):
    create(client, "alpha")
    create(client, "alpha beta")
    cursor = client.get("/v1/conversations", params={"limit": "1"}).json()["next_cursor"]
    error(client.get(SEARCH, params={"q": "alpha", "cursor": cursor}), 400, field="cursor")


def test_tenants_are_isolated_and_read_is_needed(keyed_client):
    c = keyed_client
    a, b = auth(new_key(c, "team-a", ("read", "write"))), auth(new_key(c, "team-b", ("read", "write")))
    mine = create(c, "shared secret word", headers=a)
    theirs = create(c, "shared secret word", headers=b)
    assert [h["id"] for h in c.get(SEARCH, params={"q": "secret"}, headers=a).json()["hits"]] == [mine]
    assert [h["id"] for h in c.get(SEARCH, params={"q": "secret"}, headers=b).json()["hits"]] == [theirs]
    fine = auth(new_key(c, "team-a", ("conversations:read",)))
    assert [h["id"] for h in c.get(SEARCH, params={"q": "secret"}, headers=fine).json()["hits"]] == [mine]
    writer = auth(new_key(c, "team-a", ("conversations:write",)))
    error(c.get(SEARCH, params={"q": "secret"}, headers=writer), 403, "forbidden")
    limited = auth(new_key(c, "team-a", ("read",), prefixes=("app/",)))
    error(c.get(SEARCH, params={"q": "secret"}, headers=limited), 403, "forbidden")
    error(c.get(SEARCH, params={"q": "secret"}, headers=auth("stg_nope")), 401, "unauthenticated")
