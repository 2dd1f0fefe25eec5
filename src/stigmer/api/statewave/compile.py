"""POST /v1/memories/compile (sync and async) and GET /v1/memories/compile/{job_id} (specs/statewave.md
§5.5, §5.6, §6.6). Async compiles are jobs of the durable queue (engine/memory/compile_jobs.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...engine.memory.compile_jobs import CompileJobs
from ...services import Services
from . import wire
from .surface import Call, Route, route


class CompileBody(BaseModel):
    subject_id: str
    async_: bool = Field(False, alias="async")  # only the key `async` selects async mode; `async_mode` is ignored


def routes(svc: Services) -> list[Route]:
    memory = svc.memory
    jobs = CompileJobs(memory, svc.jobs)

    async def compile_(call: Call):
        body = await wire.body(call.request, CompileBody)
        if body.async_:
            job = await jobs.submit(call.tenant, call.tenant_id, body.subject_id)
            return wire.json({"job_id": job.id, "status": "pending", "subject_id": body.subject_id}, 202)
        result = await memory.compile(call.tenant, call.tenant_id, body.subject_id)
        return wire.json({"subject_id": result.subject_id, "memories_created": result.memories_created,
                          "memories": [wire.memory(m) for m in result.memories]})

    async def status(call: Call):
        job = await jobs.get(call.tenant, call.tenant_id, call.params[0])
        if job is None:
            raise wire.not_found("Job not found or expired")
        out: dict = {"job_id": job.job_id, "status": job.status, "subject_id": job.subject_id}
        if job.status == "completed":
            out |= {"memories_created": job.memories_created, "memories": [wire.memory(m) for m in job.memories or []]}
        elif job.status == "failed":
            out["error"] = job.error
        return wire.json(out)

    return [route("POST", "/v1/memories/compile", compile_, "write", CompileBody),
            route("GET", "/v1/memories/compile/{job_id}", status)]
