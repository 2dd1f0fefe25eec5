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

import functools
import re
from typing import TYPE_CHECKING, Callable

import msgspec

from ...support import tokencount
from .context import check_request, memory_line
from .episodes import check_tenant_id

if TYPE_CHECKING:
    from ...store.base import Store
    from .memories import MemoryRecord
    from .search import MemorySearch

RECENT = 50  # newest summaries offered after the search hits
KINDS = ("profile_fact", "procedure", "episode_summary")
RELEVANT, RECENT_TITLE = "## Relevant memories", "## Recent history"
CHUNK = 128  # ranked memories read per store call (a text ranking, at most POOL, comes whole with it)
MIN_LINE = 2  # tokens of the shortest line ("- " and one word): below this much room nothing more fits


# cl100k_base pre-tokenises before merging, and none of its pre-token patterns holds a newline followed by a
# non-space character, so a text's count is the sum of its pieces' counts when cut at such places.
_PIECE = re.compile(r"(?<=\n)(?=\S)")


@functools.lru_cache(maxsize=1 << 16)
def line_tokens(line: str) -> int:
    """A line's token count: memory lines are immutable and asked for again by every task of their subject."""
    return tokencount.count(line)


def text_tokens(text: str) -> int:
    """tokens(text), exactly, summed over cached pieces (a context is mostly lines already counted)."""
    if not tokencount.exact():
        return tokencount.count(text)  # ceil(len/4) does not add up piece by piece
    return sum(line_tokens(piece) for piece in _PIECE.split(text))


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


class Packing:
    """The §6.8 packing rule over candidates offered in rank order (section titles counted up front)."""

    def __init__(self, task: str, budget: int, count_line: Callable[[str], int] = line_tokens):
        self.task, self.budget, self._count = task, budget, count_line
        self.used = tokencount.count("## Task\n" + task + "\n") + count_line(RELEVANT) + count_line(RECENT_TITLE)
        self.covered: set[str] = set()
        self.packed: list[RecallLine] = []

    @property
    def full(self) -> bool:
        return self.used + MIN_LINE + 10 > self.budget

    def offer(self, m: MemoryRecord, via: str, score: float) -> None:
        """Pack `m`'s line if it fits (its RecallLine is built only then: most offers are refused)."""
        episode_ids = m.source_episode_ids
        if self.full or (episode_ids and self.covered.issuperset(episode_ids)):
            return
        line = memory_line(m)
        cost = self._count(line)
        if self.used + cost + 10 > self.budget:
            return
        self.packed.append(RecallLine(line, m.id, m.kind, episode_ids, via, score))
        self.covered.update(episode_ids)
        self.used += cost

    def result(self) -> tuple[list[RecallLine], str, int]:
        """Lines are dropped from the end while the rendering passes the budget (a join can merge tokens)."""
        packed = list(self.packed)
        text = render(self.task, packed)
        tokens = text_tokens(text)
        while packed and tokens > self.budget:
            packed.pop()
            text = render(self.task, packed)
            tokens = text_tokens(text)
        return packed, text, tokens


class Recall:
    def __init__(self, store: "Store", search: "MemorySearch", default_max_tokens: int):
        self._store = store
        self._search = search
        self.default_max_tokens = default_max_tokens

    async def recall(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                     max_tokens: int | None = None) -> RecallBundle:
        tenant_id = check_tenant_id(tenant_id)
        subject_id, task, max_tokens, _ = check_request(subject_id, task, max_tokens, None)
        index = self._store.memory_index
        # the newest summaries come with the ranking: most tasks need them (the hits rarely fill the budget)
        ranking, found, latest = await self._search.hybrid_ranking(tenant, tenant_id, subject_id, task, first=CHUNK,
                                                                   recent=(["episode_summary"], RECENT))
        packing = Packing(task, max_tokens or self.default_max_tokens)
        seen: set[str] = set()
        for start in range(0, len(ranking), CHUNK):  # records are read as far down the ranking as the budget goes
            if packing.full:
                break
            chunk = ranking[start:start + CHUNK]
            if start:  # the first chunk came with the ranking
                found = await index.by_seq(tenant, [seq for seq, _ in chunk])
            for seq, score in chunk:
                if packing.full:
                    break
                m = found.get(seq)
                if m is not None and m.kind in KINDS:
                    seen.add(m.id)
                    packing.offer(m, "search", score)
        if not packing.full:
            for m in latest:
                if m.id not in seen:
                    packing.offer(m, "recent", 0.0)
        packed, text, tokens = packing.result()
        return RecallBundle(subject_id, task, text, tokens, packed)
