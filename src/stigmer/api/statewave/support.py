"""The support layer's routes (specs/statewave.md §5.12–§5.16): health, SLA, resolutions, handoff.

The models check shape and parse query numbers; the engine (engine/memory/support.py) checks lengths and
statuses with pydantic's error types, and holds every rule."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ...engine.memory.handoff import Handoff
from ...engine.memory.health import Health
from ...engine.memory.resolutions import PATTERN, Resolution, ResolutionInput
from ...engine.memory.sla import SLA
from ...services import Services
from . import wire
from .surface import Call, Route, route


class SLAQuery(BaseModel):
    first_response_threshold_minutes: float = Field(5.0, ge=0)
    resolution_threshold_hours: float = Field(24.0, ge=0)


class ResolutionBody(BaseModel):
    subject_id: str
    session_id: str
    status: str = "open"
    resolution_summary: str | None = None
    metadata: dict[str, Any] = {}


class ResolutionsQuery(BaseModel):
    subject_id: str = Field(min_length=1)
    status: str | None = Field(None, pattern=PATTERN)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class HandoffBody(BaseModel):
    subject_id: str
    session_id: str
    reason: str = "escalation"
    max_tokens: int | None = Field(None, ge=1, le=16000)


def health_json(h: Health) -> dict:
    return {"subject_id": h.subject_id, "score": h.score, "state": h.state, "factors": _factors(h.factors)}


def _factors(factors) -> list[dict]:
    return [{"signal": f.signal, "impact": f.impact, "detail": f.detail} for f in factors]


def resolution_json(r: Resolution) -> dict:
    return {"id": r.id, "subject_id": r.subject_id, "session_id": r.session_id, "status": r.status,
            "resolution_summary": r.resolution_summary, "resolved_at": wire.z_time(r.resolved_at),
            "metadata": r.metadata, "created_at": wire.z_time(r.created_at), "updated_at": wire.z_time(r.updated_at)}


def sla_json(s: SLA) -> dict:
    return {"subject_id": s.subject_id, "total_sessions": s.total_sessions, "resolved_sessions": s.resolved_sessions,
            "open_sessions": s.open_sessions, "avg_first_response_seconds": s.avg_first_response_seconds,
            "avg_resolution_seconds": s.avg_resolution_seconds,
            "first_response_breach_count": s.first_response_breach_count,
            "resolution_breach_count": s.resolution_breach_count,
            "sessions": [{"session_id": x.session_id, "status": x.status,
                          "first_message_at": wire.offset_time(x.first_message_at),
                          "first_response_at": wire.offset_time(x.first_response_at),
                          "resolved_at": wire.offset_time(x.resolved_at),
                          "first_response_seconds": x.first_response_seconds,
                          "resolution_seconds": x.resolution_seconds,
                          "open_duration_seconds": x.open_duration_seconds,
                          "first_response_breached": x.first_response_breached,
                          "resolution_breached": x.resolution_breached} for x in s.sessions]}


def handoff_json(h: Handoff) -> dict:
    p = h.provenance
    return {"subject_id": h.subject_id, "session_id": h.session_id, "reason": h.reason,
            "generated_at": wire.z_time(h.generated_at), "customer_summary": h.customer_summary,
            "active_issue": h.active_issue, "attempted_steps": h.attempted_steps, "key_facts": h.key_facts,
            "resolution_history": [{"session_id": r.session_id, "status": r.status, "summary": r.summary,
                                    "resolved_at": wire.z_time(r.resolved_at)} for r in h.resolution_history],
            "recent_context": h.recent_context, "health_score": h.health_score, "health_state": h.health_state,
            "health_factors": _factors(h.health_factors), "handoff_notes": h.handoff_notes,
            "token_estimate": h.token_estimate,
            "provenance": {"fact_ids": p.fact_ids, "episode_ids": p.episode_ids, "resolution_ids": p.resolution_ids,
                           "context_episode_ids": p.context_episode_ids}}


def routes(svc: Services) -> list[Route]:
    support = svc.support

    async def health(call: Call):
        return wire.json(health_json(await support.health(call.tenant, call.tenant_id, call.params[0])))

    async def sla(call: Call):
        q = wire.query(call.request, SLAQuery)
        return wire.json(sla_json(await support.sla(call.tenant, call.tenant_id, call.params[0],
                                                    q.first_response_threshold_minutes,
                                                    q.resolution_threshold_hours)))

    async def resolve(call: Call):
        b = await wire.body(call.request, ResolutionBody)
        r = await support.resolve(call.tenant, call.tenant_id, ResolutionInput(
            b.subject_id, b.session_id, b.status, b.resolution_summary, b.metadata))
        return wire.json(resolution_json(r))

    async def resolutions(call: Call):
        q = wire.query(call.request, ResolutionsQuery)
        found = await support.resolutions(call.tenant, call.tenant_id, q.subject_id, q.status, q.limit, q.offset)
        return wire.json([resolution_json(r) for r in found])  # a bare array (§5.15)

    async def handoff(call: Call):
        b = await wire.body(call.request, HandoffBody)
        h = await support.handoff(call.tenant, call.tenant_id, b.subject_id, b.session_id, b.reason, b.max_tokens)
        return wire.json(handoff_json(h))

    return [route("GET", "/v1/subjects/{subject_id}/health", health),
            route("GET", "/v1/subjects/{subject_id}/sla", sla, query=SLAQuery),
            route("POST", "/v1/resolutions", resolve, "write", ResolutionBody),
            route("GET", "/v1/resolutions", resolutions, query=ResolutionsQuery),
            route("POST", "/v1/handoff", handoff, "write", HandoffBody)]
