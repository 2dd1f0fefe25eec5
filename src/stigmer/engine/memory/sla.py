"""Support SLA figures of a subject (Statewave §6.15): per session, first response and resolution times
against two thresholds. A pure function of the episode window (ascending), the resolutions (most recently
updated first) and `now`, all in integer microseconds; durations are reported in float seconds."""

from __future__ import annotations

import msgspec

from .episodes import Episode
from .resolutions import OPEN, RESOLVED, Resolution

RESOLUTIONS, EPISODES = 200, 500  # the inputs' windows (Decision 2)
USER_SOURCES = frozenset({"user", "chat", "support-chat", "support_chat", "customer", "manual_input"})
AGENT_SOURCES = frozenset({"assistant", "agent", "system", "tool", "support", "staff"})  # Decision 36
FIRST_RESPONSE_MINUTES, RESOLUTION_HOURS = 5.0, 24.0


class SessionSLA(msgspec.Struct, frozen=True):
    session_id: str
    status: str
    first_message_at: int
    first_response_at: int | None
    resolved_at: int | None
    first_response_seconds: float | None
    resolution_seconds: float | None
    open_duration_seconds: float | None
    first_response_breached: bool
    resolution_breached: bool


class SLA(msgspec.Struct, frozen=True):
    subject_id: str
    total_sessions: int
    resolved_sessions: int
    open_sessions: int
    avg_first_response_seconds: float | None
    avg_resolution_seconds: float | None
    first_response_breach_count: int
    resolution_breach_count: int
    sessions: list[SessionSLA]


def _seconds(micros: int) -> float:
    return micros / 1_000_000


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _session(session_id: str, episodes: list[Episode], resolution: Resolution | None, now: int,
             first_response_limit: float, resolution_limit: float) -> SessionSLA:
    status = resolution.status if resolution is not None else "unknown"
    user = next((e for e in episodes if e.source in USER_SOURCES), None)
    response = next((e for e in episodes if e.source in AGENT_SOURCES
                     and (user is None or e.created_at >= user.created_at)), None)
    first_response = (_seconds(response.created_at - user.created_at)
                      if user is not None and response is not None else None)
    resolved_at = resolution.resolved_at if resolution is not None and user is not None else None
    resolution_seconds = _seconds(resolved_at - user.created_at) if resolved_at is not None else None
    open_for = _seconds(now - user.created_at) if status == OPEN and user is not None else None
    return SessionSLA(session_id, status, (user or episodes[0]).created_at,  # Decision 37: never null
                      response.created_at if response is not None else None, resolved_at, first_response,
                      resolution_seconds, open_for,
                      first_response is not None and first_response > first_response_limit,
                      resolution_seconds is not None and resolution_seconds > resolution_limit)


def sla(subject_id: str, episodes: list[Episode], resolutions: list[Resolution], now: int,
        first_response_threshold_minutes: float = FIRST_RESPONSE_MINUTES,
        resolution_threshold_hours: float = RESOLUTION_HOURS) -> SLA:
    """§6.15 over sessions in order of first appearance; episodes without a session are ignored."""
    by_session: dict[str, list[Episode]] = {}
    for e in episodes[-EPISODES:]:
        if e.session_id is not None:
            by_session.setdefault(e.session_id, []).append(e)
    resolution_of: dict[str, Resolution] = {}
    for r in resolutions[:RESOLUTIONS]:
        resolution_of.setdefault(r.session_id, r)  # the most recently updated one (unscoped: several tenants)
    sessions = [_session(sid, of, resolution_of.get(sid), now, first_response_threshold_minutes * 60,
                         resolution_threshold_hours * 3600) for sid, of in by_session.items()]
    return SLA(subject_id, len(sessions), sum(s.status == RESOLVED for s in sessions),
               sum(s.status == OPEN for s in sessions),
               _mean([s.first_response_seconds for s in sessions if s.first_response_seconds is not None]),
               _mean([s.resolution_seconds for s in sessions if s.resolution_seconds is not None]),
               sum(s.first_response_breached for s in sessions), sum(s.resolution_breached for s in sessions),
               sessions)
