"""semvec §5.45–§5.50: capped delta transfer, user partitions, consensus and trust."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field

from ...services import Services
from ..kit import validation
from . import wire
from .wire import Call, Route


class TransferBody(BaseModel):
    source_session_id: str = Field(max_length=256)
    target_session_id: str = Field(max_length=256)
    max_weight: float = Field(0.15, ge=0, le=2)


class SwitchBody(BaseModel):
    user_id: str = Field(min_length=1, max_length=128)


class ConsensusBody(BaseModel):
    proposer_session_id: str = Field(max_length=256)
    target_embedding: Optional[list[float]] = None
    target_text: Optional[str] = Field(None, min_length=1, max_length=65_536)


def routes(svc: Services) -> list[Route]:
    co, engine = svc.coordination, svc.sessions

    async def transfer(c: Call):
        b = await c.body(TransferBody)
        delta = await co.transfer(c.tenant, b.source_session_id, b.target_session_id, b.max_weight)
        return wire.json({"source_session_id": b.source_session_id, "target_session_id": b.target_session_id,
                          "delta_norm": delta})

    async def switch(c: Call):
        b = await c.body(SwitchBody)
        active, previous = await co.switch_user(c.tenant, b.user_id)
        return wire.json({"active_user": active, "previous_user": previous})

    async def active(c: Call):
        return wire.json({"active_user": await co.active_user(c.tenant)})

    async def serialize(c: Call):
        user_id = c.params["user_id"]
        return wire.json({"user_id": user_id, "state": await co.serialize_user(c.tenant, user_id)})

    async def consensus(c: Call):
        data = await c.json_body()
        if data is None:
            raise validation.RequestInvalid([validation.missing(["body"])])
        b = validation.validate(ConsensusBody, data, "body")
        if b.target_embedding is not None:
            target = engine.vector(b.target_embedding)
        elif b.target_text is not None:
            target = await engine.text_vector(b.target_text)
        else:
            raise validation.RequestInvalid([{"type": "missing", "loc": ["body", "target_embedding"],
                                              "msg": "Field required", "input": data}])
        accepted, trust = await co.consensus(c.tenant, b.proposer_session_id, target)
        return wire.json({"accepted": accepted, "trust_scores": trust})

    async def trust(c: Call):
        return wire.json({"trust_scores": await co.trust_scores(c.tenant)})

    return [Route("POST", "/v1/network/transfer", transfer), Route("POST", "/v1/network/users/switch", switch),
            Route("GET", "/v1/network/users/active", active),
            Route("POST", "/v1/network/users/{user_id}/serialize", serialize),
            Route("POST", "/v1/network/consensus", consensus), Route("GET", "/v1/network/consensus/trust", trust)]
