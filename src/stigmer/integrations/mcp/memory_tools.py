"""The memory tools: Statewave episodes, compile, search and context.

The Statewave surface is plain HTTP routes of the same server with no SDK method, so the tools call them
with the link's HTTP client: the same server, the same credential (Statewave reads it from `X-API-Key`), the
same in-process transport over `/mcp`. Requests carry no `X-Tenant-ID`: a Statewave tenant is a partition
inside the key's Stigmer tenant, and the tools work in the key's tenant as a whole.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from .tools import ToolBase

Subject = Annotated[str, Field(min_length=1, max_length=256, description=(
    "Whom the memory is about: a user, a customer, an agent (any id of yours), e.g. `user-42`."))]


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class MemoryTools(ToolBase):
    async def memory_add_episode(self, subject_id: Subject,
                                 payload: Annotated[dict[str, Any], Field(description=(
                                     "What happened, as JSON: e.g. {\"messages\": [{\"role\": \"user\", "
                                     "\"content\": \"I moved to Lisbon\"}]} or {\"text\": \"...\"}."))],
                                 ctx: Context,
                                 source: Annotated[str, Field(min_length=1, max_length=256,
                                                              description="Where it came from.")] = "mcp",
                                 type: Annotated[str, Field(min_length=1, max_length=128,  # noqa: A002 (the wire name)
                                                            description="What kind of episode.")] = "conversation",
                                 metadata: Annotated[dict[str, Any] | None, Field(description="Any JSON object.")
                                                     ] = None,
                                 session_id: Annotated[str | None, Field(max_length=256, description=(
                                     "The conversation or session it belongs to."))] = None) -> dict[str, Any]:
        """Record an episode (an immutable event: a conversation turn, an action, an observation) about a
        subject. memory_compile turns a subject's new episodes into memories."""
        async with self.link(ctx) as s:
            return await s.post_json("/v1/episodes", _without_none({
                "subject_id": subject_id, "source": source, "type": type, "payload": payload,
                "metadata": metadata, "session_id": session_id}))

    async def memory_compile(self, subject_id: Subject, ctx: Context) -> dict[str, Any]:
        """Compile the subject's episodes not compiled yet into memories (facts, summaries), superseding
        the facts they contradict; returns the memories made."""
        async with self.link(ctx) as s:
            return await s.post_json("/v1/memories/compile", {"subject_id": subject_id})

    async def memory_search(self, subject_id: Subject, ctx: Context,
                            query: Annotated[str | None, Field(description=(
                                "Words to rank by; omit for the newest first."))] = None,
                            kind: Annotated[str | None, Field(description=(
                                "Only this kind, e.g. `profile_fact`, `episode_summary`, `procedure`."))] = None,
                            limit: Annotated[int, Field(ge=1, le=100)] = 20) -> dict[str, Any]:
        """The subject's active memories (superseded ones left out), best match first."""
        params = _without_none({"subject_id": subject_id, "q": query, "kind": kind, "limit": limit})
        async with self.link(ctx) as s:
            return await s.get_json("/v1/memories/search", params)

    async def memory_context(self, subject_id: Subject,
                             task: Annotated[str, Field(min_length=1, max_length=4000, description=(
                                 "What the agent is about to do: ranks what goes in."))],
                             ctx: Context,
                             max_tokens: Annotated[int | None, Field(ge=1, le=128000, description=(
                                 "Token budget of the assembled context."))] = None,
                             session_id: Annotated[str | None, Field(max_length=256, description=(
                                 "The current session, whose episodes come first."))] = None) -> dict[str, Any]:
        """A ready-to-use context for a task: the subject's relevant facts, procedures and recent episodes,
        assembled as text (assembled_context) within a token budget, with their ids."""
        async with self.link(ctx) as s:
            return await s.post_json("/v1/context", _without_none({
                "subject_id": subject_id, "task": task, "max_tokens": max_tokens, "session_id": session_id}))


NAMES = ("memory_add_episode", "memory_compile", "memory_search", "memory_context")
READ_ONLY = frozenset({"memory_search", "memory_context"})
