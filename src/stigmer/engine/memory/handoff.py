"""The handoff brief (Statewave §6.9): what a human agent taking over a support session needs, as fields
and as markdown notes cut to a token budget (§6.7: cl100k_base tokens, the first `n` decoded).

`assemble` is pure: it takes what one snapshot read (facts newest first, the episode window ascending, the
resolutions most recently updated first), the health already scored and the SLA, and builds the brief."""

from __future__ import annotations

import msgspec

from ...support import tokencount
from .compiler import text
from .episodes import Episode
from .health import Factor, Health
from .memories import MemoryRecord
from .resolutions import RESOLVED, Resolution
from .sla import SLA

FACTS, EPISODES, RESOLUTIONS = 20, 30, 20
DEFAULT_BUDGET = 4000  # independent of the context budget setting (§6.9)
STEP_SOURCES = frozenset({"agent", "system", "tool"})
STEP_TYPES = frozenset({"action", "tool_call", "resolution_attempt"})
ICONS = {"healthy": "🟢", "watch": "🟡", "at_risk": "🔴"}


class ResolutionLine(msgspec.Struct, frozen=True):
    session_id: str
    status: str
    summary: str | None
    resolved_at: int | None


class HandoffProvenance(msgspec.Struct, frozen=True):
    fact_ids: list[str]
    episode_ids: list[str]
    resolution_ids: list[str]
    context_episode_ids: list[str]


class Handoff(msgspec.Struct, frozen=True):
    subject_id: str
    session_id: str
    reason: str
    generated_at: int
    customer_summary: str
    active_issue: str
    attempted_steps: list[str]
    key_facts: list[str]
    resolution_history: list[ResolutionLine]
    recent_context: list[str]
    health_score: int
    health_state: str
    health_factors: list[Factor]
    handoff_notes: str
    token_estimate: int
    provenance: HandoffProvenance


def _tried(e: Episode) -> bool:
    return (e.source in STEP_SOURCES or e.type in STEP_TYPES
            or (e.type == "message" and e.source == "assistant"))


def _sla_lines(s: SLA) -> list[str]:
    if s.total_sessions == 0:
        return []
    lines = []
    if s.first_response_breach_count:
        lines.append(f"⚠️ First-response SLA breached in {s.first_response_breach_count} session(s)")
    if s.resolution_breach_count:
        lines.append(f"⚠️ Resolution SLA breached in {s.resolution_breach_count} session(s)")
    if s.open_sessions:
        oldest = max((x.open_duration_seconds or 0 for x in s.sessions if x.status == "open"), default=0)
        lines.append(f"Open issue age: {oldest / 3600:.1f}h")
    if s.avg_first_response_seconds is not None:
        lines.append(f"Avg first response: {s.avg_first_response_seconds / 60:.1f} min")
    return lines


def notes(subject_id: str, session_id: str, reason: str, customer_summary: str, health: Health, sla_lines: list[str],
          active_issue: str, steps: list[str], resolutions: list[Resolution], facts: list[str],
          context: list[str]) -> str:
    """The untruncated `handoff_notes` (§6.9's nine blocks, in order)."""
    parts = [f"# Handoff Brief — {subject_id}", f"Reason: {reason}", f"Session: {session_id}", "",
             f"## Customer\n{customer_summary}", ""]
    line = f"## Customer Health\n{ICONS[health.state]} Health: {health.state.upper()} (score: {health.score})"
    if health.factors:
        line += " — " + "; ".join(f.detail for f in health.factors[:3])
    parts += [line, ""]
    if sla_lines:
        parts += ["## SLA Status", *(f"- {x}" for x in sla_lines), ""]
    if active_issue:
        parts += [f"## Active Issue\n{active_issue}", ""]
    if steps:
        parts += ["## What Has Been Tried", *(f"- {s}" for s in steps[:5]), ""]
    if resolutions:
        still_open = [r for r in resolutions if r.status != RESOLVED]
        resolved = [r for r in resolutions if r.status == RESOLVED][:3]
        if still_open:
            parts += ["## Open Issues", *(f"- [{r.session_id}] {r.resolution_summary or 'No summary'}"
                                           for r in still_open)]
        if resolved:
            parts += ["## Previously Resolved", *(f"- [{r.session_id}] {r.resolution_summary or 'Resolved'}"
                                                  for r in resolved)]
        parts.append("")
    if facts:
        parts += ["## Key Facts", *(f"- {f}" for f in facts[:8]), ""]
    if context:
        parts += ["## Recent Context (other sessions)", *(f"- {x}" for x in context), ""]
    return "\n".join(parts)


def assemble(subject_id: str, session_id: str, reason: str, max_tokens: int | None, facts: list[MemoryRecord],
             episodes: list[Episode], resolutions: list[Resolution], health: Health, sla: SLA, now: int,
             counter=tokencount) -> Handoff:
    facts, episodes, resolutions = facts[:FACTS], episodes[-EPISODES:], resolutions[:RESOLUTIONS]
    cur = [e for e in episodes if e.session_id == session_id]
    other = [e for e in episodes if e.session_id != session_id]
    texts = {e.id: text(e.payload) for e in episodes}
    issue_lines = [f"[{e.source}/{e.type}] " + texts[e.id][:200] for e in cur[:10] if texts[e.id]]
    active_issue = ""
    if issue_lines:
        n = len(issue_lines)
        active_issue = issue_lines[0] + (f" (+ {n - 1} more messages in session)" if n > 1 else "")
    steps = [texts[e.id][:150] for e in cur if texts[e.id] and _tried(e)][:5]
    contents = [f.content for f in facts]
    customer = f"Subject: {subject_id}" if not contents else f"{subject_id} — " + "; ".join(contents[:3])
    context = [f"[{e.source}/{e.type}]" + (f" [{e.session_id}]" if e.session_id is not None else "")
               + " " + texts[e.id][:120] for e in other[:5] if texts[e.id]]
    full = notes(subject_id, session_id, reason, customer, health, _sla_lines(sla), active_issue, steps,
                 resolutions, contents, context)
    budget = max_tokens or DEFAULT_BUDGET
    size = counter.count(full)
    cut = counter.first(full, budget) if size > budget else full
    return Handoff(subject_id, session_id, reason, now, customer, active_issue, steps, contents[:8],
                   [ResolutionLine(r.session_id, r.status, r.resolution_summary, r.resolved_at) for r in resolutions],
                   context, health.score, health.state, health.factors[:3], cut, min(size, budget),
                   HandoffProvenance([f.id for f in facts], [e.id for e in cur[:10]], [r.id for r in resolutions],
                                     [e.id for e in other[:5]]))
