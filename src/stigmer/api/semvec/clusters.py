"""semvec §5.22–§5.30: clusters, their members, the backing session's store and run, feedback."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from ...services import Services
from ..kit import validation
from . import wire
from .sessions import RunBody
from .wire import Call, Route

STORE_FIELDS = "Both 'message' and 'response' are required"
MAX_TEXT = 65_536
SESSION_ID_MAX = 256  # a user partition's id is longer than a client's 128


class ClusterBody(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    aggregation_mode: Literal["weighted_average", "attention"] = "weighted_average"
    coupling_factor: float = Field(0.0, ge=0, le=1)
    drift_exempt: bool = False


class MemberBody(BaseModel):
    session_id: str = Field(max_length=SESSION_ID_MAX)


class ClusterRunBody(RunBody):
    session_id: Optional[Any] = None  # ignored: the backing session is used (§5.29)
    user_id: Optional[Any] = None


def object_body(data: Any) -> dict:
    """A body that must be a JSON object, in FastAPI's terms (`body: dict` upstream)."""
    if data is None:
        raise validation.RequestInvalid([validation.missing(["body"])])
    if not isinstance(data, dict):
        raise validation.RequestInvalid([{"type": "dict_type", "loc": ["body"],
                                          "msg": "Input should be a valid dictionary", "input": data}])
    return data


def store_fields(data: dict) -> tuple[str, str, float | None]:
    """§5.28's own checks, before the cluster is looked up."""
    message, response = data.get("message"), data.get("response")
    if not (isinstance(message, str) and message and isinstance(response, str) and response):
        raise wire.fail(422, STORE_FIELDS)
    threshold = data.get("dedup_threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise wire.fail(422, "dedup_threshold must be a number")
        if not -1.0 <= threshold <= 1.0:
            raise wire.fail(422, "dedup_threshold must be in [-1.0, 1.0] (cosine range)")
        threshold = float(threshold)
    too_long = [too_long_item(name, value) for name, value in (("message", message), ("response", response))
                if len(value) > MAX_TEXT]
    if too_long:
        raise validation.RequestInvalid(too_long)
    return message, response, threshold


def too_long_item(name: str, value: str) -> dict:
    return {"type": "string_too_long", "loc": ["body", name], "msg": f"String should have at most {MAX_TEXT} characters",
            "input": value, "ctx": {"max_length": MAX_TEXT}}


def routes(svc: Services) -> list[Route]:
    co = svc.coordination

    async def create(c: Call):
        b = await c.body(ClusterBody)
        k = await co.create_cluster(c.tenant, b.name, b.aggregation_mode, b.coupling_factor, b.drift_exempt)
        return wire.json({"cluster_id": k.id, "name": k.name, "aggregation_mode": k.aggregation_mode,
                          "coupling_factor": k.coupling_factor}, 201)

    async def listing(c: Call):
        return wire.json([{"cluster_id": k.id, "name": k.name, "member_count": n}
                          for k, n in await co.clusters(c.tenant)])

    async def get(c: Call):
        v = await co.cluster(c.tenant, c.params["cluster_id"])
        k = v.cluster
        return wire.json({"cluster_id": k.id, "name": k.name, "aggregation_mode": k.aggregation_mode,
                          "coupling_factor": k.coupling_factor, "member_count": v.member_count, "phase": v.phase,
                          "interaction_count": v.interaction_count, "total_memories": v.total_memories,
                          "aggregate_vector": v.aggregate.tolist()})

    async def delete(c: Call):
        await co.delete_cluster(c.tenant, c.params["cluster_id"])
        return wire.json({"deleted": True})

    async def add_member(c: Call):
        b = await c.body(MemberBody)
        cid = c.params["cluster_id"]
        await co.add_member(c.tenant, cid, b.session_id)
        return wire.json({"cluster_id": cid, "session_id": b.session_id, "added": True})

    async def remove_member(c: Call):
        cid, sid = c.params["cluster_id"], c.params["session_id"]
        await co.remove_member(c.tenant, cid, sid)
        return wire.json({"cluster_id": cid, "session_id": sid, "removed": True})

    async def store(c: Call):
        message, response, threshold = store_fields(object_body(await c.json_body()))
        report = await co.cluster_store(c.tenant, c.params["cluster_id"], message, response, threshold)
        return wire.json(rounded(report))

    async def run(c: Call):
        b = await c.body(ClusterRunBody)
        return wire.json(await co.cluster_run(c.tenant, c.params["cluster_id"], b.message, b.response or None,
                                              b.short_circuit_threshold, b.reset_context))

    async def feedback(c: Call):
        cid = c.params["cluster_id"]
        return wire.json({"cluster_id": cid, "sessions_updated": await co.feedback(c.tenant, cid)})

    return [Route("POST", "/v1/cluster/", create), Route("GET", "/v1/cluster/", listing),
            Route("GET", "/v1/cluster/{cluster_id}", get), Route("DELETE", "/v1/cluster/{cluster_id}", delete),
            Route("POST", "/v1/cluster/{cluster_id}/members", add_member),
            Route("DELETE", "/v1/cluster/{cluster_id}/members/{session_id}", remove_member),
            Route("POST", "/v1/cluster/{cluster_id}/store", store), Route("POST", "/v1/cluster/{cluster_id}/run", run),
            Route("POST", "/v1/cluster/{cluster_id}/feedback", feedback)]


def rounded(report: dict) -> dict:
    """§5.28: the report's numbers to 4 decimals, except `dedup_signal.max_sim`."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}
