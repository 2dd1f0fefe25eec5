"""Memories: what a compile run derives from episodes (Statewave §5.5, §6.2). A memory takes the tenant of
its source episode; supersession (§6.3) sets `status` to superseded and closes `valid_to`."""

from __future__ import annotations

from typing import Any

import msgspec

ACTIVE, SUPERSEDED = "active", "superseded"
STATUSES = (ACTIVE, SUPERSEDED)


class MemoryRecord(msgspec.Struct, frozen=True):
    id: str
    tenant: str
    tenant_id: str | None
    subject_id: str
    kind: str
    content: str
    summary: str
    confidence: float
    valid_from: int
    valid_to: int | None
    source_episode_ids: list[str]
    metadata: dict[str, Any]
    status: str
    created_at: int
    updated_at: int


class CompileResult(msgspec.Struct, frozen=True):
    """Every memory one run created, in compiler output order (those it superseded itself included)."""

    subject_id: str
    memories_created: int
    memories: list[MemoryRecord]


class Timeline(msgspec.Struct, frozen=True):
    """One window of a subject's episodes and one of its memories (every status), each ascending (§5.9)."""

    subject_id: str
    episodes: list  # list[Episode]
    episodes_total: int
    memories: list[MemoryRecord]
    memories_total: int
