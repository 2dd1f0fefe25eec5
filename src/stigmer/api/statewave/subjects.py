"""GET /v1/timeline, GET /v1/subjects and DELETE /v1/subjects/{subject_id} (specs/statewave.md §5.9–§5.11)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...services import Services
from . import wire
from .surface import Call, Route, route


class TimelineQuery(BaseModel):
    subject_id: str  # its length is the engine's rule
    limit: int = Field(100, ge=1, le=200)
    offset: int = Field(0, ge=0)
    newest_first: bool = False


class SubjectsQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


def routes(svc: Services) -> list[Route]:
    memory = svc.memory

    async def timeline(call: Call):
        q = wire.query(call.request, TimelineQuery)
        t = await memory.timeline(call.tenant, call.tenant_id, q.subject_id, q.limit, q.offset, q.newest_first)
        return wire.json({"subject_id": t.subject_id, "episodes": [wire.episode(e) for e in t.episodes],
                          "memories": [wire.memory(m) for m in t.memories],
                          "episodes_has_more": t.episodes_total > q.offset + q.limit,
                          "memories_has_more": t.memories_total > q.offset + q.limit})

    async def list_subjects(call: Call):
        q = wire.query(call.request, SubjectsQuery)
        page = await memory.subjects(call.tenant, call.tenant_id, q.limit, q.offset)
        return wire.json({"subjects": [{"subject_id": s.subject_id, "episode_count": s.episode_count,
                                        "memory_count": s.memory_count} for s in page.subjects],
                          "total": page.total})

    async def delete(call: Call):
        deleted = await memory.delete_subject(call.tenant, call.tenant_id, call.params[0])
        return wire.json(deleted.data())

    return [route("GET", "/v1/timeline", timeline, query=TimelineQuery), route("GET", "/v1/subjects", list_subjects, query=SubjectsQuery),
            route("DELETE", "/v1/subjects/{subject_id}", delete, "write")]
