"""The MCP server: every curated tool of `tools.py` on one `MCPServer` (the `mcp` SDK 2.x high-level server).

`links` says, for each call, which `Link` (SDK client and credential) the tool acts through: one fixed link
for stdio, the caller's own for each request over `/mcp`.
"""

from __future__ import annotations

import logging

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from ... import __version__
from . import memory_tools, session_tools, tools

NAMES = tools.NAMES + memory_tools.NAMES + session_tools.NAMES
READ_ONLY = tools.READ_ONLY | memory_tools.READ_ONLY | session_tools.READ_ONLY


class AllTools(tools.Tools, memory_tools.MemoryTools, session_tools.SessionTools):
    """Every tool, over one `links`."""


INSTRUCTIONS = (
    "Stigmer is shared state, coordination and memory for a fleet of agents. Keys hold JSON values with a "
    "version each: read with kv_get, write back with kv_put and expected_version to avoid lost updates, or use "
    "the atomic kv_incr / kv_merge / txn. watch returns the changes after a revision. Leases give one agent at a "
    "time a resource; their fence makes writes conditional on still holding it. Claims record statements with "
    "checkable evidence; conversations keep transcripts you can search. Memory: record episodes about a subject, "
    "compile them into memories, then search them or ask for a context assembled for a task. Semantic sessions: "
    "session_run gives each turn the context retrieved by meaning from what the session stored.")


def build_server(links: tools.Links) -> MCPServer:
    # MCPServer calls logging.basicConfig: a handler on the root logger for that moment makes it a no-op,
    # so the process keeps the logging it was given (the server's; stderr for `stigmer mcp`).
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    try:
        server = MCPServer("stigmer", title="Stigmer", version=__version__, instructions=INSTRUCTIONS,
                           log_level="WARNING")
    finally:
        if guard is not None:
            root.removeHandler(guard)
    every = AllTools(links)
    for name in NAMES:
        server.add_tool(getattr(every, name), name=name,
                        annotations=ToolAnnotations(read_only_hint=name in READ_ONLY, open_world_hint=False))
    return server
