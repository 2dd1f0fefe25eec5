"""The console's Claims and Conversations views in a real browser against the real server process: a claim that
verifies and one that fails with their evidence and runs, "Verify now" and a failure turning into a success live;
a conversation's messages a page at a time and a search hit with its terms marked; and one tenant's console never
shows, receives or asks for another tenant's claims or conversations."""

from __future__ import annotations

import hashlib

B_MARKS = ("subject-of-tenant-b", "statement-of-tenant-b", "title-of-tenant-b", "zebraword")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def claim(c, subject: str, statement: str, evidence: list[dict]) -> str:
    r = c.post("/v1/claims", json={"subject_type": "doc", "subject_id": subject, "statement": statement,
                                   "evidence": evidence})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_claims_view_shows_evidence_runs_and_failures(console):
    key = console.key("claims-a")
    with console.client(key) as c:
        c.put("/v1/kv/reports/q3", json={"growth": 0.12})
        good = claim(c, "q3", "the summary and the figure agree", [
            {"kind": "text_hash", "source": "summary", "data": "Q3 grew 12%", "hash": sha("Q3 grew 12%")},
            {"kind": "key_value", "namespace": "reports", "key": "q3", "json_path": "$.growth", "expected_value": 0.12}])
        bad = claim(c, "q4", "<b>q4</b> grew 20%", [
            {"kind": "text_hash", "source": "summary", "data": "Q4 grew 20%", "hash": sha("Q4 grew 20%")},
            {"kind": "key_value", "namespace": "reports", "key": "q4", "json_path": "$.growth", "expected_value": 0.2}])
        assert c.post(f"/v1/claims/{good}/verify").json()["status"] == "verified"
        assert c.post(f"/v1/claims/{bad}/verify").json()["status"] == "failed"

        console.sign_in(key, "#/claims")
        console.wait(f"document.querySelector('tr[data-claim=\"{bad}\"]')", "the claims")
        statuses = console.js("[...document.querySelectorAll('#claims tr')].map((r) => [r.dataset.claim, r.dataset.status])")
        assert statuses == [[bad, "failed"], [good, "verified"]]  # newest first
        assert console.js("!document.querySelector('main b')")  # a statement is text, never markup
        assert console.js(f"document.querySelector('tr[data-claim=\"{bad}\"]').classList.contains('failed')")

        console.go(f"#/claims?id={bad}", "claims")
        console.wait("document.querySelector('#runs li[data-run]')", "the failed claim's runs")
        evidence = console.js("[...document.querySelectorAll('#evidence tr')].map((r) => r.dataset.kind)")
        assert evidence == ["text_hash", "key_value"]
        assert "reports/q4" in console.text("#evidence") and "$.growth = 0.2" in console.text("#evidence")
        run = "#runs li[data-run]"
        assert console.js(f"document.querySelector('{run}').dataset.status") == "failed"
        assert "1 of 2 failed" in console.text(run)
        results = console.js(f"[...document.querySelectorAll('{run} ul.results li')].map((li) => "
                             "[li.dataset.passed, li.className, li.querySelector('.message').textContent])")
        assert results == [["true", "passed", "hash matched"], ["false", "failed", "key not found"]]

        c.put("/v1/kv/reports/q4", json={"growth": 0.2})
        console.js("document.querySelector('#verify').click()")
        console.wait("document.querySelectorAll('#runs li[data-run]').length === 2", "the new run")
        assert console.js(f"document.querySelector('{run}').dataset.status") == "verified"  # newest first
        console.wait(f"document.querySelector('tr[data-claim=\"{bad}\"]').dataset.status === 'verified'",
                     "the list's status")
        posted = [r for r in console.requests() if r["method"] == "POST" and "/verify" in r["url"]]
        assert [r["url"].rsplit("/v1/", 1)[1] for r in posted] == [f"claims/{bad}/verify"]

        c.put("/v1/kv/reports/q3", json={"growth": 0.5})  # a verification by an agent shows live
        assert c.post(f"/v1/claims/{good}/verify").json()["status"] == "failed"
        console.wait(f"document.querySelector('tr[data-claim=\"{good}\"]').dataset.status === 'failed'",
                     "the other claim's failure, live")

        console.go("#/claims?id=" + good + "&status=failed", "claims")
        console.wait("document.querySelectorAll('#runs li[data-run]').length === 2", "the good claim's runs")
        assert console.js("[...document.querySelectorAll('#claims tr')].map((r) => r.dataset.claim)") == [good]
        console.go(f"#/claims?id={bad}", "claims")
        console.wait("document.querySelectorAll('#runs li[data-run]').length === 2", "both runs of the fixed claim")
        console.shot("claims")
    assert console.errors() == []


def test_a_read_only_key_sees_claims_without_verify(console):
    writer, reader = console.key("claims-ro"), console.key("claims-ro", scopes=("read",))
    with console.client(writer) as c:
        cid = claim(c, "d", "s", [{"kind": "json_value", "source": "j", "data": {"a": 1}, "json_path": "$.a",
                                   "expected_value": 1}])
    console.sign_in(reader, f"#/claims?id={cid}")
    console.wait("document.querySelector('#claim h2')", "the claim")
    assert console.js("!document.querySelector('#verify')") and "Never verified." in console.text("#claim")
    assert "not live" in console.text(".live")
    assert console.errors() == []


def test_conversations_view_pages_messages_and_marks_search_hits(console):
    key = console.key("convs-a")
    with console.client(key) as c:
        long = c.post("/v1/conversations", json={"title": "Research run", "tags": ["agents"], "messages": [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"step {i}: reading"} for i in range(60)]}).json()
        c.post(f"/v1/conversations/{long['id']}/messages", json={"messages": [
            {"role": "assistant", "content": "The Brown FOX was found; <img src=x onerror=window.injected=1>",
             "model": "m1", "token_count": 9}]})
        other = c.post("/v1/conversations", json={"title": "Weather", "tags": ["chat"], "messages": [
            {"role": "user", "content": "What is the weather in Paris?"}]}).json()

        console.sign_in(key, "#/conversations")
        console.wait(f"document.querySelector('#conversations li[data-conversation=\"{long['id']}\"]')", "the list")
        order = console.js("[...document.querySelectorAll('#conversations li')].map((li) => li.dataset.conversation)")
        assert order == [other["id"], long["id"]]  # newest update first
        console.wait("document.querySelectorAll('#tag option').length === 3", "the tags")
        console.js("(() => { const s = document.querySelector('#tag'); s.value = 'agents';"
                   " s.dispatchEvent(new Event('change')); })()")
        console.wait("location.hash === '#/conversations?tag=agents' && "
                     "document.querySelectorAll('#conversations li[data-conversation]').length === 1", "by tag")

        console.go(f"#/conversations?id={long['id']}", "conversations")
        console.wait("document.querySelectorAll('#messages li.message').length === 50", "the first page of messages")
        assert console.text('#messages li[data-position="0"] .content') == "step 0: reading"
        console.js("document.querySelector('#more-messages').click()")
        console.wait("document.querySelectorAll('#messages li.message').length === 61", "the next page")
        assert console.js("!document.querySelector('#more-messages')")
        last = console.text('#messages li[data-position="60"] .content')
        assert last.startswith("The Brown FOX") and "<img src=x" in last
        assert console.js("!document.querySelector('main img') && !window.injected")

        console.js("(() => { const b = document.querySelector('[data-filter]'); b.value = 'brown fox';"
                   " b.form.requestSubmit(); })()")
        console.wait("document.querySelector('#conversations li[data-conversation] .snippet mark')", "a search hit")
        assert console.js("location.hash") == "#/conversations?q=brown+fox"
        hits = console.js("[...document.querySelectorAll('#conversations li[data-conversation]')]"
                          ".map((li) => li.dataset.conversation)")
        assert hits == [long["id"]]
        snippet = "#conversations li[data-conversation] .snippet"
        assert console.js(f"[...document.querySelectorAll('{snippet} mark')].map((m) => m.textContent)") == ["Brown", "FOX"]
        assert console.text(snippet) == "The Brown FOX was found; <img src=x onerror=window.injected=1>"
        assert console.js(f"!document.querySelector('{snippet} img')")
        searched = [r["url"] for r in console.requests() if "conversations:search" in r["url"]]
        assert searched and "q=brown+fox" in searched[-1]

        console.js(f"document.querySelector('{snippet}').parentElement.querySelector('a').click()")
        console.wait("document.querySelectorAll('#messages li.message').length === 50", "the hit opened")
        assert console.js("location.hash").endswith(f"id={long['id']}")
        console.shot("conversations")

        console.go("#/conversations?q=nothingmatchesthis", "conversations")
        console.wait("document.querySelector('#conversations li.note')", "no hit")
        assert console.text("#conversations") == "No conversation matches."
    assert console.errors() == []


def test_a_tenants_claims_and_conversations_never_reach_another_tenant(console):
    a, b = console.key("iso-ca"), console.key("iso-cb")
    with console.client(a) as ca, console.client(b) as cb:
        b_claim = cb.post("/v1/claims", json={"subject_type": "doc", "subject_id": B_MARKS[0], "statement": B_MARKS[1],
                                              "evidence": [{"kind": "text_hash", "source": "s", "data": "x",
                                                            "hash": sha("x")}]}).json()["id"]
        cb.post(f"/v1/claims/{b_claim}/verify")
        b_conv = cb.post("/v1/conversations", json={"title": B_MARKS[2], "tags": ["b-only"], "messages": [
            {"role": "user", "content": f"shared {B_MARKS[3]}"}]}).json()["id"]
        mine = ca.post("/v1/conversations", json={"title": "A's", "messages": [
            {"role": "user", "content": "shared words"}]}).json()["id"]
        claim(ca, "a-doc", "A's claim", [{"kind": "text_hash", "source": "s", "data": "y", "hash": sha("y")}])

        console.sign_in(a, "#/claims")
        console.wait("document.querySelector('#claims tr[data-claim]')", "A's claims")
        seen = console.text("body")
        console.go(f"#/claims?id={b_claim}", "claims")  # B's id, guessed: the server answers 404
        console.wait("document.querySelector('#claim .error')", "B's claim refused")
        assert console.text("#claim") == "No such claim."
        console.go("#/conversations", "conversations")
        console.wait(f"document.querySelector('#conversations li[data-conversation=\"{mine}\"]')", "A's conversations")
        console.wait("document.querySelectorAll('#tag option').length >= 1", "A's tags")
        seen += console.text("body") + console.js("document.querySelector('#tag').innerHTML")
        console.go("#/conversations?q=shared", "conversations")
        console.wait("document.querySelector('#conversations li[data-conversation] mark')", "A's hit")
        hits = console.js("[...document.querySelectorAll('#conversations li[data-conversation]')]"
                          ".map((li) => li.dataset.conversation)")
        assert hits == [mine]
        seen += console.text("body")
        console.go(f"#/conversations?q={B_MARKS[3]}", "conversations")
        console.wait("document.querySelector('#conversations li.note')", "no hit of B's word")
        console.go(f"#/conversations?id={b_conv}", "conversations")
        console.wait("document.querySelector('#conversation .error')", "B's conversation refused")
        seen += console.text("body")
        bodies = console.response_bodies()
        urls = [r["url"] for r in console.requests()]
    assert bodies and urls
    for m in B_MARKS:
        assert m not in seen and not [x for x in bodies if m in x], m
    # only the URLs A typed (B's ids, B's word) name anything of B's
    assert not [u for u in urls if any(m in u for m in B_MARKS[:3])]
    refused = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    assert console.errors() == [refused] * 3  # B's claim, its runs and B's conversation: 404, as for any unknown id
