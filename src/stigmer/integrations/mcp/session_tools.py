"""The semantic session tools: semvec's run and store (specs/semvec.md §5.2, §5.3).

Plain HTTP routes of the same server with no SDK method, called like the memory tools: the link's HTTP
client, the same credential (semvec reads the bearer), the same transport; semvec's `{"detail": ...}` errors
become tool errors with that message.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from .memory_tools import _without_none
from .tools import ToolBase

SessionId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                                 description="The semantic session's id (session_run returns it).")]


class SessionTools(ToolBase):
    async def session_run(self, message: Annotated[str, Field(min_length=1, max_length=65536, description=(
                              "The user's message of this turn."))],
                          ctx: Context,
                          session_id: Annotated[str | None, Field(max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                                                                  description="The session; omit to start one.")
                                                ] = None,
                          response: Annotated[str | None, Field(max_length=65536, description=(
                              "Your previous answer, stored with the previous message before this turn."))] = None,
                          reset_context: Annotated[bool, Field(description="Start the session afresh.")] = False,
                          user_id: Annotated[str | None, Field(max_length=128)] = None) -> dict[str, Any]:
        """One turn of a semantic session: the context relevant to the message (retrieved by meaning from
        what the session stored), and whether the conversation drifted."""
        async with self.link(ctx) as s:
            return await s.post_json("/v1/run", _without_none({
                "message": message, "session_id": session_id, "response": response,
                "reset_context": reset_context or None, "user_id": user_id}))

    async def session_store(self, session_id: SessionId,
                            response: Annotated[str, Field(min_length=1, max_length=65536, description=(
                                "The answer to store (with the session's pending message)."))],
                            ctx: Context,
                            user_id: Annotated[str | None, Field(max_length=128)] = None) -> dict[str, Any]:
        """Store an answer in a semantic session's memory without running a turn."""
        async with self.link(ctx) as s:
            return await s.post_json("/v1/store", _without_none({"session_id": session_id, "response": response,
                                                                 "user_id": user_id}))


NAMES = ("session_run", "session_store")
READ_ONLY: frozenset[str] = frozenset()
