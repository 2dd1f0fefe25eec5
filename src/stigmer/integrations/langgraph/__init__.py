"""LangGraph over Stigmer (`pip install 'stigmer[langgraph]'`): `StigmerSaver`, a checkpointer with a sync
and an async face, and `StigmerStore`, a long-term memory `BaseStore`. Both talk to the server only
through the SDK (docs/integrations.md)."""

from .checkpoint import StigmerSaver
from .store import StigmerStore

__all__ = ["StigmerSaver", "StigmerStore"]
