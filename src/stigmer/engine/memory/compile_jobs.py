"""Async compiles (Statewave §5.5 async, §5.6, §6.6) as jobs of the durable queue (engine/jobs.py).

A job of kind `statewave.compile` carries `{subject_id, tenant_id}`; its handler runs the same compile as a
sync request (`Memory.compile`: the heuristic or the LLM compiler, one committing mutation with the
`memories.compiled` event in it) and stores `{memories_created, memories}`
as the job's result, so a completed job answers with its memories after a restart and on every replica
(Decision 5). The kind is registered with `on_interrupt="fail"`: a run lost with its process is failed with
`interrupted by server restart` once its lease runs out, and never run again; its compile had not
committed, so the next compile takes its episodes. Finished jobs are deleted after the queue's retention
(`job_retention_hours`, alias `STATEWAVE_COMPILE_JOB_RETENTION_HOURS`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..jobs import Job, Jobs
from .episodes import check_subject_id, check_tenant_id
from .memories import MemoryRecord

KIND = "statewave.compile"


class CompileJob(msgspec.Struct, frozen=True):
    job_id: str
    status: str  # pending | running | completed | failed
    subject_id: str
    memories_created: int | None = None  # completed
    memories: list[MemoryRecord] | None = None  # completed: what the run created, in output order
    error: str | None = None  # failed


def visible(job: Job, tenant_id: str | None) -> bool:
    """A compile job of the request's scope: its own tenant's, or any in unscoped mode (Decision 30)."""
    return job.kind == KIND and isinstance(job.payload, dict) and (
        tenant_id is None or job.payload.get("tenant_id") == tenant_id)


class CompileJobs:
    def __init__(self, memory, jobs: Jobs):
        self.memory = memory
        self.jobs = jobs
        jobs.register(KIND, self._run, on_interrupt="fail")
        memory.cascades.append(self._delete_subject_in)

    async def submit(self, tenant: str, tenant_id: str | None, subject_id: str) -> Job:
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["body", "subject_id"])
        return await self.jobs.submit(tenant, KIND, {"subject_id": subject_id, "tenant_id": tenant_id},
                                      max_attempts=1)

    async def get(self, tenant: str, tenant_id: str | None, job_id: str) -> CompileJob | None:
        """The job as §5.6 shows it, or None when unknown, purged or of another tenant."""
        tenant_id = check_tenant_id(tenant_id)
        job = await self.jobs.get(tenant, job_id) if len(job_id) <= 64 else None
        if job is None or not visible(job, tenant_id):
            return None
        subject_id = job.payload.get("subject_id", "")
        if job.status == "completed":
            result: Any = job.result if isinstance(job.result, dict) else {}
            memories = msgspec.convert(result.get("memories", []), list[MemoryRecord])
            return CompileJob(job.id, job.status, subject_id, result.get("memories_created", len(memories)), memories)
        if job.status == "failed":
            return CompileJob(job.id, job.status, subject_id, error=job.error or "failed")
        return CompileJob(job.id, job.status, subject_id)

    async def _run(self, job: Job) -> dict:
        result = await self.memory.compile(job.tenant, job.payload.get("tenant_id"), job.payload["subject_id"])
        return {"memories_created": result.memories_created, "memories": msgspec.to_builtins(result.memories)}

    def _delete_subject_in(self, tx, tenant_id: str | None, subject_id: str) -> dict[str, int]:
        doomed = [j.id for j in tx.jobs.of_kind(KIND) if visible(j, tenant_id) and j.payload.get("subject_id") == subject_id]
        return {"compile_jobs_deleted": tx.jobs.delete(doomed)}
