"""The memory engine (Statewave): episodes in, memories out. `Memory(store, webhooks)` is the facade; the
mutation functions (`episodes.insert_in`, `compiler.compile_run`, `subjects.delete_in`) are what it submits,
so a job can submit them too. With `webhooks` (engine/webhooks.py), each change writes its §6.10 event in
its own transaction. With `embedder` (support/embeddings.py; None: text search only), compiled memories get
vectors and search and context may use them (search.py, context.py, recall.py). With `compiler`
(llm_compiler.py; None: the heuristic), compiles ask a model (§6.4)."""

from __future__ import annotations

from .compiler import compile_in, compile_run
from .episodes import Episode, EpisodeInput, check_subject_id, check_tenant_id, checked_batch, checked_one, insert_in
from .memories import STATUSES, CompileResult, MemoryRecord, Timeline
from .subjects import Cascade, SubjectDeleted, SubjectPage, delete_in
from .context import DEFAULT_MAX_TOKENS, ContextAssembly, ContextBundle, SessionResolution, no_resolutions
from .recall import Recall, RecallBundle
from .search import DEFAULT_LIMIT, MemorySearch
from ..errors import InvalidArgument

__all__ = ["Memory", "Episode", "EpisodeInput", "MemoryRecord", "CompileResult", "Timeline", "SubjectPage",
           "SubjectDeleted", "compile_in", "ContextBundle", "RecallBundle", "SessionResolution"]


class Memory:
    def __init__(self, store, webhooks=None, *, embedder=None, default_max_tokens: int = DEFAULT_MAX_TOKENS,
                 resolutions_of=no_resolutions, compiler=None):
        self._store = store
        self.compiler = compiler  # llm_compiler.LLMCompiler (§6.4), or None: the heuristic (§6.2)
        self.webhooks = webhooks
        self.cascades: list[Cascade] = []  # what a subject delete also erases (subjects.py)
        self.finder = MemorySearch(store, embedder)
        # resolutions_of(tenant, tenant_id, subject_id): the support layer's resolutions, for §6.8
        self.assembly = ContextAssembly(store, self.finder, default_max_tokens, resolutions_of)
        self._recall = Recall(store, self.finder, default_max_tokens)

    def _event(self, tx, event: str, data: dict, tenant_id: str | None) -> None:
        if self.webhooks is not None:
            self.webhooks.enqueue_in(tx, event, data, tenant_id=tenant_id)

    async def add_episode(self, tenant: str, tenant_id: str | None, episode: EpisodeInput) -> Episode:
        tenant_id, item = check_tenant_id(tenant_id), checked_one(episode)

        def insert(tx) -> Episode:
            e = insert_in(tx, tenant_id, [item])[0]
            self._event(tx, "episode.created", {"id": e.id, "subject_id": e.subject_id}, tenant_id)
            return e

        return await self._store.submit(tenant, insert)

    async def add_episodes(self, tenant: str, tenant_id: str | None, episodes: list[EpisodeInput]) -> list[Episode]:
        """All or nothing, one `created_at`, input order (§5.4); one `episodes.batch_created` event."""
        tenant_id, items = check_tenant_id(tenant_id), checked_batch(episodes)

        def insert(tx) -> list[Episode]:
            stored = insert_in(tx, tenant_id, items)
            self._event(tx, "episodes.batch_created", {
                "count": len(stored), "subject_ids": list(dict.fromkeys(e.subject_id for e in stored))}, tenant_id)
            return stored

        return await self._store.submit(tenant, insert)

    async def compile(self, tenant: str, tenant_id: str | None, subject_id: str) -> CompileResult:
        """A sync compile (§5.5): runs §6.1–§6.3 (or §6.4 with an LLM compiler) on the subject's uncompiled episodes in the request's scope;
        `memories.compiled` fires for a run that took at least one episode."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["body", "subject_id"])

        def committed(tx, taken: int, created: list[MemoryRecord]) -> None:
            if taken:
                self._event(tx, "memories.compiled", {"subject_id": subject_id, "memories_created": len(created)},
                            tenant_id)

        def run(tx) -> list[MemoryRecord]:
            taken, created = compile_run(tx, tenant_id, subject_id)
            committed(tx, taken, created)
            return created

        if self.compiler is None:
            created = await self._store.submit(tenant, run)
        else:  # the model is called outside any mutation; its commit re-checks the episodes (llm_compiler.py)
            created = await self.compiler.compile(self._store, tenant, tenant_id, subject_id, committed)
        await self.embed(tenant, created)  # after the commit: a provider failure never fails the compile
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

    async def timeline(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int = 100, offset: int = 0,
                       newest_first: bool = False) -> Timeline:
        """§5.9: windows of `limit` rows from `offset` (counted back from the newest with `newest_first`),
        each in ascending order, and the totals."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["query", "subject_id"])
        if limit < 1 or offset < 0:
            raise InvalidArgument("limit must be >= 1 and offset >= 0", loc=["query", "limit" if limit < 1 else "offset"])
        eps, n_eps, mems, n_mems = await self._store.memory.timeline(tenant, tenant_id, subject_id, limit, offset,
                                                                     newest_first)
        return Timeline(subject_id, eps, n_eps, mems, n_mems)

    async def subjects(self, tenant: str, tenant_id: str | None, limit: int = 50, offset: int = 0) -> SubjectPage:
        """§5.10: subjects in scope by code point, with their episode and memory counts, and the total."""
        tenant_id = check_tenant_id(tenant_id)
        if limit < 1 or offset < 0:
            raise InvalidArgument("limit must be >= 1 and offset >= 0", loc=["query", "limit" if limit < 1 else "offset"])
        rows, total = await self._store.memory.subjects(tenant, tenant_id, limit, offset)
        return SubjectPage(rows, total)

    async def delete_subject(self, tenant: str, tenant_id: str | None, subject_id: str) -> SubjectDeleted:
        """§5.11: erase the subject in the request's scope, and what every cascade keeps about it."""
        tenant_id, subject_id = check_tenant_id(tenant_id), check_subject_id(subject_id, ["path", "subject_id"])
        return await self._store.submit(
            tenant, lambda tx: delete_in(tx, tenant_id, subject_id, self.cascades, self.webhooks))

    async def search(self, tenant: str, tenant_id: str | None, subject_id: str, q: str | None = None,
                     kind: str | None = None, semantic: bool = False, limit: int = DEFAULT_LIMIT) -> list[MemoryRecord]:
        """§5.7 / §6.5: active memories, newest first without `q`, else BM25 (or cosine with a real provider)."""
        return await self.finder.search(tenant, tenant_id, subject_id, q, kind, semantic, limit)

    async def hybrid(self, tenant: str, tenant_id: str | None, subject_id: str, q: str, kind: str | None = None,
                     limit: int = DEFAULT_LIMIT) -> list[tuple[MemoryRecord, float]]:
        """Any-term BM25 fused with the embedder's ranking by reciprocal rank (engine only, docs/memory.md)."""
        return await self.finder.hybrid(tenant, tenant_id, subject_id, q, kind, limit)

    async def embed(self, tenant: str, memories: list[MemoryRecord]) -> int:
        """Store the embedder's vectors of the active ones among `memories` (a compile does; call it after an
        import or a compile job); 0 without an embedder or when the provider fails."""
        return await self.finder.embed_memories(tenant, memories)

    async def context(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                      max_tokens: int | None = None, session_id: str | None = None) -> ContextBundle:
        """§5.8 / §6.8 exactly."""
        return await self.assembly.context(tenant, tenant_id, subject_id, task, max_tokens, session_id)

    async def recall(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                     max_tokens: int | None = None) -> RecallBundle:
        """The query-driven context (engine/memory/recall.py): the task's retrieval fills the budget."""
        return await self._recall.recall(tenant, tenant_id, subject_id, task, max_tokens)
