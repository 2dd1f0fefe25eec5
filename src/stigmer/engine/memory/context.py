"""Context assembly (Statewave §5.8, §6.7, §6.8), exactly as specified; docs/memory.md "Context".

`assemble` is the pure §6.8 computation over fetched candidates (tested on the spec's worked examples);
`ContextAssembly.context` fetches them within the request's scope and calls it. Scores are floats computed in
the spec's operation order, and the sorts are stable, so equal scores keep candidate order. Token counts are
cl100k_base (support/tokencount.py, with the §6.7 fallback). Every packed line's source is in `provenance`.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgspec

from ...support import tokencount
from ..errors import InvalidArgument
from .compiler import text
from .episodes import Episode, check_subject_id, check_tenant_id, micros
from .memories import MemoryRecord

if TYPE_CHECKING:
    from ...store.base import Store
    from .search import MemorySearch

FACTS, PROCEDURES, SUMMARIES, EPISODES = 50, 20, 30, 30  # candidate windows (§6.8, Decision 2)
DEFAULT_MAX_TOKENS = 4000  # DEFAULT_MAX_CONTEXT_TOKENS (§3.10)
MAX_TOKENS, MAX_TASK = 128_000, 4000
SEMANTIC_TOP = 100
PRIORITY = {"profile_fact": 10, "procedure": 8, "episode_summary": 5}
ACTING_SOURCES = frozenset({"assistant", "agent", "tool", "system"})
ACTING_TYPES = frozenset({"action", "tool_call", "resolution_attempt"})
URGENT = ("urgent", "critical", "blocked", "deadline", "asap", "emergency", "breaking", "outage", "downtime",
          "compliance", "sla", "escalat", "immediately", "production down", "p0", "p1", "severity")
STOP = frozenset("""i me my we our you your he she it they them their this that is am are was were be been being
have has had do does did will would shall should can could may might must a an the and but or nor for so yet at by
from in into of on to up with as if then else when where how what which who whom why all any each every no not
only very just also too hi hello thanks thank okay ok yes please hey sure got get let know think want need
help""".split())
RECENT_RESOLVED = 20
_ROLE = re.compile(r"^(user|assistant|system):\s*")


class SessionResolution(msgspec.Struct, frozen=True):
    """What §6.8 reads of a resolution: its session, status and summary (most recently updated first)."""

    session_id: str | None
    status: str
    resolution_summary: str | None = None


class SessionSpan(msgspec.Struct, frozen=True):
    session_id: str
    episode_count: int
    first_at: int
    last_at: int


class ContextBundle(msgspec.Struct, frozen=True):
    """§5.8's answer; timestamps are integer microseconds (the surface renders them)."""

    subject_id: str
    task: str
    facts: list[MemoryRecord]  # packed profile facts, then packed summaries
    episodes: list[Episode]
    procedures: list[MemoryRecord]
    provenance: dict[str, list[str]]
    assembled_context: str
    token_estimate: int
    sessions: list[SessionSpan]


def words(s: str) -> set[str]:
    return set(s.lower().split())


def rel(task_words: set[str], x: str) -> float:
    """min((|T ∩ words(x)| / |T|) × 5, 5); 0 when T or x is empty."""
    if not task_words or not x:
        return 0.0
    return min((len(task_words & words(x)) / len(task_words)) * 5, 5)


def keywords(s: str) -> set[str]:
    return words(s) - STOP


def clean(content: str) -> str:
    """An episode_summary's line text: role prefixes off, ≤ 2 parts joined by →, else first → last."""
    parts = [p for p in (_ROLE.sub("", line.strip(), count=1) for line in content.strip().split("\n")) if p]
    return " → ".join(parts) if len(parts) <= 2 else parts[0] + " → " + parts[-1]


def memory_line(m: MemoryRecord) -> str:
    return _line(m.kind, m.content)


@functools.lru_cache(maxsize=1 << 16)
def _line(kind: str, content: str) -> str:
    """Memoised: a memory's content never changes, and every task of its subject renders it again."""
    return "- " + (clean(content) if kind == "episode_summary" else content)


def episode_line(e: Episode, x: str) -> str:
    return f"- [{e.source}/{e.type}] " + (x[:150] if x else "(no text content)")


def _recency(t: float, lo: float, hi: float) -> float:
    return 5 if hi == lo else ((t - lo) / (hi - lo)) * 5


def _seconds(us: int) -> float:
    return us / 10**6  # what datetime.timestamp() gives for a microsecond-precise UTC time


def repeat_boosts(episodes: list[Episode], texts: list[str], task: str, session_id: str | None,
                  resolutions: list[SessionResolution]) -> dict[str, float]:
    """§6.8 repeat boost per resolved prior session."""
    resolved = {r.session_id for r in resolutions if r.status == "resolved"}
    summaries: dict[str, str] = {}
    for r in [r for r in resolutions if r.status == "resolved"][:RECENT_RESOLVED]:
        if r.resolution_summary and r.session_id not in summaries:
            summaries[r.session_id] = r.resolution_summary
    current = keywords(" ".join(x for e, x in zip(episodes, texts) if session_id is not None
                                and e.session_id == session_id)) | keywords(task)
    by_session: dict[str, list[str]] = {}
    for e, x in zip(episodes, texts):
        if x and e.session_id is not None and e.session_id in resolved and e.session_id != session_id:
            by_session.setdefault(e.session_id, []).append(x)
    boosts = {}
    for r, their in by_session.items():
        prior = keywords(" ".join(their))
        if r in summaries:
            prior |= keywords(summaries[r])
        if current and len(current & prior) / len(current) >= 0.3:
            boosts[r] = 6 if r in summaries else 4
    return boosts


def assemble(subject_id: str, task: str, facts: list[MemoryRecord], procedures: list[MemoryRecord],
             summaries: list[MemoryRecord], episodes: list[Episode], resolutions: list[SessionResolution],
             max_tokens: int, now: int, session_id: str | None = None,
             semantic: dict[str, float] | None = None, count: Callable[[str], int] = tokencount.count) -> ContextBundle:
    """§6.8 over fetched candidates: facts/procedures/summaries newest first, episodes ascending, resolutions most
    recently updated first; `semantic` maps memory ids to cosine distances (real providers only)."""
    task_words = words(task)
    memories = facts + procedures + summaries
    times = [_seconds(m.created_at) for m in memories]
    lo, hi = (min(times), max(times)) if times else (0.0, 0.0)
    items: list[tuple[float, str, Any, str]] = []  # (score, kind, record, line)
    for m, t in zip(memories, times):
        relevance = (max(0, 1 - semantic[m.id]) * 8) if semantic and m.id in semantic else rel(task_words, m.content)
        temporal = 3 if m.valid_to is None or m.valid_to > now else -4
        items.append((PRIORITY[m.kind] + _recency(t, lo, hi) + relevance + temporal, m.kind, m, memory_line(m)))
    covered = {i for m in summaries for i in m.source_episode_ids}
    texts = [text(e.payload) for e in episodes]
    e_times = [_seconds(e.created_at) for e in episodes]
    e_lo, e_hi = (min(e_times), max(e_times)) if e_times else (0.0, 0.0)
    status = {}
    for r in reversed(resolutions):  # the most recently updated wins for a session
        status[r.session_id] = r.status
    boosts = repeat_boosts(episodes, texts, task, session_id, resolutions)
    for e, x, t in zip(episodes, texts, e_times):
        if e.id in covered:
            continue
        score = 3 + _recency(t, e_lo, e_hi) + rel(task_words, x)
        session = status.get(e.session_id) if e.session_id is not None else None
        if session_id is not None and e.session_id == session_id:
            score += 6
        if session == "resolved":
            score -= 5
        score += boosts.get(e.session_id, 0) if e.session_id is not None else 0
        if session == "open":
            score += 4
        if e.source in ACTING_SOURCES or e.type in ACTING_TYPES:
            score += 2
        if x and any(k in x.lower() for k in URGENT):
            score += 2
        if x and len(x.strip()) < 20:
            score -= 2
        items.append((score, "episode", e, episode_line(e, x)))
    items.sort(key=lambda item: item[0], reverse=True)  # stable: equal scores keep candidate order
    header = "## Task\n" + task + "\n"
    used = count(header)
    packed = []
    for item in items:
        cost = count(item[3])
        if used + cost + 10 > max_tokens:
            continue
        packed.append(item)
        used += cost
    return _bundle(subject_id, task, header, packed, session_id, count)


def _bundle(subject_id: str, task: str, header: str, packed: list, session_id: str | None,
            count: Callable[[str], int]) -> ContextBundle:
    of = {kind: [(r, line) for _, k, r, line in packed if k == kind]
          for kind in ("profile_fact", "procedure", "episode_summary", "episode")}
    parts = [header]
    for kind, title in (("profile_fact", "## About this user"), ("procedure", "## Procedures"),
                        ("episode_summary", "## Recent history")):
        if of[kind]:
            parts += [title, *(line for _, line in of[kind]), ""]
    if of["episode"]:
        parts.append("## Recent interactions")
        if session_id is not None:
            current = [line for e, line in of["episode"] if e.session_id == session_id]
            previous = [line for e, line in of["episode"] if e.session_id != session_id]
            if current:
                parts += [f"### Current session ({session_id})", *current]
            if previous:
                parts += ["### Previous interactions", *previous]
        else:
            parts += [line for _, line in of["episode"]]
        parts.append("")
    assembled = "\n".join(parts)
    episodes = [e for e, _ in of["episode"]]
    spans: dict[str, list[int]] = {}
    for e in episodes:
        if e.session_id is not None:
            spans.setdefault(e.session_id, []).append(e.created_at)
    return ContextBundle(
        subject_id, task, [m for m, _ in of["profile_fact"]] + [m for m, _ in of["episode_summary"]], episodes,
        [m for m, _ in of["procedure"]],
        {"fact_ids": [m.id for m, _ in of["profile_fact"]], "summary_ids": [m.id for m, _ in of["episode_summary"]],
         "procedure_ids": [m.id for m, _ in of["procedure"]], "episode_ids": [e.id for e in episodes]},
        assembled, count(assembled),
        [SessionSpan(s, len(at), min(at), max(at)) for s, at in spans.items()])


def check_request(subject_id: Any, task: Any, max_tokens: Any, session_id: Any) -> tuple[str, str, int | None, str | None]:
    """The §5.8 body's rules (pydantic `type`s, so a surface renders them as its validation items)."""
    subject_id = check_subject_id(subject_id, ["body", "subject_id"])
    if not isinstance(task, str):
        raise InvalidArgument("Input should be a valid string", loc=["body", "task"], type="string_type")
    if not 1 <= len(task) <= MAX_TASK:
        raise InvalidArgument(f"task must be a string of 1–{MAX_TASK} characters", loc=["body", "task"],
                              type="string_too_short" if not task else "string_too_long")
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise InvalidArgument("Input should be a valid integer", loc=["body", "max_tokens"], type="int_parsing")
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise InvalidArgument(f"max_tokens must be an integer from 1 to {MAX_TOKENS}", loc=["body", "max_tokens"],
                                  type="greater_than_equal" if max_tokens < 1 else "less_than_equal")
    if session_id is not None and (not isinstance(session_id, str) or len(session_id) > 256):
        raise InvalidArgument("session_id must be a string of at most 256 characters", loc=["body", "session_id"],
                              type="string_too_long" if isinstance(session_id, str) else "string_type")
    return subject_id, task, max_tokens, session_id or None


ResolutionsOf = Callable[[str, "str | None", str], Awaitable[list[SessionResolution]]]


async def no_resolutions(tenant: str, tenant_id: str | None, subject_id: str) -> list[SessionResolution]:
    return []


RESOLUTIONS = 1000  # the most recently updated resolutions §6.8 reads (it needs those of ≤ 30 sessions)


def store_resolutions(store: "Store") -> ResolutionsOf:
    """The support layer's resolutions (`store.support.resolutions`, most recently updated first) for §6.8."""
    async def of(tenant: str, tenant_id: str | None, subject_id: str) -> list[SessionResolution]:
        found = await store.support.resolutions(tenant, tenant_id, subject_id, None, RESOLUTIONS, 0)
        return [SessionResolution(r.session_id, r.status, r.resolution_summary) for r in found]
    return of


class ContextAssembly:
    """§6.8 over a store. `resolutions_of(tenant, tenant_id, subject_id)` gives the subject's resolutions most
    recently updated first (the support layer's); `search` gives the semantic relevance with a real provider."""

    def __init__(self, store: "Store", search: "MemorySearch", default_max_tokens: int = DEFAULT_MAX_TOKENS,
                 resolutions_of: ResolutionsOf = no_resolutions):
        self._store = store
        self._search = search
        self.default_max_tokens = default_max_tokens
        self.resolutions_of = resolutions_of

    async def context(self, tenant: str, tenant_id: str | None, subject_id: str, task: str,
                      max_tokens: int | None = None, session_id: str | None = None) -> ContextBundle:
        tenant_id = check_tenant_id(tenant_id)
        subject_id, task, max_tokens, session_id = check_request(subject_id, task, max_tokens, session_id)
        index = self._store.memory_index
        facts = await index.newest(tenant, tenant_id, subject_id, ["profile_fact"], FACTS)
        procedures = await index.newest(tenant, tenant_id, subject_id, ["procedure"], PROCEDURES)
        summaries = await index.newest(tenant, tenant_id, subject_id, ["episode_summary"], SUMMARIES)
        episodes = await index.newest_episodes(tenant, tenant_id, subject_id, EPISODES)
        resolutions = await self.resolutions_of(tenant, tenant_id, subject_id)
        semantic = None
        if self._search.real_provider and (facts or procedures or summaries):
            found = await self._search.vector_ranking(tenant, tenant_id, subject_id, task)
            if found:
                records = await index.by_seq(tenant, [seq for seq, _ in found[:SEMANTIC_TOP]])
                semantic = {records[seq].id: d for seq, d in found[:SEMANTIC_TOP] if seq in records}
        return assemble(subject_id, task, facts, procedures, summaries, episodes, resolutions,
                        max_tokens or self.default_max_tokens, micros(self._store.clock.now()), session_id, semantic)
