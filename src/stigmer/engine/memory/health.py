"""Subject health (Statewave §6.13) and its transitions (§6.14).

`score` is a pure function of a subject's resolutions (most recently updated first), its episode window
(ascending) and `now`; times are integer microseconds, so day counts and durations are exact.
`observe_in` is the transition check: inside one mutation it compares the new state with the stored
health-state record of (Statewave tenant, subject), writes the record and enqueues the webhook event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .episodes import Episode, micros
from .resolutions import OPEN, RESOLVED, Resolution

RESOLUTIONS, EPISODES = 200, 200  # the inputs' windows (Decision 2)
HEALTHY, WATCH, AT_RISK = "healthy", "watch", "at_risk"
SEVERITY = {HEALTHY: 0, WATCH: 1, AT_RISK: 2}
DAY, HOUR, MINUTE = 86_400_000_000, 3_600_000_000, 60_000_000
USER_SOURCES = frozenset({"user", "chat", "support-chat"})
AGENT_SOURCES = frozenset({"assistant", "agent", "system", "tool"})
URGENCY = ("urgent", "critical", "asap", "emergency", "escalat", "broken", "down", "outage", "blocker", "p0", "p1",
           "sev1", "sev2")
STOP = frozenset("the a an is are was were it to of and or for in on at by my i we you this that with".split())


class Factor(msgspec.Struct, frozen=True):
    signal: str
    impact: int
    detail: str


class Health(msgspec.Struct, frozen=True):
    subject_id: str
    score: int
    state: str
    factors: list[Factor]


def message_contents(e: Episode) -> list[str]:
    """The non-empty string `payload.messages[].content` values (health reads only these, never `text`)."""
    messages = e.payload.get("messages")
    if not isinstance(messages, list):
        return []
    return [m["content"] for m in messages
            if isinstance(m, dict) and isinstance(m.get("content"), str) and m["content"]]


def _words(s: str) -> set[str]:
    return {w for w in s.lower().split() if len(w) > 2 and w not in STOP}


def _repeated(resolutions: list[Resolution], episodes: list[Episode]) -> bool:
    open_sessions = {r.session_id for r in resolutions if r.status == OPEN}
    resolved_sessions = {r.session_id for r in resolutions if r.status == RESOLVED}
    if not open_sessions or not resolved_sessions:
        return False
    a = " ".join(c for e in episodes if e.session_id in open_sessions for c in message_contents(e))
    b = " ".join(c for e in episodes if e.session_id in resolved_sessions for c in message_contents(e))
    wa, wb = _words(a), _words(b)
    return bool(a and b and wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= 0.3


def _urgent(e: Episode) -> bool:
    return any(marker in c.lower() for c in message_contents(e) for marker in URGENCY)


def _by_session(episodes: list[Episode]) -> dict[str, list[Episode]]:
    sessions: dict[str, list[Episode]] = {}
    for e in episodes:
        if e.session_id is not None:
            sessions.setdefault(e.session_id, []).append(e)
    return sessions


def _first(episodes: list[Episode], sources: frozenset, since: int | None = None) -> Episode | None:
    return next((e for e in episodes if e.source in sources and (since is None or e.created_at >= since)), None)


def state_of(score: int) -> str:
    return HEALTHY if score >= 70 else WATCH if score >= 40 else AT_RISK


def score(subject_id: str, resolutions: list[Resolution], episodes: list[Episode], now: int) -> Health:
    """§6.13: start at 100, apply the eight signals in order, clamp to 0–100."""
    resolutions, episodes = resolutions[:RESOLUTIONS], episodes[-EPISODES:]
    sessions = _by_session(episodes)
    factors: list[Factor] = []
    k = sum(r.status == OPEN for r in resolutions)
    if k:
        factors.append(Factor("unresolved_issues", -min(15 * k, 45), f"{k} open session(s)"))
    if _repeated(resolutions, episodes):
        factors.append(Factor("repeated_issues", -20, "Open issues resemble previously resolved ones"))
    k = sum(map(_urgent, episodes))
    if k:
        factors.append(Factor("escalations", -min(10 * k, 20), f"{k} episode(s) with urgency markers"))
    for r in resolutions:
        if r.status == OPEN and r.session_id in sessions:
            days = (now - sessions[r.session_id][-1].created_at) // DAY
            if days >= 7:
                factors.append(Factor("idle_open_issue", -15, f"Session {r.session_id} idle for {days} days"))
                break
    resolved = [r for r in resolutions if r.status == RESOLVED]
    k = sum(r.resolved_at is not None and (now - r.resolved_at) // DAY <= 7 for r in resolved)
    if k:
        factors.append(Factor("recent_resolution", 10, f"{k} session(s) resolved in last 7 days"))
    if len(resolutions) >= 2 and len(resolved) / len(resolutions) >= 0.8:
        rate = len(resolved) / len(resolutions)
        factors.append(Factor("high_resolution_rate", 10,
                              f"{rate:.0%} sessions resolved ({len(resolved)}/{len(resolutions)})"))
    k = 0
    for r in resolved:
        first = _first(sessions.get(r.session_id, []), USER_SOURCES) if r.resolved_at is not None else None
        k += first is not None and r.resolved_at - first.created_at > 24 * HOUR
    if k:
        factors.append(Factor("sla_resolution_breaches", -min(10 * k, 20),
                              f"{k} session(s) exceeded 24h resolution SLA"))
    waits = []
    for r in resolutions:
        of_session = sessions.get(r.session_id, [])
        u = _first(of_session, USER_SOURCES)
        a = _first(of_session, AGENT_SOURCES, u.created_at) if u is not None else None
        if a is not None:
            waits.append((a.created_at - u.created_at) / 1_000_000)
    if waits and sum(waits) / len(waits) > 600:
        mean_min = sum(waits) / len(waits) / 60
        factors.append(Factor("slow_first_response", -5, f"Avg first response {mean_min:.1f} min (threshold: 10 min)"))
    total = max(0, min(100, 100 + sum(f.impact for f in factors)))
    return Health(subject_id, total, state_of(total), factors)


def observe_in(tx, webhooks, tenant_id: str | None, health: Health, generated_at: str) -> str | None:
    """§6.14 inside the caller's mutation: the record is written on a first observation or a change of state;
    a rise in severity enqueues `subject.health_degraded`, a fall from a stored state `subject.health_improved`.
    Returns the event name enqueued, if any."""
    stored = tx.support.health_state(tenant_id, health.subject_id)
    previous = stored or HEALTHY
    if stored is None or stored != health.state:
        tx.support.put_health_state(tenant_id, health.subject_id, health.state, health.score, micros(tx.now),
                                    exists=stored is not None)
    rise = SEVERITY[health.state] - SEVERITY[previous]
    event = "subject.health_degraded" if rise > 0 else "subject.health_improved" if rise < 0 and stored else None
    if event is not None and webhooks is not None:
        webhooks.enqueue_in(tx, event, event_data(health, previous, generated_at), tenant_id=tenant_id)
    return event


def event_data(health: Health, previous: str, generated_at: str) -> dict[str, Any]:
    return {"subject_id": health.subject_id, "previous_state": previous, "current_state": health.state,
            "score": health.score, "factors": [msgspec.structs.asdict(f) for f in health.factors[:3]],
            "generated_at": generated_at}
