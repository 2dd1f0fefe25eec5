"""semvec §5.38–§5.44: the tenant's observer, its regions, sampling and anomalies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...services import Services
from . import wire
from .clusters import object_body
from .wire import Call, Route


class ObserverBody(BaseModel):
    sample_interval_seconds: float = Field(30.0, gt=0)
    region_ids: list[str] = Field(default_factory=list, max_length=256)


class AnomaliesQuery(BaseModel):
    limit: int = Field(20, ge=1, le=1000)


def routes(svc: Services) -> list[Route]:
    co = svc.coordination

    async def create(c: Call):
        b = await c.body(ObserverBody, optional=True)
        o, registered = await co.create_observer(c.tenant, b.sample_interval_seconds, b.region_ids)
        return wire.json({"observer_id": o.observer_id, "registered_regions": registered,
                          "meta_session_id": o.meta_session_id}, 201)

    async def summary(c: Call):
        s = await co.observer_summary(c.tenant)
        o = s.observer
        return wire.json({"observer_id": o.observer_id, "registered_regions": s.registered_regions,
                          "total_clusters_observed": s.total_clusters_observed, "last_sample_at": o.last_sample_at,
                          "anomaly_count": s.anomaly_count, "recent_anomalies": s.recent,
                          "meta_session_id": o.meta_session_id,
                          "sample_interval_seconds": o.sample_interval_seconds})

    async def sample(c: Call):
        s = await co.sample(c.tenant)
        return wire.json({"sampled_at": s.sampled_at, "sample_duration_ms": s.duration_ms,
                          "regions_sampled": s.regions_sampled, "regions_registered": s.regions_registered,
                          "clusters_sampled": s.clusters_sampled, "new_anomalies": s.new_anomalies,
                          "total_anomalies": s.total_anomalies})

    async def anomalies(c: Call):
        return wire.json(await co.anomalies(c.tenant, c.query(AnomaliesQuery).limit))

    async def clear(c: Call):
        return wire.json({"cleared": await co.clear_anomalies(c.tenant)})

    async def register(c: Call):
        data = object_body(await c.json_body())
        region_id = data.get("region_id")
        if not isinstance(region_id, str) or not region_id:
            raise wire.fail(422, "region_id is required")
        await co.register_region(c.tenant, region_id)
        return wire.json({"registered": True})

    async def unregister(c: Call):
        await co.unregister_region(c.tenant, c.params["region_id"])
        return wire.json({"unregistered": True})

    return [Route("POST", "/v1/observer/", create), Route("GET", "/v1/observer/summary", summary),
            Route("POST", "/v1/observer/sample", sample), Route("GET", "/v1/observer/anomalies", anomalies),
            Route("DELETE", "/v1/observer/anomalies", clear), Route("POST", "/v1/observer/regions", register),
            Route("DELETE", "/v1/observer/regions/{region_id}", unregister)]
