"""semvec §5.31–§5.37: regions, their clusters, drift events and realignments."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...services import Services
from . import wire
from .wire import Call, Route


class RegionBody(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    consensus_threshold: float = Field(0.5, ge=0, le=1)
    vote_window_seconds: float = Field(60.0, gt=0, le=86_400)


class AttachBody(BaseModel):
    cluster_id: str = Field(max_length=128)


class EventsQuery(BaseModel):
    limit: int = Field(20, ge=1, le=1000)


def routes(svc: Services) -> list[Route]:
    co = svc.coordination

    async def create(c: Call):
        b = await c.body(RegionBody)
        r = await co.create_region(c.tenant, b.name, b.consensus_threshold, b.vote_window_seconds)
        return wire.json({"region_id": r.id, "name": r.name, "meta_session_id": r.meta_session_id}, 201)

    async def listing(c: Call):
        return wire.json([{"region_id": r.id, "name": r.name, "cluster_count": n}
                          for r, n in await co.regions(c.tenant)])

    async def get(c: Call):
        v = await co.region(c.tenant, c.params["region_id"])
        r = v.region
        return wire.json({"region_id": r.id, "name": r.name, "meta_session_id": r.meta_session_id,
                          "cluster_count": v.cluster_count, "consensus_threshold": r.consensus_threshold,
                          "vote_window_seconds": r.vote_window_seconds, "recent_drift_events": v.events,
                          "last_realignment": v.realignments[-1].timestamp if v.realignments else None,
                          "realignment_count": v.realignment_count, "recent_realignments": v.realignments})

    async def delete(c: Call):
        await co.delete_region(c.tenant, c.params["region_id"])
        return wire.json({"deleted": True})

    async def attach(c: Call):
        b = await c.body(AttachBody)
        await co.attach(c.tenant, c.params["region_id"], b.cluster_id)
        return wire.json({"added": True})

    async def detach(c: Call):
        await co.detach(c.tenant, c.params["region_id"], c.params["cluster_id"])
        return wire.json({"removed": True})

    async def events(c: Call):
        q = c.query(EventsQuery)
        return wire.json(await co.events(c.tenant, c.params["region_id"], q.limit))

    return [Route("POST", "/v1/region/", create), Route("GET", "/v1/region/", listing),
            Route("GET", "/v1/region/{region_id}", get), Route("DELETE", "/v1/region/{region_id}", delete),
            Route("POST", "/v1/region/{region_id}/clusters", attach),
            Route("DELETE", "/v1/region/{region_id}/clusters/{cluster_id}", detach),
            Route("GET", "/v1/region/{region_id}/events", events)]
