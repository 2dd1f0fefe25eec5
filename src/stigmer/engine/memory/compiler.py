"""The heuristic compiler (Statewave §6.1, §6.2) and supersession (§6.3).

`compile_in` is the whole compile as one mutation function: it reads the uncompiled episodes, marks them
compiled, writes the memories and supersedes, all in one transaction, so a compile is atomic and (the store
serialising a Stigmer tenant's mutations) no episode is compiled twice (Decision 29). A job calls it too.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Callable

import msgspec

from .. import values
from .episodes import Episode, micros
from .memories import ACTIVE, SUPERSEDED, MemoryRecord

BATCH = 500  # uncompiled episodes per run, and active memories supersession considers (§6.2, §6.3)

_PATTERNS = [re.compile(r"(?i:my name is|i'm|i am)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)*)")] + [
    re.compile(p + r"\s+(.+?)(?:\.|,|\n|$)", re.IGNORECASE) for p in (
        r"(?:i work at|i'm at|i am at)", r"(?:i am on|i'm on)", r"(?:i live in|i'm from|i am from)",
        r"(?:i use|i prefer|my favorite)")]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else values.encode(value).decode()


def text(payload: dict) -> str:
    """§6.1: the presence of a key decides the branch."""
    if "messages" in payload:
        messages = payload["messages"]
        if not isinstance(messages, list):
            return ""
        return "\n".join(_as_text(m.get("role")) + ": " + _as_text(m.get("content"))
                         for m in messages if isinstance(m, dict))
    for key in ("text", "content"):
        if key in payload:
            return _as_text(payload[key])
    return ""


def facts(text: str) -> list[str]:
    """The `profile_fact` contents of a text, pattern by pattern, each pattern's matches left to right."""
    return [m.group(0).strip().rstrip(".").rstrip(",") for p in _PATTERNS for m in p.finditer(text)]


def emitted(text: str) -> list[tuple[str, str, str, float]]:
    """(kind, content, summary, confidence) of what one episode's text gives, in output order."""
    if not text:
        return []
    return [("episode_summary", text[:500], text[:200], 0.8)] + [
        ("profile_fact", fact, fact[:200], 0.6) for fact in facts(text)]


def _tokens(m: MemoryRecord) -> set[str]:
    return set(m.content.lower().split())


def conflict(kind: str, a: set[str], b: set[str]) -> bool:
    """Jaccard ≥ 0.6 (profile_fact) or ≥ 0.8 (other kinds), in integers so 3/5 is exactly 0.6."""
    if not a or not b:
        return False
    num, den = (3, 5) if kind == "profile_fact" else (4, 5)
    return len(a & b) * den >= len(a | b) * num


def superseded(ascending: list[MemoryRecord]) -> dict[str, int]:
    """§6.3 steps 2–4 over one tenant value's active memories in ascending order: id → its new `valid_to`."""
    groups: dict[str, list[MemoryRecord]] = {}
    for m in ascending:
        groups.setdefault(m.kind, []).append(m)
    closed: dict[str, int] = {}
    for kind, group in groups.items():
        tokens = [_tokens(m) for m in group]
        for i, m in enumerate(group):  # only earlier memories are closed so far: every later j is active
            for j in range(i + 1, len(group)):
                if conflict(kind, tokens[i], tokens[j]):
                    closed[m.id] = group[j].valid_from
                    break
    return closed


Draft = tuple[str, str, str, float]  # (kind, content, summary, confidence) of one memory to write


def memories_of(episodes: list[Episode], now: int,
                drafts: Callable[[Episode], list[Draft]] | None = None) -> list[MemoryRecord]:
    """The memories of `episodes` in episode order: what `drafts` gives for each (default: §6.2)."""
    drafts = drafts or (lambda e: emitted(text(e.payload)))
    return [MemoryRecord(str(uuid.uuid4()), e.tenant, e.tenant_id, e.subject_id, kind, content, summary, confidence,
                         e.created_at, None, [e.id], {}, ACTIVE, now, now)
            for e in episodes for kind, content, summary, confidence in drafts(e)]


def compile_in(tx, tenant_id: str | None, subject_id: str) -> list[MemoryRecord]:
    """One compile run of (subject, Statewave tenant scope): the memories it created, in output order."""
    return compile_run(tx, tenant_id, subject_id)[1]


def compile_run(tx, tenant_id: str | None, subject_id: str) -> tuple[int, list[MemoryRecord]]:
    """`compile_in`, with how many episodes the run marked compiled (an event fires for a run of ≥ 1)."""
    return commit_in(tx, tx.memory.uncompiled(tenant_id, subject_id, BATCH))


def commit_in(tx, episodes: list[Episode],
              drafts: Callable[[Episode], list[Draft]] | None = None) -> tuple[int, list[MemoryRecord]]:
    """Mark `episodes` compiled, write their memories (`drafts` of each, default §6.2) at the run's timestamp
    and run §6.3 for each tenant value among them: (episodes marked, memories created in output order)."""
    if not episodes:
        return 0, []
    subject_id = episodes[0].subject_id
    now = micros(tx.now)
    tx.memory.mark_compiled([e.id for e in episodes], now)
    created = memories_of(episodes, now, drafts)
    tx.memory.insert_memories(created)
    closed: dict[str, int] = {}
    for tenant_value in dict.fromkeys(m.tenant_id for m in created):  # unscoped: each tenant value on its own
        closed |= superseded(tx.memory.newest_active(tenant_value, subject_id, BATCH))
    tx.memory.supersede(closed, now)
    return len(episodes), [m if m.id not in closed else _closed(m, closed[m.id], now) for m in created]


def _closed(m: MemoryRecord, valid_to: int, now: int) -> MemoryRecord:
    return msgspec.structs.replace(m, status=SUPERSEDED, valid_to=valid_to, updated_at=now)
