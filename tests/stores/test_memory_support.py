"""The Statewave support layer and admin on both stores: resolutions (§5.14, §5.15), health factor by factor
(§6.13), transitions and their webhook rows (§6.14), SLA (§6.15), handoff (§6.9, with the 48-token example
and truncation, §6.7), export → import with the checksum and each import check (§5.17), and tenancy."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from stigmer.engine.errors import InvalidArgument
from stigmer.engine.memory import EpisodeInput, Memory
from stigmer.engine.memory.admin import Admin, DocumentRejected, checksum
from stigmer.engine.memory.support import ResolutionInput, Support, delete_subject_in, offset_form
from stigmer.engine.webhooks import Webhooks
from stigmer.support import tokencount

T = "t1"
S = "user-42"
T0 = 1_777_000_000.0  # 2026-04-24T03:06:40Z
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


@pytest.fixture
def memory(store):
    return Memory(store)


@pytest.fixture
def hooks(store):
    return Webhooks(store, "http://127.0.0.1:9/hook")  # events are written; no worker runs


@pytest.fixture
def support(store, hooks):
    return Support(store, hooks)


@pytest.fixture
def admin(store, hooks):
    return Admin(store, hooks)


def said(content, source="user", session="s1", type="message", subject=S) -> EpisodeInput:
    return EpisodeInput(subject, source, type, {"messages": [{"role": source, "content": content}]},
                        session_id=session)


def noted(content, source="agent", session="s1", type="action", subject=S) -> EpisodeInput:
    return EpisodeInput(subject, source, type, {"text": content}, session_id=session)


async def at(clock, when, memory, *episodes, tenant_id=None):
    clock.set(when)
    for e in episodes:
        await memory.add_episode(T, tenant_id, e)


async def resolve(support, clock, when, session, status, summary=None, tenant_id=None, subject=S):
    clock.set(when)
    return await support.resolve(T, tenant_id, ResolutionInput(subject, session, status, summary))


async def events(store, clock):
    """The outbox's rows, taken through a claim (the worker's own read)."""
    now = clock.now() + 1
    return await store.webhooks.claim(now, now + 100, "test", 100)


def factors(h):
    return [(f.signal, f.impact, f.detail) for f in h.factors]


# §5.14, §5.15 resolutions


async def test_resolution_upsert_keeps_id_and_created_at(support, clock):
    first = await resolve(support, clock, T0, "s1", "open", "looking")
    assert (first.status, first.resolution_summary, first.resolved_at, first.created_at, first.updated_at) == (
        "open", "looking", None, 1_777_000_000_000_000, 1_777_000_000_000_000)
    again = await resolve(support, clock, T0 + 5, "s1", "open", "looking")
    assert again == first  # nothing changed: updated_at stays
    done = await resolve(support, clock, T0 + 9, "s1", "resolved")
    assert (done.id, done.created_at) == (first.id, first.created_at)
    assert (done.status, done.resolution_summary, done.resolved_at, done.updated_at) == (
        "resolved", None, 1_777_000_009_000_000, 1_777_000_009_000_000)  # an omitted summary becomes null
    reopened = await resolve(support, clock, T0 + 20, "s1", "unresolved", "x")
    assert (reopened.resolved_at, reopened.updated_at) == (None, 1_777_000_020_000_000)
    assert [r.id for r in await support.resolutions(T, None, S)] == [first.id]


async def test_resolution_metadata_change_moves_updated_at(support, clock):
    clock.set(T0)
    a = await support.resolve(T, None, ResolutionInput(S, "s1", metadata={"n": 1}))
    clock.set(T0 + 1)
    assert await support.resolve(T, None, ResolutionInput(S, "s1", metadata={"n": 1.0})) == a  # JSON-equal
    clock.set(T0 + 2)
    b = await support.resolve(T, None, ResolutionInput(S, "s1", metadata={"n": True}))
    assert (b.metadata, b.updated_at) == ({"n": True}, 1_777_000_002_000_000)


async def test_resolutions_list_order_filter_and_page(support, clock):
    ids = {}
    for i, (session, status) in enumerate([("a", "open"), ("b", "resolved"), ("c", "open")]):
        ids[session] = (await resolve(support, clock, T0, session, status)).id  # one updated_at: ties by seq
    await resolve(support, clock, T0 + 1, "a", "unresolved")
    listed = await support.resolutions(T, None, S)
    assert [r.session_id for r in listed] == ["a", "b", "c"]
    assert [r.session_id for r in await support.resolutions(T, None, S, "open")] == ["c"]
    assert [r.session_id for r in await support.resolutions(T, None, S, limit=1, offset=1)] == ["b"]
    assert await support.resolutions(T, None, "nobody") == []


@pytest.mark.parametrize("call, loc", [
    (lambda s: s.resolve(T, None, ResolutionInput(S, "s1", "closed")), ["body", "status"]),
    (lambda s: s.resolve(T, None, ResolutionInput(S, "", "open")), ["body", "session_id"]),
    (lambda s: s.resolve(T, None, ResolutionInput("x" * 257, "s1")), ["body", "subject_id"]),
    (lambda s: s.resolve(T, None, ResolutionInput(S, "s1", resolution_summary="x" * 2001)),
     ["body", "resolution_summary"]),
    (lambda s: s.resolutions(T, None, S, "closed"), ["query", "status"]),
    (lambda s: s.resolutions(T, None, S, limit=201), ["query", "limit"]),
    (lambda s: s.resolutions(T, None, S, offset=-1), ["query", "offset"]),
    (lambda s: s.resolutions(T, None, ""), ["query", "subject_id"]),
])
async def test_resolution_input_is_checked(support, call, loc):
    with pytest.raises(InvalidArgument) as e:
        await call(support)
    assert e.value.details["loc"] == loc


async def test_concurrent_upserts_leave_one_row(support, store, open_store, store_kind):
    other = Support(await open_store()) if store_kind == "postgres" else support  # a second replica
    results = await asyncio.gather(*(s.resolve(T, "acme", ResolutionInput(S, "s1", "resolved" if i % 2 else "open"))
                                     for i in range(10) for s in (support, other)))
    assert len({r.id for r in results}) == 1
    assert len(await support.resolutions(T, "acme", S)) == 1


async def test_resolution_tenancy(support, clock):
    a = await resolve(support, clock, T0, "s1", "open", tenant_id="team-a")
    b = await resolve(support, clock, T0 + 1, "s1", "resolved", tenant_id="team-b")
    n = await resolve(support, clock, T0 + 2, "s1", "open")  # unscoped writes a null-tenant row of its own
    assert len({a.id, b.id, n.id}) == 3 and n.tenant_id is None
    assert [r.id for r in await support.resolutions(T, "team-a", S)] == [a.id]
    assert [r.id for r in await support.resolutions(T, None, S)] == [n.id, b.id, a.id]  # unscoped sees all
    assert await support.resolutions("t2", None, S) == []  # another Stigmer tenant sees nothing


# §6.13 health, factor by factor


async def test_health_of_an_empty_subject(support):
    h = await support.health(T, None, "nobody")
    assert (h.subject_id, h.score, h.state, h.factors) == ("nobody", 100, "healthy", [])


async def test_health_spec_example(support, memory, clock):
    await at(clock, T0, memory, said("this is urgent"), said("URGENT again", session="s2"))
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0 + 1, s, "open")
    h = await support.health(T, None, S)
    assert (h.score, h.state) == (35, "at_risk")
    assert factors(h) == [("unresolved_issues", -45, "3 open session(s)"),
                          ("escalations", -20, "2 episode(s) with urgency markers")]


async def test_health_unresolved_issues_cap(support, clock):
    for i in range(4):
        await resolve(support, clock, T0, f"s{i}", "open")
    assert factors(await support.health(T, None, S)) == [("unresolved_issues", -45, "4 open session(s)")]
    await resolve(support, clock, T0, "s0", "unresolved")
    await resolve(support, clock, T0, "s1", "unresolved")
    assert factors(await support.health(T, None, S)) == [("unresolved_issues", -30, "2 open session(s)")]


async def test_health_repeated_issues(support, memory, clock):
    await at(clock, T0, memory, said("printer jammed yesterday", session="old"),
             said("the printer jammed again today", session="new"))
    await resolve(support, clock, T0 + 1, "old", "resolved")
    await resolve(support, clock, T0 + 1, "new", "open")
    h = await support.health(T, None, S)
    assert factors(h) == [("unresolved_issues", -15, "1 open session(s)"),
                          ("repeated_issues", -20, "Open issues resemble previously resolved ones"),
                          ("recent_resolution", 10, "1 session(s) resolved in last 7 days")]
    assert (h.score, h.state) == (75, "healthy")


async def test_health_repeated_issues_reads_only_messages(support, memory, clock):
    await at(clock, T0, memory, noted("printer jammed yesterday", session="old"),
             said("the printer jammed again today", session="new"))
    await resolve(support, clock, T0 + 1, "old", "resolved")
    await resolve(support, clock, T0 + 1, "new", "open")
    assert "repeated_issues" not in [f[0] for f in factors(await support.health(T, None, S))]


async def test_health_escalations(support, memory, clock):
    await at(clock, T0, memory, said("cannot download"), said("CRITICAL"), said("all fine"),
             noted("urgent outage"),  # text, not messages: never inspected
             EpisodeInput(S, "user", "message", {"messages": [{"content": "sev1"}, "p0 skipped", {"content": 3}]}))
    assert factors(await support.health(T, None, S)) == [
        ("escalations", -20, "3 episode(s) with urgency markers")]  # "download" holds "down"; capped at 20


async def test_health_idle_open_issue(support, memory, clock):
    await at(clock, T0, memory, said("hello", session="s1"), said("hello", session="s2"))
    await resolve(support, clock, T0, "s1", "open")
    await resolve(support, clock, T0 + 1, "s2", "open")
    clock.set(T0 + 7 * DAY - 1)
    assert [f[0] for f in factors(await support.health(T, None, S))] == ["unresolved_issues"]
    clock.set(T0 + 9 * DAY + 5)
    assert factors(await support.health(T, None, S)) == [
        ("unresolved_issues", -30, "2 open session(s)"),
        ("idle_open_issue", -15, "Session s2 idle for 9 days")]  # list order (s2 updated last), once


async def test_health_recent_resolution_and_rate(support, clock):
    for i in range(4):
        await resolve(support, clock, T0, f"r{i}", "resolved")
    await resolve(support, clock, T0, "u", "unresolved")
    clock.set(T0 + 8 * DAY - 1)  # floor(7.99 days) = 7
    h = await support.health(T, None, S)
    assert factors(h) == [("recent_resolution", 10, "4 session(s) resolved in last 7 days"),
                          ("high_resolution_rate", 10, "80% sessions resolved (4/5)")]
    assert h.score == 100  # clamped
    clock.set(T0 + 8 * DAY)
    assert factors(await support.health(T, None, S)) == [("high_resolution_rate", 10, "80% sessions resolved (4/5)")]


async def test_health_rate_needs_two_resolutions(support, clock):
    await resolve(support, clock, T0, "r", "resolved")
    clock.set(T0 + 30 * DAY)
    assert factors(await support.health(T, None, S)) == []


async def test_health_sla_breaches_and_slow_first_response(support, memory, clock):
    await at(clock, T0, memory, said("hi", session="a"), said("hi", session="b"), said("hi", session="c"))
    await at(clock, T0 + 11 * MIN, memory, noted("on it", source="agent", session="a"),
             noted("on it", source="tool", session="b"), noted("ignored", source="user", session="c"))
    await resolve(support, clock, T0 + 24 * HOUR, "a", "resolved")  # exactly 24 h: not a breach
    await resolve(support, clock, T0 + 24 * HOUR + 1, "b", "resolved")
    await resolve(support, clock, T0 + 30 * DAY, "c", "resolved")
    clock.set(T0 + 40 * DAY)
    assert factors(await support.health(T, None, S)) == [
        ("high_resolution_rate", 10, "100% sessions resolved (3/3)"),
        ("sla_resolution_breaches", -20, "2 session(s) exceeded 24h resolution SLA"),
        ("slow_first_response", -5, "Avg first response 11.0 min (threshold: 10 min)")]


async def test_health_every_negative_signal_clamps_to_zero(support, memory, clock):
    await at(clock, T0, memory, *(said("printer jammed urgent", session=s) for s in ("old1", "old2", "o1", "o2", "o3")))
    await at(clock, T0 + 11 * MIN, memory, noted("looking", session="o1"))
    await resolve(support, clock, T0 + 25 * HOUR, "old1", "resolved")
    await resolve(support, clock, T0 + 25 * HOUR, "old2", "resolved")
    for s in ("o1", "o2", "o3"):
        await resolve(support, clock, T0 + 25 * HOUR, s, "open")
    clock.set(T0 + 25 * HOUR + 8 * DAY)
    h = await support.health(T, None, S)
    assert [f[:2] for f in factors(h)] == [("unresolved_issues", -45), ("repeated_issues", -20), ("escalations", -20),
                                           ("idle_open_issue", -15), ("sla_resolution_breaches", -20),
                                           ("slow_first_response", -5)]
    assert (h.score, h.state) == (0, "at_risk")


async def test_health_reads_the_newest_200_episodes(support, memory, clock):
    clock.set(T0)
    await memory.add_episodes(T, None, [said("urgent", session=None)] * 2)
    await at(clock, T0 + 1, memory)
    for _ in range(2):
        await memory.add_episodes(T, None, [said("calm", session=None)] * 100)
    assert factors(await support.health(T, None, S)) == []  # the two urgent ones are out of the window


# §6.14 transitions and their webhook rows


async def test_transitions_write_the_record_and_enqueue_events(support, memory, store, clock):
    h = await support.health(T, "acme", S)  # first observation, healthy: nothing
    assert h.state == "healthy" and await events(store, clock) == []
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0, s, "open", tenant_id="acme")
    clock.set(T0 + 1)
    assert (await support.health(T, "acme", S)).state == "watch"  # 55
    (e,) = await events(store, clock)
    assert (e.event, e.tenant, e.tenant_id) == ("subject.health_degraded", T, "acme")
    assert json.loads(e.data) == {"subject_id": S, "previous_state": "healthy", "current_state": "watch",
                                  "score": 55, "factors": [{"signal": "unresolved_issues", "impact": -45,
                                                            "detail": "3 open session(s)"}],
                                  "generated_at": "2026-04-24T03:06:41+00:00"}
    await support.health(T, "acme", S)  # unchanged: nothing
    assert await events(store, clock) == []
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0 + 2, s, "resolved", tenant_id="acme")
    await support.health(T, "acme", S)
    (e,) = await events(store, clock)
    data = json.loads(e.data)
    assert (e.event, data["previous_state"], data["current_state"], data["score"]) == (
        "subject.health_improved", "watch", "healthy", 100)
    assert [f["signal"] for f in data["factors"]] == ["recent_resolution", "high_resolution_rate"]


async def test_concurrent_checks_on_replicas_enqueue_one_transition(support, store, open_store, store_kind, clock):
    other = store
    if store_kind == "postgres":  # a second replica on the same database
        other = await open_store()
    replica = Support(other, Webhooks(other, "http://127.0.0.1:9/hook"))
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0, s, "open")
    states = await asyncio.gather(*(s.health(T, None, S) for _ in range(5) for s in (support, replica)))
    assert {h.state for h in states} == {"watch"}
    assert [e.event for e in await events(store, clock)] == ["subject.health_degraded"]  # compared and written at once


async def test_first_observation_at_risk_degrades_and_tenants_keep_their_own_record(support, memory, store, clock):
    await at(clock, T0, memory, said("urgent", session="s1"), said("urgent", session="s2"), tenant_id="a")
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0, s, "open", tenant_id="a")
    assert (await support.health(T, "a", S)).state == "at_risk"
    (e,) = await events(store, clock)
    assert (e.event, json.loads(e.data)["previous_state"]) == ("subject.health_degraded", "healthy")
    # tenant b's first look at the same subject inherits nothing from tenant a (§8): healthy, no event
    assert (await support.health(T, "b", S)).state == "healthy"
    assert await events(store, clock) == []


async def test_a_first_observation_that_improves_emits_nothing(support, store, clock):
    """No record existed, so a fall in severity has nothing to fall from: only a stored state improves."""
    await resolve(support, clock, T0, "s1", "resolved")
    assert (await support.health(T, None, S)).state == "healthy"
    assert await events(store, clock) == []


async def test_handoff_runs_the_transition_check(support, store, clock):
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0, s, "open")
    h = await support.handoff(T, None, S, "s1")
    assert (h.health_state, h.health_score) == ("watch", 55)
    assert [e.event for e in await events(store, clock)] == ["subject.health_degraded"]


async def test_transitions_without_webhooks_still_keep_the_record(store, clock):
    quiet = Support(store)  # no outbox: the record is still written, so a later outbox sees real transitions
    for s in ("s1", "s2", "s3"):
        await resolve(quiet, clock, T0, s, "open")
    await quiet.health(T, None, S)
    loud = Support(store, Webhooks(store, "http://127.0.0.1:9/hook"))
    await loud.health(T, None, S)
    assert await events(store, clock) == []


# §6.15 SLA


async def test_sla_spec_example(support, memory, clock):
    base = 1_777_456_800.0  # 2026-04-29T10:00:00Z
    await at(clock, base, memory, said("my card was charged twice", session="sess-abc"))
    await at(clock, base + 145, memory, noted("refund started", source="assistant", session="sess-abc"))
    await resolve(support, clock, base + 3600, "sess-abc", "resolved")
    s = await support.sla(T, None, S)
    assert (s.total_sessions, s.resolved_sessions, s.open_sessions, s.avg_first_response_seconds,
            s.avg_resolution_seconds, s.first_response_breach_count, s.resolution_breach_count) == (
        1, 1, 0, 145.0, 3600.0, 0, 0)
    (x,) = s.sessions
    assert (x.session_id, x.status, offset_form(x.first_message_at), offset_form(x.first_response_at),
            offset_form(x.resolved_at), x.first_response_seconds, x.resolution_seconds, x.open_duration_seconds,
            x.first_response_breached, x.resolution_breached) == (
        "sess-abc", "resolved", "2026-04-29T10:00:00+00:00", "2026-04-29T10:02:25+00:00",
        "2026-04-29T11:00:00+00:00", 145.0, 3600.0, None, False, False)
    tight = await support.sla(T, None, S, first_response_threshold_minutes=2, resolution_threshold_hours=0.5)
    assert (tight.first_response_breach_count, tight.resolution_breach_count) == (1, 1)
    assert (tight.sessions[0].first_response_breached, tight.sessions[0].resolution_breached) == (True, True)


async def test_sla_sessions_without_a_user_or_a_resolution(support, memory, clock):
    await at(clock, T0, memory, noted("bot hello", source="system", session="bot"),
             said("anyone?", source="customer", session="open"), said("no session", session=None))
    await at(clock, T0 + 30, memory, noted("hi", source="staff", session="open"),
             said("still there", source="manual_input", session="unknown"))
    await resolve(support, clock, T0 + 40, "open", "open")
    await resolve(support, clock, T0 + 40, "bot", "resolved")
    clock.set(T0 + 100)
    s = await support.sla(T, None, S)
    assert [(x.session_id, x.status) for x in s.sessions] == [("bot", "resolved"), ("open", "open"),
                                                              ("unknown", "unknown")]
    bot, still_open, unknown = s.sessions
    # no user episode: first_message_at falls back to the first episode (Decision 37); nothing is measured
    assert (bot.first_message_at, bot.first_response_at, bot.first_response_seconds, bot.resolved_at,
            bot.resolution_seconds) == (1_777_000_000_000_000, 1_777_000_000_000_000, None, None, None)
    assert (still_open.first_response_seconds, still_open.open_duration_seconds) == (30.0, 100.0)
    assert (unknown.first_response_at, unknown.open_duration_seconds) == (None, None)
    assert (s.total_sessions, s.resolved_sessions, s.open_sessions, s.avg_first_response_seconds,
            s.avg_resolution_seconds) == (3, 1, 1, 30.0, None)


async def test_sla_thresholds_are_checked(support):
    with pytest.raises(InvalidArgument) as e:
        await support.sla(T, None, S, first_response_threshold_minutes=-1)
    assert e.value.details["loc"] == ["query", "first_response_threshold_minutes"]


# §6.9 handoff


async def test_handoff_of_an_empty_subject_is_the_spec_example(support):
    h = await support.handoff(T, None, "he123456789012", "s1")
    assert h.handoff_notes == ("# Handoff Brief — he123456789012\nReason: escalation\nSession: s1\n\n## Customer\n"
                               "Subject: he123456789012\n\n## Customer Health\n🟢 Health: HEALTHY (score: 100)\n")
    if tokencount._default.exact:
        assert h.token_estimate == 48
    assert (h.customer_summary, h.active_issue, h.attempted_steps, h.key_facts, h.resolution_history,
            h.recent_context, h.health_score, h.health_state, h.health_factors) == (
        "Subject: he123456789012", "", [], [], [], [], 100, "healthy", [])


async def _ravi(memory, support, clock):
    await at(clock, T0, memory, EpisodeInput("ravi", "chat", "message", {"text": "My name is Ravi Shah."}))
    clock.set(T0 + 1)
    await memory.compile(T, None, "ravi")
    await at(clock, T0 + 2, memory, EpisodeInput("ravi", "chat", "message", {"text": "I work at Globex."}))
    clock.set(T0 + 3)
    await memory.compile(T, None, "ravi")
    await at(clock, T0 + 10, memory, noted("My invoice shows a duplicate charge", "user", "old", "message", "ravi"))
    await at(clock, T0 + 20, memory, noted("I refunded the charge", "assistant", "old", "message", "ravi"))
    await resolve(support, clock, T0 + 30, "old", "resolved", "Refunded", subject="ravi")
    await at(clock, T0 + 100, memory, said("Charged twice again, urgent", session="cur", subject="ravi"))
    await at(clock, T0 + 160, memory, noted("Checked the ledger", session="cur", subject="ravi"))
    await at(clock, T0 + 170, memory, EpisodeInput("ravi", "tool", "tool_call", {}, session_id="cur"))
    await resolve(support, clock, T0 + 200, "cur", "open", subject="ravi")
    clock.set(T0 + 300)


RAVI_NOTES = """# Handoff Brief — ravi
Reason: escalation
Session: cur

## Customer
ravi — I work at Globex; My name is Ravi Shah

## Customer Health
🟢 Health: HEALTHY (score: 85) — 1 open session(s); 1 episode(s) with urgency markers; 1 session(s) resolved in last 7 days

## SLA Status
- Open issue age: 0.1h
- Avg first response: 0.6 min

## Active Issue
[user/message] user: Charged twice again, urgent (+ 1 more messages in session)

## What Has Been Tried
- Checked the ledger

## Open Issues
- [cur] No summary
## Previously Resolved
- [old] Refunded

## Key Facts
- I work at Globex
- My name is Ravi Shah

## Recent Context (other sessions)
- [chat/message] My name is Ravi Shah.
- [chat/message] I work at Globex.
- [user/message] [old] My invoice shows a duplicate charge
- [assistant/message] [old] I refunded the charge
"""


async def test_handoff_every_block(support, memory, store, clock):
    await _ravi(memory, support, clock)
    h = await support.handoff(T, None, "ravi", "cur")
    assert h.handoff_notes == RAVI_NOTES
    assert h.token_estimate == tokencount.count(RAVI_NOTES)
    assert h.active_issue == "[user/message] user: Charged twice again, urgent (+ 1 more messages in session)"
    assert h.attempted_steps == ["Checked the ledger"]
    assert h.key_facts == ["I work at Globex", "My name is Ravi Shah"]
    assert [(r.session_id, r.status, r.summary) for r in h.resolution_history] == [
        ("cur", "open", None), ("old", "resolved", "Refunded")]
    assert h.resolution_history[1].resolved_at == 1_777_000_030_000_000
    assert (h.health_score, h.health_state, [f.signal for f in h.health_factors]) == (
        85, "healthy", ["unresolved_issues", "escalations", "recent_resolution"])
    assert h.generated_at == 1_777_000_300_000_000
    episodes = await memory.episodes(T, None, "ravi")
    facts = [m for m in await memory.memories(T, None, "ravi", "active") if m.kind == "profile_fact"]
    p = h.provenance
    assert p.fact_ids == [m.id for m in facts] and len(p.fact_ids) == 2
    assert p.episode_ids == [e.id for e in episodes if e.session_id == "cur"]  # the text-less tool call too
    assert p.context_episode_ids == [e.id for e in episodes if e.session_id != "cur"]
    assert p.resolution_ids == [r.id for r in await support.resolutions(T, None, "ravi")]


async def test_handoff_truncates_to_the_budget(support, memory, clock):
    await _ravi(memory, support, clock)
    h = await support.handoff(T, None, "ravi", "cur", reason="vip", max_tokens=30)
    full = RAVI_NOTES.replace("Reason: escalation", "Reason: vip")
    assert h.handoff_notes == tokencount.first(full, 30) and h.token_estimate == 30
    assert len(h.handoff_notes) < len(full) and full.startswith(h.handoff_notes.rstrip("\ufffd"))


async def test_handoff_cut_inside_a_character_gives_the_replacement_character(support):
    head = ("# Handoff Brief — X\nReason: escalation\nSession: s1\n\n## Customer\nSubject: X\n\n"
            "## Customer Health\n")
    if not tokencount._default.exact:
        pytest.skip("the cl100k_base vocabulary is not installed: the fallback cuts code points, never bytes")
    n = tokencount.count(head) + 1  # 🟢 is several byte-level tokens: one of them is half a character
    h = await support.handoff(T, None, "X", "s1", max_tokens=n)
    assert h.handoff_notes == head + "\ufffd" and h.token_estimate == n


async def test_handoff_windows_and_limits(support, memory, clock):
    clock.set(T0)
    await memory.add_episodes(T, None, [noted(f"step {i}", session="cur") for i in range(12)]
                              + [noted(f"other {i}", session="x") for i in range(7)])
    h = await support.handoff(T, None, S, "cur")
    assert h.attempted_steps == [f"step {i}" for i in range(5)]
    assert h.active_issue == "[agent/action] step 0 (+ 9 more messages in session)"  # cur[:10]
    assert len(h.provenance.episode_ids) == 10
    assert h.recent_context == [f"[agent/action] [x] other {i}" for i in range(5)]
    with pytest.raises(InvalidArgument) as e:
        await support.handoff(T, None, S, "cur", max_tokens=16001)
    assert e.value.details["loc"] == ["body", "max_tokens"]
    with pytest.raises(InvalidArgument) as e:
        await support.handoff(T, None, S, "")
    assert e.value.details["loc"] == ["body", "session_id"]


# §5.11 support rows of a subject delete


async def test_subject_delete_removes_resolutions_and_the_health_record(support, store, clock):
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0, s, "open", tenant_id="a")
    await resolve(support, clock, T0, "s1", "open", tenant_id="b")
    await support.health(T, "a", S)
    await events(store, clock)  # drain the degrade event
    assert await store.submit(T, lambda tx: delete_subject_in(tx, "a", S)) == 3
    assert await support.resolutions(T, "a", S) == [] and len(await support.resolutions(T, "b", S)) == 1
    await support.health(T, "a", S)  # the record went: a first observation again, healthy, no event
    assert await events(store, clock) == []
    assert await store.submit(T, lambda tx: delete_subject_in(tx, None, S)) == 1  # unscoped: every tenant


# §5.17 admin: export and import


async def _subject(memory, clock, tenant_id="acme"):
    await at(clock, T0 + 0.123456, memory, said("Olá, I work at Initech 🟢", session="s1"),
             said("bye", session=""), tenant_id=tenant_id)
    clock.set(T0 + 5)
    await memory.compile(T, tenant_id, S)
    await at(clock, T0 + 6, memory, noted("not compiled yet"), tenant_id=tenant_id)


async def test_export_document(admin, memory, clock):
    await _subject(memory, clock)
    clock.set(T0 + 60)
    doc = await admin.export(T, S)
    assert (doc["format_version"], doc["exported_at"], doc["subject_id"], doc["tenant_id"], doc["counts"]) == (
        "1.0", "2026-04-24T03:07:40+00:00", S, None, {"episodes": 3, "memories": 3})
    e = doc["episodes"][0]
    assert list(e) == ["id", "subject_id", "tenant_id", "session_id", "source", "type", "payload", "metadata",
                       "provenance", "created_at", "last_compiled_at"]
    assert (e["tenant_id"], e["session_id"], e["created_at"], e["last_compiled_at"]) == (
        "acme", "s1", "2026-04-24T03:06:40.123456+00:00", "2026-04-24T03:06:45+00:00")
    assert doc["episodes"][1]["session_id"] is None and doc["episodes"][2]["last_compiled_at"] is None
    m = doc["memories"][0]
    assert list(m) == ["id", "subject_id", "tenant_id", "kind", "content", "summary", "confidence", "valid_from",
                       "valid_to", "source_episode_ids", "metadata", "status", "embedding", "created_at",
                       "updated_at"]
    assert (m["kind"], m["embedding"], m["valid_from"], m["source_episode_ids"]) == (
        "episode_summary", None, "2026-04-24T03:06:40.123456+00:00", [e["id"]])
    canonical = json.dumps({"episodes": doc["episodes"], "memories": doc["memories"]}, sort_keys=True)
    assert "\\u00e1" in canonical and "\\ud83d\\udfe2" in canonical  # non-ASCII escaped, surrogate pairs
    import hashlib
    assert doc["checksum"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert await admin.export(T, S, tenant_id="other") is None
    assert await admin.export(T, "nobody") is None
    assert await admin.export("t2", S) is None  # another Stigmer tenant


async def test_export_import_round_trip(admin, memory, store, clock, hooks):
    await _subject(memory, clock)
    doc = await admin.export(T, S, tenant_id="acme")
    result = await admin.import_document("t2", doc)  # another Stigmer tenant: the ids are free there
    assert (result.subject_id, result.tenant_id, result.episodes_imported, result.memories_imported,
            result.ids_preserved) == (S, "acme", 3, 3, True)
    back = await admin.export("t2", S, tenant_id="acme")
    assert back["episodes"] == doc["episodes"] and back["memories"] == doc["memories"]
    assert back["checksum"] == doc["checksum"]
    unscoped = await admin.export(T, S)  # no tenant_id: the document's tenant is null, and so is the import's
    assert (await admin.import_document("t3", unscoped)).tenant_id is None
    assert {e["tenant_id"] for e in (await admin.export("t3", S))["episodes"]} == {None}
    assert await events(store, clock) == []  # an import fires no webhooks
    # the not-yet-compiled episode stays uncompiled: a compile there picks it up
    assert (await Memory(store).compile("t2", "acme", S)).memories_created == 1


async def test_import_with_new_ids_remaps_sources(admin, memory, clock):
    await _subject(memory, clock)
    doc = await admin.export(T, S)
    result = await admin.import_document(T, doc, target_subject_id="copy", target_tenant_id="beta",
                                         preserve_ids=False)
    assert (result.subject_id, result.tenant_id, result.ids_preserved) == ("copy", "beta", False)
    copy_doc = await admin.export(T, "copy")
    old_ids = {e["id"] for e in doc["episodes"]}
    new_ids = [e["id"] for e in copy_doc["episodes"]]
    assert not old_ids & set(new_ids) and {e["tenant_id"] for e in copy_doc["episodes"]} == {"beta"}
    assert copy_doc["memories"][0]["source_episode_ids"] == [new_ids[0]]
    assert [m["content"] for m in copy_doc["memories"]] == [m["content"] for m in doc["memories"]]


def _signed(doc):
    doc["checksum"] = checksum(doc.get("episodes", []), doc.get("memories", []))
    return doc


@pytest.mark.parametrize("change, preserve, message", [
    (lambda d: d.update(format_version="2.0"), True, "Unsupported format version: 2.0 (expected 1.0)"),
    (lambda d: d.pop("format_version"), True, "Unsupported format version: None (expected 1.0)"),
    (lambda d: d["episodes"][0].update(type="edited"), True,
     "Checksum mismatch — export file may be corrupted or tampered with"),
    (lambda d: (d.update(subject_id=None), _signed(d)), True,
     "No subject_id specified and none found in export document"),
    (None, True, "ID conflict: 3 episode(s) already exist. Use preserve_ids=false to generate new IDs, or delete "
                 "existing data first."),
    (lambda d: (d.update(episodes=[]), _signed(d)), True,
     "ID conflict: 3 memory(ies) already exist. Use preserve_ids=false to generate new IDs, or delete existing "
     "data first."),
    (lambda d: (d["episodes"][1].pop("payload"), _signed(d)), False, "Invalid document: episodes[1] is missing 'payload'"),
    (lambda d: (d["memories"][2].update(created_at="yesterday"), _signed(d)), False,
     "Invalid document: memories[2].created_at must be an ISO 8601 timestamp"),
    (lambda d: (d["memories"].append(7), _signed(d)), False, "Invalid document: memories[3] must be an object"),
])
async def test_import_checks_in_order(admin, memory, clock, change, preserve, message):
    await _subject(memory, clock)
    doc = copy.deepcopy(await admin.export(T, S))
    if change is not None:
        change(doc)
    with pytest.raises(DocumentRejected) as e:
        await admin.import_document(T, doc, preserve_ids=preserve)
    assert e.value.message == message
    assert (await admin.export(T, S))["counts"] == {"episodes": 3, "memories": 3}  # atomic: nothing written


async def test_import_is_atomic_and_checks_format_before_checksum(admin, memory, clock):
    await _subject(memory, clock)
    doc = copy.deepcopy(await admin.export(T, S))
    doc["memories"][2].pop("content")
    _signed(doc)
    with pytest.raises(DocumentRejected):
        await admin.import_document("t2", doc)
    assert await admin.export("t2", S) is None  # the good episodes before the bad memory were not kept
    doc.update(format_version=1, checksum="bad")
    with pytest.raises(DocumentRejected) as e:
        await admin.import_document("t2", doc)
    assert e.value.message == "Unsupported format version: 1 (expected 1.0)"


async def test_import_accepts_other_timestamp_forms(admin, memory, clock):
    doc = _signed({"format_version": "1.0", "subject_id": "z", "tenant_id": "acme", "episodes": [
        {"id": "e1", "source": "chat", "type": "note", "payload": {"text": "hi"}, "created_at": "2026-04-29T12:00:00Z"},
        {"id": "e2", "source": "chat", "type": "note", "payload": {}, "created_at": "2026-04-29T14:00:00.5+02:00"},
        {"id": "e3", "source": "chat", "type": "note", "payload": {}, "created_at": "2026-04-29T12:00:01"}],
        "memories": [{"id": "m1", "kind": "procedure", "content": "Restart it", "valid_from": "2026-04-29T12:00:00Z",
                      "created_at": "2026-04-29T12:00:00Z", "updated_at": "2026-04-29T12:00:00Z"}]})
    await admin.import_document(T, doc)
    back = await admin.export(T, "z")
    assert [e["created_at"] for e in back["episodes"]] == [
        "2026-04-29T12:00:00+00:00", "2026-04-29T12:00:00.500000+00:00", "2026-04-29T12:00:01+00:00"]
    m = back["memories"][0]
    assert (m["summary"], m["confidence"], m["status"], m["valid_to"], m["source_episode_ids"], m["tenant_id"]) == (
        "", 1.0, "active", None, [], "acme")


# §5.17 admin: jobs, audit, webhooks


async def test_tenant_audit_counts_null_tenant_rows(admin, memory, clock):
    await _subject(memory, clock, tenant_id=None)
    await _subject(memory, clock, tenant_id="acme")
    audit = await admin.tenant_audit(T)
    assert audit == {"null_tenant_rows": {"episodes": 3, "memories": 3, "compile_jobs": 0},
                     "guidance": "Backfill with UPDATE <table> SET tenant_id = 'your-tenant' WHERE tenant_id IS NULL"}
    assert (await admin.tenant_audit("t2"))["null_tenant_rows"] == {"episodes": 0, "memories": 0, "compile_jobs": 0}


async def test_admin_jobs_lists_compile_jobs(admin, store, clock):
    from stigmer.engine.jobs import Job

    def submit(tx, i, subject, tenant_id):
        tx.jobs.insert(Job(T, f"0000000{i}", "statewave.compile", {"subject_id": subject, "tenant_id": tenant_id},
                           created_at=tx.now))
    for i, (subject, tenant_id) in enumerate([("a", None), ("b", "x"), ("a", "x")]):
        clock.set(T0 + i)
        await store.submit(T, lambda tx, i=i, s=subject, t=tenant_id: submit(tx, i, s, t))
    await store.submit(T, lambda tx: tx.jobs.insert(Job(T, "other000", "something.else", {}, created_at=tx.now)))
    jobs, total = await admin.jobs(T)
    assert [j["job_id"] for j in jobs] == ["00000002", "00000001", "00000000"] and total == 3
    assert jobs[0] == {"job_id": "00000002", "subject_id": "a", "tenant_id": "x", "status": "pending",
                       "memories_created": None, "error": None, "created_at": "2026-04-24T03:06:42+00:00",
                       "started_at": None, "completed_at": None}
    assert [j["job_id"] for j in (await admin.jobs(T, subject_id="a"))[0]] == ["00000002", "00000000"]
    assert (await admin.jobs(T, tenant_id="x", limit=1))[1] == 2
    assert (await admin.jobs(T, status="completed")) == ([], 0)
    assert (await admin.tenant_audit(T))["null_tenant_rows"]["compile_jobs"] == 1
    with pytest.raises(InvalidArgument):
        await admin.jobs(T, limit=101)


async def test_admin_webhook_stats_and_event(admin, support, store, clock):
    assert await admin.webhook_stats(T) == {"pending": 0, "delivered": 0, "dead_letter": 0, "total": 0}
    for s in ("s1", "s2", "s3"):
        await resolve(support, clock, T0, s, "open")
    await support.health(T, None, S)
    assert await admin.webhook_stats(T) == {"pending": 1, "delivered": 0, "dead_letter": 0, "total": 1}
    assert await admin.webhook_stats("t2") == {"pending": 0, "delivered": 0, "dead_letter": 0, "total": 0}
    (e,) = await events(store, clock)
    got = await admin.webhook_event(T, e.id.upper())
    assert got["id"] == e.id and got["event"] == "subject.health_degraded" and got["status"] == "pending"
    assert (got["attempts"], got["max_attempts"], got["created_at"], got["delivered_at"]) == (
        0, 5, "2026-04-24T03:06:40+00:00", None)
    assert await admin.webhook_event("t2", e.id) is None
    with pytest.raises(InvalidArgument) as err:
        await admin.webhook_event(T, "not-a-uuid")
    assert err.value.details["loc"] == ["path", "event_id"]
