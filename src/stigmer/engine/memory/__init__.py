"""The memory engine (Statewave): episodes in, memories out. `Memory(store)` is the facade; the mutation
functions (`episodes.insert_in`, `compiler.compile_in`) are what it submits, so a job can submit them too."""

from __future__ import annotations

from .compiler import compile_in
from .episodes import Episode, EpisodeInput, check_subject_id, check_tenant_id, checked_batch, checked_one, insert_in
from .memories import STATUSES, CompileResult, MemoryRecord
from .context import DEFAULT_MAX_TOKENS, ContextAssembly, ContextBundle, SessionResolution, no_resolutions
from .recall import Recall, RecallBundle
from .search import DEFAULT_LIMIT, MemorySearch
from ..errors import InvalidArgument

__all__ = ["Memory", "Episode", "EpisodeInput", "MemoryRecord", "CompileResult", "ContextBundle", "RecallBundle",
           "SessionResolution"]


class Memory:
    """`embedder` (support/embeddings.py, None: text search only) serves search and context;
    `resolutions_of(tenant, tenant_id, subject_id)` gives §6.8 the subject's resolutions (the support layer's)."""

    def __init__(self, store, embedder=None, default_max_tokens: int = DEFAULT_MAX_TOKENS,
                 resolutions_of=no_resolutions):
        self._store = store
        self.finder = MemorySearch(store, embedder)
        self.assembly = ContextAssembly(store, self.finder, default_max_tokens, resolutions_of)
        self._recall = Recall(store, self.finder, default_max_tokens)

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

    async def search(self, tenant: str, tenant_id: str | None, subject_id: str, q: str | None = None,
                     kind: str | None = None, semantic: bool = False, limit: int = DEFAULT_LIMIT) -> list[MemoryRecord]:
        """§5.7 / §6.5: active memories, newest first without `q`, else BM25 (or cosine with a real provider)."""
        return await self.finder.search(tenant, tenant_id, subject_id, q, kind, semantic, limit)

    async def hybrid(self, tenant: str, tenant_id: str | None, subject_id: str, q: str, kind: str | None = None,
                     limit: int = DEFAULT_LIMIT) -> list[tuple[MemoryRecord, float]]:
        """Any-term BM25 fused with the embedder's ranking by reciprocal rank (engine only, docs/memory.md)."""
        return await self.finder.hybrid(tenant, tenant_id, subject_id, q, kind, limit)

    async def embed(self, tenant: str, memories: list[MemoryRecord]) -> int:
        """Store the embedder's vectors of the active ones among `memories` (call after a compile or import)."""
        return await self.finder.embed_memories(tenant, memories)

    async def context(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                      max_tokens: int | None = None, session_id: str | None = None) -> ContextBundle:
        """§5.8 / §6.8 exactly."""
        return await self.assembly.context(tenant, tenant_id, subject_id, task, max_tokens, session_id)

    async def recall(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                     max_tokens: int | None = None) -> RecallBundle:
        """The query-driven context (engine/memory/recall.py): the task's retrieval fills the budget."""
        return await self._recall.recall(tenant, tenant_id, subject_id, task, max_tokens)
