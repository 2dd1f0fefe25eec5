"""The console's Keys, Changes and Leases views in a real browser against the real server process, written to by
a test client as agents would: live values and a diff, a change stream that resumes across a server restart with
no revision missing, a lease changing holder; and one tenant's console never shows another tenant's data."""

from __future__ import annotations

import json

B_MARKS = ("ns-of-tenant-b", "value-of-tenant-b", "holder-of-tenant-b")


def rows(console, selector: str, attribute: str) -> list[str]:
    return console.js(f"[...document.querySelectorAll({json.dumps(selector)})].map((r) => r.dataset.{attribute})")


def test_keys_view_shows_live_values_history_and_a_diff(console):
    key = console.key("keys-a")
    with console.client(key) as c:
        c.put("/v1/kv/app/agents/1", json={"step": "plan", "n": 1, "tools": ["search"]})
        c.put("/v1/kv/app/agents/2", json={"step": "idle"}, params={"ttl": 300})
        c.put("/v1/kv/other/x", json=1)
        c.put("/v1/kv/app/markup", json="<img src=x onerror=window.injected=1><b>bold</b>")
        console.sign_in(key, "#/keys?ns=app")
        console.wait("document.querySelector('tr[data-key=\"agents/1\"]')", "the keys of app")
        assert console.wait("[...document.querySelectorAll('a[data-namespace]')].map((a) => a.textContent).join('|')"
                            ) == "app 3|other 1"
        assert "<img src=x" in console.text('tr[data-key="markup"] td.value')  # as text: no element made of it
        assert console.js("document.querySelectorAll('main img, main b').length === 0 && !window.injected")
        assert "min" in console.text('tr[data-key="agents/2"] td.ttl')  # about 5 min left
        c.put("/v1/kv/app/agents/1", json={"step": "research", "n": 2, "tools": ["search", "fetch"]})
        console.wait("document.querySelector('tr[data-key=\"agents/1\"] td.value').textContent.includes('research')",
                     "the new value, live")
        assert console.text('tr[data-key="agents/1"] td.num') == "2"
        c.put("/v1/kv/app/agents/3", json={"step": "new"})
        console.wait("document.querySelector('tr[data-key=\"agents/3\"]')", "a new key, live")
        assert console.text("a[data-namespace=app] .count") == "4"
        c.delete("/v1/kv/app/agents/3")
        console.wait("!document.querySelector('tr[data-key=\"agents/3\"]')", "a deleted key gone, live")

        console.go("#/keys?ns=app&key=agents%2F1")
        console.wait("document.querySelectorAll('ol.timeline li').length === 2", "the key's two revisions")
        console.js("document.querySelectorAll('ol.timeline input[type=checkbox]').forEach((b) => b.click())")
        console.wait("document.querySelector('.diff li')", "the diff")
        diff = console.js("[...document.querySelectorAll('.diff li')].map((li) => [li.className, "
                          "li.querySelector('.path').textContent])")
        assert diff == [["changed", "/step"], ["changed", "/n"], ["added", "/tools/1"]]
        c.put("/v1/kv/app/agents/1", json={"step": "write"})
        console.wait("document.querySelectorAll('ol.timeline li').length === 3", "the new revision in the timeline, live")
        console.shot("keys")
    assert console.errors() == []


def test_change_stream_resumes_after_a_server_restart_with_no_revision_missing(console):
    key = console.key("changes-a")
    with console.client(key) as c:
        console.sign_in(key, "#/changes")
        console.wait("document.querySelector('.live').dataset.state === 'live'", "the stream open")
        written = [c.put(f"/v1/kv/jobs/job-{i}", json={"i": i}).json()["mod_revision"] for i in range(4)]
        written.append(c.delete("/v1/kv/jobs/job-0").json()["revision"])
        console.wait(f"document.querySelectorAll('#changes tr').length === {len(written)}", "the first changes")
        console.server.restart()  # every stream ends; the page reconnects with Last-Event-ID
        written += [c.put(f"/v1/kv/jobs/job-{i}", json={"i": i}).json()["mod_revision"] for i in range(4, 8)]
        console.wait(f"document.querySelectorAll('#changes tr').length === {len(written)}", "the changes after the restart")
        console.server.kill()  # kill -9: the stream is cut mid-body, not ended
        console.server.start()
        written += [c.put(f"/v1/kv/jobs/job-{i}", json={"i": i}).json()["mod_revision"] for i in range(8, 10)]
        console.wait(f"document.querySelectorAll('#changes tr').length === {len(written)}", "the changes after the kill")
        shown = [int(r) for r in rows(console, "#changes tr", "revision")]
        assert sorted(shown) == sorted(written) and shown == sorted(shown, reverse=True)  # each once, newest first
        resumed = [r["headers"].get("Last-Event-ID") for r in console.requests() if "/v1/watch" in r["url"]]
        assert resumed[0] is None and str(written[4]) in resumed[1:], resumed

        console.js("document.querySelector('#pause').click()")
        paused = c.put("/v1/kv/jobs/while-paused", json=1).json()["mod_revision"]
        console.wait("document.querySelector('#held').textContent === 'paused: 1 held'", "the change held")
        assert str(paused) not in rows(console, "#changes tr", "revision")
        console.js("document.querySelector('#pause').click()")
        console.wait(f"document.querySelector('#changes tr[data-revision=\"{paused}\"]')", "the held change shown")

        console.js("document.querySelector('input[data-type=put]').click()")  # only deletes and expiries now
        assert set(rows(console, "#changes tr", "type")) == {"delete"}
        console.js("document.querySelector('input[data-type=put]').click()")
        console.shot("changes")
    # while the server was down, and the stream the kill cut
    expected = ("ERR_CONNECTION_REFUSED", "ERR_INCOMPLETE_CHUNKED_ENCODING")
    assert [e for e in console.errors() if not any(x in e for x in expected)] == []


def test_leases_view_follows_a_holder_change(console):
    key = console.key("leases-a")
    with console.client(key) as c:
        first = c.post("/v1/leases/reports/daily", json={"holder": "worker-1", "ttl": 60}).json()
        c.post("/v1/leases/index/rebuild", json={"holder": "worker-9", "ttl": 600})
        console.sign_in(key, "#/leases")
        console.wait("document.querySelector('tr[data-resource=\"reports/daily\"][data-holder=\"worker-1\"]')",
                     "the active lease")
        assert console.text('tr[data-resource="reports/daily"] td.num') == "1"
        assert "s" in console.text('tr[data-resource="reports/daily"] td.ttl')
        c.delete("/v1/leases/reports/daily", params={"lease_id": first["lease_id"]})
        console.wait("!document.querySelector('tr[data-resource=\"reports/daily\"]')", "the released lease gone")
        c.post("/v1/leases/reports/daily", json={"holder": "worker-2", "ttl": 60})
        console.wait("document.querySelector('tr[data-resource=\"reports/daily\"][data-holder=\"worker-2\"]')",
                     "the new holder")
        assert console.text('tr[data-resource="reports/daily"] td.num') == "2"
        log = console.text("#lease-events")
        assert "worker-2 acquired reports/daily (token 2)" in log and "reports/daily released by worker-1" in log
        console.shot("leases")
    assert console.errors() == []


def test_a_tenants_console_never_shows_another_tenants_data(console):
    a, b = console.key("iso-a"), console.key("iso-b")
    with console.client(a) as ca, console.client(b) as cb:
        cb.put(f"/v1/kv/{B_MARKS[0]}/k", json=B_MARKS[1])
        cb.post("/v1/leases/shared-name", json={"holder": B_MARKS[2], "ttl": 60})
        ca.put("/v1/kv/mine/k", json="value-of-a")
        console.sign_in(a, "#/keys?ns=mine")
        console.wait("document.querySelector('tr[data-key=\"k\"]')", "A's key")
        console.go("#/changes", "changes")
        console.wait("document.querySelector('.live').dataset.state === 'live'", "A's change stream")
        cb.put(f"/v1/kv/{B_MARKS[0]}/k2", json=B_MARKS[1])  # while A watches its whole tenant
        mark = ca.put("/v1/kv/mine/k", json="after-b").json()["mod_revision"]
        console.wait(f"document.querySelector('#changes tr[data-revision=\"{mark}\"]')", "A's own later change")
        changes = console.text("body")
        console.go("#/leases", "leases")
        console.wait("document.querySelector('#leases td.note')", "A's (empty) leases")
        seen = changes + console.text("body")
        bodies = console.response_bodies()
        urls = [r["url"] for r in console.requests()]
    assert bodies and urls
    for m in B_MARKS:
        assert m not in seen and not [x for x in bodies if m in x] and not [u for u in urls if m in u], m
    assert console.errors() == []


def test_the_key_travels_only_in_the_authorization_header(console):
    key = console.key("header-a")
    console.sign_in(key, "#/keys")
    console.go("#/changes", "changes")
    console.wait("document.querySelector('.live').dataset.state === 'live'", "the stream open")
    sent = console.requests()
    api = [r for r in sent if "/v1/" in r["url"]]
    assert api and all(r["headers"].get("Authorization") == f"Bearer {key}" for r in api)
    assert all(r["url"].startswith(console.url + "/") for r in sent)  # nothing from elsewhere
    assert not [r for r in sent if key in r["url"] or key in r.get("postData", "")]
    assert not [r for r in sent if "/console" in r["url"] and "Authorization" in r["headers"]]
    assert console.errors() == []


def test_a_key_limited_to_a_prefix_sees_only_what_it_covers(console):
    writer = console.key("limited-a")
    with console.client(writer) as c:
        for k in ("agents/1", "agents/2", "jobs/1"):
            c.put(f"/v1/kv/app/{k}", json={"k": k})
        c.put("/v1/kv/private/x", json="not-for-the-limited-key")
    with console.client(writer) as c:
        c.post("/v1/leases/agents/7", json={"holder": "covered", "ttl": 60})
        c.post("/v1/leases/jobs/7", json={"holder": "not-covered", "ttl": 60})
    limited = console.key("limited-a", scopes=["read", "watch"], prefixes=["app/agents/", "_leases/agents/"])
    console.sign_in(limited, "#/keys")
    console.wait("document.querySelector('a[data-namespace]')", "the granted namespaces")
    assert console.js("[...document.querySelectorAll('a[data-namespace]')].map((a) => a.textContent)") == \
        ["_leases 1", "app 2"]
    console.go("#/keys?ns=app", "keys")
    console.wait("document.querySelectorAll('tr[data-key]').length === 2", "the covered keys only")
    assert console.js("[...document.querySelectorAll('tr[data-key]')].map((r) => r.dataset.key)") == ["agents/1", "agents/2"]
    with console.client(writer) as c:
        c.put("/v1/kv/app/jobs/2", json=1)  # outside the prefix: never shown
        c.put("/v1/kv/app/agents/3", json=1)
    console.wait("document.querySelector('tr[data-key=\"agents/3\"]')", "a covered key, live")
    assert not console.js("document.querySelector('tr[data-key^=\"jobs/\"]')")
    console.go("#/changes", "changes")
    assert "name one to watch" in console.wait("document.querySelector('#changes td.note')?.textContent")
    assert "not-for-the-limited-key" not in console.text("body")
    console.go("#/leases", "leases")
    console.wait("document.querySelector('tr[data-holder=covered]')", "the covered lease")
    assert rows(console, "#leases tr", "resource") == ["agents/7"]
    assert console.errors() == []
