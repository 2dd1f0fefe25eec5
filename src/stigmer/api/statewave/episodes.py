"""POST /v1/episodes and /v1/episodes/batch (specs/statewave.md §5.3, §5.4).

The model checks the shape (members and their JSON types); the engine checks lengths and the batch size
(engine/memory/episodes.py), all before anything is written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...engine.memory import EpisodeInput
from ...services import Services
from . import wire
from .surface import Call, Route, route


class EpisodeBody(BaseModel):
    subject_id: str
    source: str
    type: str
    payload: dict[str, Any]
    metadata: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    session_id: str | None = None

    def input(self) -> EpisodeInput:
        return EpisodeInput(self.subject_id, self.source, self.type, self.payload, self.metadata, self.provenance,
                            self.session_id)


class BatchBody(BaseModel):
    episodes: list[EpisodeBody]


def routes(svc: Services) -> list[Route]:
    memory = svc.memory

    async def create(call: Call):
        body = await wire.body(call.request, EpisodeBody)
        episode = await memory.add_episode(call.tenant, call.tenant_id, body.input())
        return wire.json(wire.episode(episode), 201)

    async def create_batch(call: Call):
        body = await wire.body(call.request, BatchBody)
        stored = await memory.add_episodes(call.tenant, call.tenant_id, [e.input() for e in body.episodes])
        return wire.json({"episodes_created": len(stored), "episodes": [wire.episode(e) for e in stored]}, 201)

    return [route("POST", "/v1/episodes", create, "write", EpisodeBody), route("POST", "/v1/episodes/batch", create_batch, "write",
                                                                                     BatchBody)]
