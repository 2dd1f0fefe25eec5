"""The Statewave support layer (§5.12–§5.16): resolutions, health and its transitions, SLA, handoff.

`Support(store, webhooks)` is the facade. Every call takes the Stigmer tenant and the request's Statewave
tenant (`tenant_id`, None in unscoped mode: reads see every Statewave tenant's rows, writes store null).
Health and handoff read their inputs and run the transition check (§6.14) in **one mutation**, so the
record and the event it may enqueue follow the state they compare, even with replicas; SLA only reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import InvalidArgument
from . import handoff as brief
from . import health as healthscore
from . import sla as slafigures
from .episodes import check_subject_id, check_tenant_id, micros
from .handoff import Handoff
from .health import Health
from .resolutions import MAX_PAGE, Resolution, ResolutionInput, check_status, checked, upsert_in
from .sla import SLA

MAX_REASON, MAX_HANDOFF_TOKENS = 256, 16000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

__all__ = ["Support", "Resolution", "ResolutionInput", "Health", "SLA", "Handoff", "offset_form",
           "delete_subject_in"]


def offset_form(us: int) -> str:
    """Statewave's offset form (§3.4) of integer microseconds: `…T12:00:00.123456+00:00`, no fraction at 0."""
    return (_EPOCH + dt.timedelta(microseconds=us)).isoformat()


def check_limit(value: Any, top: int, loc: list) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{loc[-1]} must be an integer", loc=loc, type="int_parsing")
    if value < 1:
        raise InvalidArgument(f"{loc[-1]} must be at least 1", loc=loc, type="greater_than_equal", ge=1)
    if value > top:
        raise InvalidArgument(f"{loc[-1]} must be at most {top}", loc=loc, type="less_than_equal", le=top)
    return value


def check_offset(value: Any, loc: list) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{loc[-1]} must be an integer", loc=loc, type="int_parsing")
    if value < 0:
        raise InvalidArgument(f"{loc[-1]} must be at least 0", loc=loc, type="greater_than_equal", ge=0)
    return value


def _threshold(value: Any, loc: list) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{loc[-1]} must be a number", loc=loc, type="float_parsing")
    if value < 0:
        raise InvalidArgument(f"{loc[-1]} must be at least 0", loc=loc, type="greater_than_equal", ge=0)
    return float(value)


def delete_subject_in(tx, tenant_id: str | None, subject_id: str) -> int:
    """The support rows of a subject delete (§5.11), inside the caller's mutation: its resolutions and its
    health-state record in scope; returns how many resolutions went."""
    return tx.support.delete_subject(tenant_id, subject_id)


def _health_in(tx, webhooks, tenant_id: str | None, subject_id: str) -> Health:
    resolutions = tx.support.resolutions(tenant_id, subject_id, None, healthscore.RESOLUTIONS, 0)
    episodes = tx.support.episode_window(tenant_id, subject_id, healthscore.EPISODES)
    now = micros(tx.now)
    health = healthscore.score(subject_id, resolutions, episodes, now)
    healthscore.observe_in(tx, webhooks, tenant_id, health, offset_form(now))
    return health


def _handoff_inputs_in(tx, webhooks, tenant_id: str | None, subject_id: str) -> tuple:
    """One snapshot of what a handoff reads (the widest window serves all three: SLA 500, health 200,
    handoff 30), with the health scored and observed."""
    facts = tx.support.facts(tenant_id, subject_id, brief.FACTS)
    episodes = tx.support.episode_window(tenant_id, subject_id, slafigures.EPISODES)
    resolutions = tx.support.resolutions(tenant_id, subject_id, None, healthscore.RESOLUTIONS, 0)
    now = micros(tx.now)
    health = healthscore.score(subject_id, resolutions, episodes, now)
    healthscore.observe_in(tx, webhooks, tenant_id, health, offset_form(now))
    return facts, episodes, resolutions, health, now


class Support:
    """With `memory` (the `Memory` facade), a subject delete there also erases the subject's resolutions and
    health-state record (§5.11), in its own mutation."""

    def __init__(self, store, webhooks=None, memory=None):
        self._store = store
        self._webhooks = webhooks  # None: transitions are recorded, no event is enqueued
        if memory is not None:
            memory.cascades.append(lambda tx, tenant_id, subject_id: {
                "resolutions_deleted": delete_subject_in(tx, tenant_id, subject_id)})

    async def resolve(self, tenant: str, tenant_id: str | None, r: ResolutionInput) -> Resolution:
        """POST /v1/resolutions (§5.14): the atomic upsert; the stored resolution."""
        tenant_id, r = check_tenant_id(tenant_id), checked(r)
        return await self._store.submit(tenant, lambda tx: upsert_in(tx, tenant_id, r))

    async def resolutions(self, tenant: str, tenant_id: str | None, subject_id: str, status: str | None = None,
                          limit: int = 50, offset: int = 0) -> list[Resolution]:
        """GET /v1/resolutions (§5.15): most recently updated first (ties: creation order)."""
        tenant_id = check_tenant_id(tenant_id)
        if not isinstance(subject_id, str) or not subject_id:
            raise InvalidArgument("subject_id must be a non-empty string", loc=["query", "subject_id"],
                                  type="string_too_short", min_length=1)
        if status is not None:
            check_status(status, ["query", "status"])
        limit, offset = check_limit(limit, MAX_PAGE, ["query", "limit"]), check_offset(offset, ["query", "offset"])
        return await self._store.support.resolutions(tenant, tenant_id, subject_id, status, limit, offset)

    async def health(self, tenant: str, tenant_id: str | None, subject_id: str) -> Health:
        """GET /v1/subjects/{id}/health (§5.12): the score, and the transition check (its one write)."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["path", "subject_id"])
        return await self._store.submit(tenant, lambda tx: _health_in(tx, self._webhooks, tenant_id, subject_id))

    async def sla(self, tenant: str, tenant_id: str | None, subject_id: str,
                  first_response_threshold_minutes: float = slafigures.FIRST_RESPONSE_MINUTES,
                  resolution_threshold_hours: float = slafigures.RESOLUTION_HOURS) -> SLA:
        """GET /v1/subjects/{id}/sla (§5.13). Reads only."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["path", "subject_id"])
        minutes = _threshold(first_response_threshold_minutes, ["query", "first_response_threshold_minutes"])
        hours = _threshold(resolution_threshold_hours, ["query", "resolution_threshold_hours"])
        episodes, resolutions = await self._store.support.sla_inputs(
            tenant, tenant_id, subject_id, slafigures.EPISODES, slafigures.RESOLUTIONS)
        now = micros(self._store.clock.now())
        return slafigures.sla(subject_id, episodes, resolutions, now, minutes, hours)

    async def handoff(self, tenant: str, tenant_id: str | None, subject_id: str, session_id: str,
                      reason: str = "escalation", max_tokens: int | None = None) -> Handoff:
        """POST /v1/handoff (§5.16, §6.9), with the health-transition check as its side effect."""
        tenant_id = check_tenant_id(tenant_id)
        subject_id = check_subject_id(subject_id, ["body", "subject_id"])
        session_id = check_subject_id(session_id, ["body", "session_id"])
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise InvalidArgument(f"reason must be a string of at most {MAX_REASON} characters",
                                  loc=["body", "reason"], type="string_too_long", max_length=MAX_REASON)
        if max_tokens is not None:
            max_tokens = check_limit(max_tokens, MAX_HANDOFF_TOKENS, ["body", "max_tokens"])
        facts, episodes, resolutions, health, now = await self._store.submit(
            tenant, lambda tx: _handoff_inputs_in(tx, self._webhooks, tenant_id, subject_id))
        figures = slafigures.sla(subject_id, episodes, resolutions, now)
        return brief.assemble(subject_id, session_id, reason, max_tokens, facts, episodes, resolutions, health,
                              figures, now)
