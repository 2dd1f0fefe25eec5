"""What the console shows of semantic sessions (docs/semantic-sessions.md, "Listing sessions"): a page of a
tenant's sessions, newest first, and one session's drift over its stored turns.

A session keeps the signals of its last HISTORY_KEEP stored turns (model.py); turn i's drift is
(1 − similarity_i)/2, similarity_i being the cosine of the turn's chunk with the session vector before it,
the scale of /v1/run's `drift_score`. The turn numbers are the session's own (`n` counts every stored turn),
so a series that lost its oldest points to the cap still numbers them right.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .model import SessionRow, SessionState
from .work import current_phase, state_of

if TYPE_CHECKING:
    from ...store.base import Store

@dataclasses.dataclass(frozen=True)
class Summary:
    session_id: str
    kind: str
    created_at: float
    turns: int  # stored turns (`n`)
    memories: int  # live memories
    phase: str
    drift: float | None  # the last stored turn's drift; None before the first


@dataclasses.dataclass(frozen=True)
class DriftPoint:
    turn: int
    drift: float
    similarity: float
    phase: str


@dataclasses.dataclass(frozen=True)
class Detail:
    summary: Summary
    series: list[DriftPoint]


def drift_of(similarity: float) -> float:
    return (1.0 - similarity) / 2.0


def summary_of(row: SessionRow, st: SessionState) -> Summary:
    last = drift_of(st.similarity_history[-1]) if st.similarity_history else None
    return Summary(row.session_id, row.kind, row.created_at, st.n, st.live_memories, current_phase(st), last)


def series_of(st: SessionState) -> list[DriftPoint]:
    first = st.n - len(st.similarity_history) + 1
    return [DriftPoint(first + i, drift_of(sim), sim, phase)
            for i, (sim, phase) in enumerate(zip(st.similarity_history, st.phase_history))]


async def page(store: "Store", tenant: str, kind: str, limit: int,
               before: tuple[float, str] | None) -> tuple[list[Summary], tuple[float, str] | None]:
    """Up to `limit` summaries newest first, and the (created_at, id) the next page starts before (None: last)."""
    rows = await store.sessions.page(tenant, kind, limit + 1, before)
    more = len(rows) > limit
    rows = rows[:limit]
    shown = [summary_of(r, state_of(r)) for r in rows]
    return shown, (rows[-1].created_at, rows[-1].session_id) if more else None


async def detail(store: "Store", tenant: str, session_id: str) -> Detail | None:
    row = await store.sessions.get(tenant, session_id)
    if row is None:
        return None
    st = state_of(row)
    return Detail(summary_of(row, st), series_of(st))
