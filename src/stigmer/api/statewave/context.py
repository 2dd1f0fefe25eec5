"""GET /v1/memories/search and POST /v1/context (specs/statewave.md §5.7, §5.8, §6.5, §6.8).

Both are the spec's exact behaviour (engine/memory/search.py, context.py): hybrid ranking and the query-driven
context are engine features (docs/memory.md) and never answer here. The models check shape; the engine checks
lengths and bounds (Decision 33: limit 1–100).
"""

from __future__ import annotations

from pydantic import BaseModel

from ...services import Services
from . import wire
from .surface import Call, Route, route


class SearchQuery(BaseModel):
    subject_id: str
    kind: str | None = None
    q: str | None = None
    semantic: bool = False
    limit: int = 20


class ContextBody(BaseModel):
    subject_id: str
    task: str
    max_tokens: int | None = None
    session_id: str | None = None


def routes(svc: Services) -> list[Route]:
    memory = svc.memory

    async def search(call: Call):
        q = wire.query(call.request, SearchQuery)
        found = await memory.search(call.tenant, call.tenant_id, q.subject_id, q.q, q.kind, q.semantic, q.limit)
        return wire.json({"memories": [wire.memory(m) for m in found]})

    async def context(call: Call):
        body = await wire.body(call.request, ContextBody)
        b = await memory.context(call.tenant, call.tenant_id, body.subject_id, body.task, body.max_tokens,
                                 body.session_id)
        return wire.json({
            "subject_id": b.subject_id, "task": b.task, "facts": [wire.memory(m) for m in b.facts],
            "episodes": [wire.episode(e) for e in b.episodes], "procedures": [wire.memory(m) for m in b.procedures],
            "provenance": b.provenance, "assembled_context": b.assembled_context, "token_estimate": b.token_estimate,
            "sessions": [{"session_id": s.session_id, "episode_count": s.episode_count,
                          "first_at": wire.z_time(s.first_at), "last_at": wire.z_time(s.last_at)} for s in b.sessions]})

    return [route("GET", "/v1/memories/search", search, query=SearchQuery), route("POST", "/v1/context", context, body=ContextBody)]
