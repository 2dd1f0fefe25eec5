"""CrewAI over Stigmer (crewai 1.15.30): tools for agents (read, write with an expected version, lease
acquire/release, memory search) and `StigmerMemoryStorage`, the storage backend of CrewAI's unified `Memory`.
Both talk to the server only through the SDK (docs/integrations.md)."""

from .storage import StigmerMemoryStorage
from .tools import (
    StigmerLeaseAcquireTool, StigmerLeaseReleaseTool, StigmerMemorySearchTool, StigmerReadTool, StigmerWriteTool,
    stigmer_tools,
)

__all__ = ["StigmerMemoryStorage", "StigmerReadTool", "StigmerWriteTool", "StigmerLeaseAcquireTool",
           "StigmerLeaseReleaseTool", "StigmerMemorySearchTool", "stigmer_tools"]
