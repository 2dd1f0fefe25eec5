"""Query-driven context (the engine's own mode, beside the spec-exact §6.8; docs/memory.md "Query-driven context").

§6.8 ranks the newest 30 episodes and the newest memories by recency and word overlap: on a long history the
turn a task needs is rarely among them. `recall` lets the task's retrieval fill the budget instead:
1. the subject's active memories (all kinds but `artifact_ref`) ranked by `MemorySearch.hybrid_ranking`: the
   any-term BM25 ranking of the task, fused by reciprocal rank with the vector ranking when an embedder is set;
2. then the newest episode summaries not yet used (`RECENT` of them), so a budget the search does not fill
   still carries the latest history;
3. packing as §6.8 (a line goes in when `used + tokens(line) + 10 ≤ budget`, otherwise the next is tried),
   skipping a memory whose source episodes are all covered by lines already packed;
4. every line keeps its provenance: the memory, its kind, its source episodes, how it was found (`search` or
   `recent`) and its fused score.
The Statewave route never uses it (§5.8 stays exact); it is `Memory.recall` in the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import msgspec

from ...support import tokencount
from .context import check_request, memory_line
from .episodes import check_tenant_id

if TYPE_CHECKING:
    from ...store.base import Store
    from .search import MemorySearch

RECENT = 50  # newest summaries offered after the search hits
KINDS = ("profile_fact", "procedure", "episode_summary")
RELEVANT, RECENT_TITLE = "## Relevant memories", "## Recent history"


class RecallLine(msgspec.Struct, frozen=True):
    line: str
    memory_id: str
    kind: str
    episode_ids: list[str]
    via: str  # "search" or "recent"
    score: float  # the fused search score; 0 for a recent line


class RecallBundle(msgspec.Struct, frozen=True):
    subject_id: str
    task: str
    assembled_context: str
    token_estimate: int
    lines: list[RecallLine]  # packing order: what `assembled_context` holds, with its sources


def render(task: str, lines: list[RecallLine]) -> str:
    parts = ["## Task\n" + task + "\n"]
    for via, title in (("search", RELEVANT), ("recent", RECENT_TITLE)):
        chosen = [x.line for x in lines if x.via == via]
        if chosen:
            parts += [title, *chosen, ""]
    return "\n".join(parts)


def pack(task: str, candidates: list[RecallLine], budget: int,
         count: Callable[[str], int] = tokencount.count) -> tuple[list[RecallLine], str, int]:
    """The §6.8 packing rule over candidates in rank order, section titles counted; then lines are dropped from
    the end while the rendering still passes the budget (a join can merge tokens differently)."""
    used = count("## Task\n" + task + "\n") + count(RELEVANT) + count(RECENT_TITLE)
    covered: set[str] = set()
    packed: list[RecallLine] = []
    for c in candidates:
        if c.episode_ids and covered.issuperset(c.episode_ids):
            continue
        cost = count(c.line)
        if used + cost + 10 > budget:
            continue
        packed.append(c)
        covered.update(c.episode_ids)
        used += cost
    text = render(task, packed)
    while packed and count(text) > budget:
        packed.pop()
        text = render(task, packed)
    return packed, text, count(text)


class Recall:
    def __init__(self, store: "Store", search: "MemorySearch", default_max_tokens: int):
        self._store = store
        self._search = search
        self.default_max_tokens = default_max_tokens

    async def recall(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                     max_tokens: int | None = None) -> RecallBundle:
        tenant_id = check_tenant_id(tenant_id)
        subject_id, task, max_tokens, _ = check_request(subject_id, task, max_tokens, None)
        ranking = await self._search.hybrid_ranking(tenant, tenant_id, subject_id, task)
        found = await self._store.memory_index.by_seq(tenant, [seq for seq, _ in ranking])
        candidates = [RecallLine(memory_line(m), m.id, m.kind, m.source_episode_ids, "search", score)
                      for m, score in ((found.get(seq), score) for seq, score in ranking)
                      if m is not None and m.kind in KINDS]
        seen = {c.memory_id for c in candidates}
        for m in await self._store.memory_index.newest(tenant, tenant_id, subject_id, ["episode_summary"], RECENT):
            if m.id not in seen:
                candidates.append(RecallLine(memory_line(m), m.id, m.kind, m.source_episode_ids, "recent", 0.0))
        packed, text, tokens = pack(task, candidates, max_tokens or self.default_max_tokens)
        return RecallBundle(subject_id, task, text, tokens, packed)
