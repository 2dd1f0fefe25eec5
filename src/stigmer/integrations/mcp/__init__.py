"""Stigmer as an MCP server (`pip install 'stigmer[mcp]'`, the official `mcp` SDK 2.x).

`tools.py` holds the curated tools, `server.py` builds the `MCPServer` over an SDK client, `stdio.py` runs it
for `stigmer mcp` (desktop clients), and `api/mcp.py` mounts it over streamable HTTP at `/mcp` of the server
(docs/integrations.md). Importing this package needs no `mcp`; its modules do.
"""
