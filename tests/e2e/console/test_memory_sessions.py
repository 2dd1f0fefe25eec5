"""The console's Memory, Sessions and Health views in a real browser against the real server process, fed over
HTTP as agents would: Statewave episodes compiled into memories (subjects, episodes, memories, health, a context
with its provenance), a semvec session of several /v1/run turns (its drift chart, one point per turn), readiness
and sampled charts; tenant B's memories and sessions never reach tenant A's console."""

from __future__ import annotations

import httpx
import pytest

from console_support import ADMIN

B_MARKS = ("subject-of-tenant-b", "episode-text-of-tenant-b", "session-of-tenant-b")
TURNS = ("plan the trip to lisbon in may", "book a hotel in lisbon near the river", "find flights to lisbon",
         "how do I fix a leaking kitchen sink")


def statewave(console, key: str, tenant_id: str | None = None) -> httpx.Client:
    headers = {"X-API-Key": key, **({"X-Tenant-ID": tenant_id} if tenant_id else {})}
    return httpx.Client(base_url=console.url, headers=headers, timeout=30)


def seed_memory(sw: httpx.Client, subject: str, texts) -> None:
    r = sw.post("/v1/episodes/batch", json={"episodes": [
        {"subject_id": subject, "source": "chat", "type": "conversation", "payload": {"text": t}, "session_id": "chat-1"}
        for t in texts]})
    assert r.status_code == 201, r.text
    r = sw.post("/v1/memories/compile", json={"subject_id": subject})
    assert r.status_code == 200 and r.json()["memories_created"] > 0, r.text


def seed_session(c: httpx.Client, session_id: str, turns) -> str:
    assert c.post("/v1/session/create", json={"session_id": session_id}).status_code == 200
    for text in turns:
        r = c.post("/v1/run", json={"message": f"next: {text}", "session_id": session_id, "response": text})
        assert r.status_code == 200, r.text
    return session_id


def test_memory_view_shows_subjects_episodes_memories_health_and_a_context_with_provenance(console):
    key = console.key("mem-a")
    with statewave(console, key) as sw, statewave(console, key, "team-x") as scoped:
        seed_memory(sw, "user-42", ["I work at Initech", "My name is Ada Lovelace", "I prefer email over phone"])
        seed_memory(scoped, "user-team", ["I work at Globex"])
        console.sign_in(key, "#/memory")
        console.wait("document.querySelectorAll('#subjects a[data-subject]').length === 2", "both subjects (unscoped)")
        console.go("#/memory?subject=user-42")
        console.wait("document.querySelector('#memories tr[data-memory]') && document.querySelector('#health')",
                     "the subject's memories and health")
        assert console.js("document.querySelectorAll('#episodes li[data-episode]').length") == 3
        assert "Initech" in console.text("#memories") and "Ada Lovelace" in console.text("#episodes")
        assert console.js("document.querySelector('#health').dataset.state") in ("healthy", "watch", "at_risk")
        assert "score" in console.text("#health-score")

        console.js("""(() => { document.querySelector('#task').value = 'where does the user work?';
                     document.querySelector('#context-form').requestSubmit(); })()""")
        console.wait("document.querySelector('#context-lines tr[data-source], #context .error')", "the assembled context")
        assert not console.text('#context .error'), console.text('#context')
        bundle = sw.post("/v1/context", json={"subject_id": "user-42", "task": "where does the user work?"}).json()
        sources = console.js("[...document.querySelectorAll('#context-lines tr[data-source]')].map((r) => r.dataset.source)")
        packed = [m["id"] for m in bundle["facts"] + bundle["procedures"]] + [e["id"] for e in bundle["episodes"]]
        assert sources == packed  # every packed line, in order, with its source
        assert "Initech" in console.text("#assembled") and "← episodes" in console.text("#context-lines")
        console.shot("memory")

        console.go("#/memory?tenant=team-x")  # inside one Statewave tenant: only its subject
        console.wait("document.querySelectorAll('#subjects a[data-subject]').length === 1 && "
                     "document.querySelector('#subjects a[data-subject=\"user-team\"]')", "the Statewave tenant's subject")
        sent = [r for r in console.requests() if "/v1/subjects" in r["url"]]
        assert sent and all(r["headers"].get("X-API-Key") == key and "Authorization" not in r["headers"] for r in sent)
        assert sent[-1]["headers"].get("X-Tenant-ID") == "team-x"
    assert console.errors() == []


def test_sessions_view_charts_drift_with_one_point_per_turn(console):
    key = console.key("sess-a")
    with console.client(key) as c:
        seed_session(c, "idle-one", [])
        sid = seed_session(c, "trip-planner", TURNS)
        console.sign_in(key, "#/sessions")
        console.wait("document.querySelectorAll('#sessions tr[data-session]').length === 2", "both sessions")
        assert console.js("[...document.querySelectorAll('#sessions tr[data-session]')].map((r) => r.dataset.session)"
                          ) == ["trip-planner", "idle-one"]  # newest first
        console.go(f"#/sessions?id={sid}")
        console.wait(f"document.querySelector('#drift-chart').dataset.points === '{len(TURNS)}'", "the drift chart")
        assert console.js("document.querySelectorAll('#drift-chart svg polyline').length") == 1
        polyline = console.js("document.querySelector('#drift-chart svg polyline').getAttribute('points')")
        assert len(polyline.split()) == len(TURNS)
        metrics = c.get(f"/v1/metrics/{sid}").json()
        shown = console.js("[...document.querySelectorAll('#drift-points tr')].map((r) => Number(r.children[2].textContent))")
        assert shown == [round(s, 3) for s in reversed(metrics["similarity_history"])]
        r = c.post("/v1/run", json={"message": "and the weather in lisbon?", "session_id": sid, "response": "sunny in lisbon"})
        assert r.status_code == 200
        console.wait(f"document.querySelector('#drift-chart').dataset.points === '{len(TURNS) + 1}'",
                     "the new turn, on the next refresh")
        console.shot("sessions")
    assert console.errors() == []


def test_health_view_shows_readiness_revision_and_sampled_charts(console):
    key = console.key("health-a")
    with console.client(key) as c:
        rev = c.put("/v1/kv/app/x", json=1).json()["mod_revision"]
        console.sign_in(key, "#/health")
        console.wait("document.querySelector('#ready').dataset.status === 'ready'", "readiness")
        assert console.js("document.querySelector('#checks tr[data-check=\"database\"]').dataset.status") == "ok"
        assert console.text("#rev") == str(rev)
        c.put("/v1/kv/app/x", json=2)
        console.wait(f"document.querySelector('#rev').textContent === '{rev + 1}'", "the new revision, sampled")
        console.wait("Number(document.querySelector('#rate-chart').dataset.points) >= 2 && "
                     "document.querySelector('#latency-chart svg polyline')", "two samples of each chart")
        console.wait("document.querySelector('#server-note')", "the server's figures refused to a tenant key")
    assert console.errors() == [] or all("403" in e for e in console.errors())

    console.sign_in(ADMIN, "#/health")  # the server's admin key: the server-wide figures too
    with console.client(ADMIN) as admin:
        console.wait("document.querySelector('#requests-chart')", "the server's figures")
        with admin.stream("GET", "/v1/watch", params={"namespace": "app"}) as watching:
            assert watching.status_code == 200
            console.wait("Number(document.querySelector('#server').dataset.watchers) >= 1", "a watcher counted")
        console.wait("Number(document.querySelector('#requests-chart').dataset.points) >= 2 && "
                     "document.querySelector('#p99-chart svg polyline')", "the request rate and latency charts")
        assert "queued jobs" in console.text("#server-now")
        console.shot("health")
    assert console.errors() == []


def test_tenant_b_memories_and_sessions_never_reach_tenant_a(console):
    a, b = console.key("iso-mem-a"), console.key("iso-mem-b")
    with statewave(console, b) as swb, console.client(b) as cb, statewave(console, a) as swa, console.client(a) as ca:
        seed_memory(swb, B_MARKS[0], [f"I work at {B_MARKS[1]}"])
        seed_session(cb, B_MARKS[2], TURNS[:2])
        seed_memory(swa, "subject-of-a", ["I work at Initech"])
        seed_session(ca, "session-of-a", TURNS[:1])
        console.sign_in(a, "#/memory")
        console.wait("document.querySelector('#subjects a[data-subject=\"subject-of-a\"]')", "A's subject")
        seen = console.text("body")
        console.go("#/sessions", "sessions")
        console.wait("document.querySelector('#sessions tr[data-session=\"session-of-a\"]')", "A's session")
        seen += console.text("body")
        browsed = console.response_bodies()
        # B's names typed into A's console: the answers echo the name asked for, never B's data
        console.go(f"#/memory?subject={B_MARKS[0]}")
        console.wait("document.querySelector('#subject-id')", "the (empty) subject")
        assert console.js("document.querySelectorAll('#episodes li, #memories tr[data-memory]').length") == 0
        typed = console.text("body")
        console.go(f"#/sessions?id={B_MARKS[2]}")
        console.wait("document.querySelector('#session .error')", "B's session refused as missing")
        assert "not found" in console.text("#session").lower()
        bodies = console.response_bodies()
    for m in B_MARKS:
        assert m not in seen and not [x for x in browsed if m in x], m
    assert B_MARKS[1] not in typed and not [x for x in bodies if B_MARKS[1] in x]
    assert [e for e in console.errors() if "404" not in e] == []


def test_interval_quantiles_from_cumulative_buckets(console):
    """Health's p50/p99: the requests between two samples, interpolated inside their bucket."""
    console.open()
    got = console.js("""import("/console/assets/views/health.js").then(({quantile}) => [
      quantile(0.5, [0.01, 0.1, 1], [0, 0, 0, 0], [10, 10, 10, 10]),   // all ten under 10 ms: the middle of 0-10 ms
      quantile(0.5, [0.01, 0.1, 1], [5, 5, 5, 5], [5, 15, 15, 15]),    // ten new ones in 10-100 ms
      quantile(0.99, [0.01, 0.1, 1], [0, 0, 0, 0], [0, 0, 0, 4]),      // above the highest bound: that bound
      quantile(0.5, [0.01, 0.1, 1], [3, 3, 3, 3], [3, 3, 3, 3]),       // nothing in between
    ])""")
    assert got[0] == pytest.approx(0.005) and got[1] == pytest.approx(0.055) and got[2:] == [1, None]
