"""The memory engine (Statewave): episodes in, memories out. `Memory(store)` is the facade; the mutation
functions (`episodes.insert_in`, `compiler.compile_in`) are what it submits, so a job can submit them too."""

from __future__ import annotations

from .compiler import compile_in
from .episodes import Episode, EpisodeInput, check_subject_id, check_tenant_id, checked_batch, checked_one, insert_in
from .memories import STATUSES, CompileResult, MemoryRecord
from ..errors import InvalidArgument

__all__ = ["Memory", "Episode", "EpisodeInput", "MemoryRecord", "CompileResult"]


class Memory:
    def __init__(self, store):
        self._store = store

    async def add_episode(self, tenant: str, tenant_id: str | None, episode: EpisodeInput) -> Episode:
        tenant_id, item = check_tenant_id(tenant_id), checked_one(episode)
        return (await self._store.submit(tenant, lambda tx: insert_in(tx, tenant_id, [item])))[0]

    async def add_episodes(self, tenant: str, tenant_id: str | None, episodes: list[EpisodeInput]) -> list[Episode]:
        """All or nothing, one `created_at`, input order (§5.4)."""
        tenant_id, items = check_tenant_id(tenant_id), checked_batch(episodes)
        return await self._store.submit(tenant, lambda tx: insert_in(tx, tenant_id, items))

    async def compile(self, tenant: str, tenant_id: str | None, subject_id: str) -> CompileResult:
        """A sync compile (§5.5): runs §6.1–§6.3 on the subject's uncompiled episodes in the request's scope."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["body", "subject_id"])
        created = await self._store.submit(tenant, lambda tx: compile_in(tx, tenant_id, subject_id))
        return CompileResult(subject_id, len(created), created)

    async def episodes(self, tenant: str, tenant_id: str | None, subject_id: str) -> list[Episode]:
        """The subject's episodes in the request's scope, ascending (§6.12)."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["query", "subject_id"])
        return await self._store.memory.episodes(tenant, tenant_id, subject_id)

    async def memories(self, tenant: str, tenant_id: str | None, subject_id: str,
                       status: str | None = None) -> list[MemoryRecord]:
        """The subject's memories in the request's scope (of one status, if given), newest first (§6.12)."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["query", "subject_id"])
        if status is not None and status not in STATUSES:
            raise InvalidArgument("status must be active or superseded", loc=["query", "status"])
        return await self._store.memory.memories(tenant, tenant_id, subject_id, status)
