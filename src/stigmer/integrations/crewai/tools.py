"""CrewAI tools over the SDK: read a key, write it under an expected version, acquire and release a lease,
search a subject's memories. Each answers the agent with JSON text; a refusal from the server (absent key,
version conflict, lease held, missing scope, …) is an answer too, `{"error": {"code", "message"}}`, so the
agent can act on it instead of the crew failing."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from stigmer.client import Client, Entry, Lease, StigmerError


def _answer(call: Callable[[], Any]) -> str:
    try:
        return json.dumps(call(), default=str)
    except StigmerError as exc:
        return json.dumps({"error": {"code": exc.code or type(exc).__name__, "message": str(exc)}})


def _entry(e: Entry) -> dict[str, Any]:
    return {"key": e.key, "value": e.value, "version": e.version}


def _lease(lease: Lease) -> dict[str, Any]:
    return {"resource": lease.resource, "lease_id": lease.lease_id, "holder": lease.holder,
            "fencing_token": lease.fencing_token, "fence": lease.fence, "active": lease.active,
            "expires_at": lease.expires_at.isoformat()}


class _StigmerTool(BaseTool):
    """A tool bound to a caller-owned `Client` and one namespace (pass `api_key=` to the client when keys are
    in force: the key's scopes and prefixes bound what the agent may do)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    client: Client = Field(exclude=True)
    namespace: str = "crewai"

    async def _arun(self, **kwargs: Any) -> str:
        return await asyncio.to_thread(self._run, **kwargs)


class ReadArgs(BaseModel):
    key: str = Field(description="The key to read.")


class StigmerReadTool(_StigmerTool):
    name: str = "stigmer_read"
    description: str = ("Read a shared key. Answers {key, value, version}; pass the version to stigmer_write as "
                        "expected_version to change the key only if nobody changed it since.")
    args_schema: type[BaseModel] = ReadArgs

    def _run(self, key: str) -> str:
        return _answer(lambda: _entry(self.client.get(self.namespace, key)))


class WriteArgs(BaseModel):
    key: str = Field(description="The key to write.")
    value: Any = Field(description="The new value (any JSON).")
    expected_version: int | None = Field(None, description="Write only over this version (0: only if absent).")
    fence: str | None = Field(None, description="A lease's fence from stigmer_lease_acquire: write only while "
                                                "that lease is held.")


class StigmerWriteTool(_StigmerTool):
    name: str = "stigmer_write"
    description: str = ("Write a shared key. With expected_version the write happens only over that version "
                        "(0: only if the key is absent), else the answer is a version_conflict error. Answers "
                        "{key, value, version}.")
    args_schema: type[BaseModel] = WriteArgs

    def _run(self, key: str, value: Any, expected_version: int | None = None, fence: str | None = None) -> str:
        return _answer(lambda: _entry(self.client.put(
            self.namespace, key, value, if_version=expected_version or None, create_only=expected_version == 0,
            fence=fence)))


class LeaseAcquireArgs(BaseModel):
    resource: str = Field(description="The resource to lease.")
    holder: str = Field(description="Who holds it (the agent's name).")
    ttl: float | None = Field(None, description="Seconds until the lease expires unless renewed.")


class StigmerLeaseAcquireTool(_StigmerTool):
    name: str = "stigmer_lease_acquire"
    description: str = ("Acquire an exclusive lease on a resource. Answers {lease_id, fence, fencing_token, "
                        "expires_at, …}, or a lease_conflict error while another holder has it.")
    args_schema: type[BaseModel] = LeaseAcquireArgs

    def _run(self, resource: str, holder: str, ttl: float | None = None) -> str:
        return _answer(lambda: _lease(self.client.acquire_lease(resource, holder, ttl=ttl)))


class LeaseReleaseArgs(BaseModel):
    resource: str = Field(description="The leased resource.")
    lease_id: str = Field(description="The lease_id stigmer_lease_acquire answered.")


class StigmerLeaseReleaseTool(_StigmerTool):
    name: str = "stigmer_lease_release"
    description: str = "Release a lease acquired with stigmer_lease_acquire. Answers the lease, now inactive."
    args_schema: type[BaseModel] = LeaseReleaseArgs

    def _run(self, resource: str, lease_id: str) -> str:
        return _answer(lambda: _lease(self.client.release_lease(resource, lease_id)))


class MemorySearchArgs(BaseModel):
    query: str = Field(description="What to look for in the subject's memories (words; empty: the newest).")
    subject_id: str | None = Field(None, description="Whose memories (default: the tool's subject).")
    limit: int = Field(5, ge=1, le=100, description="At most this many memories.")


class StigmerMemorySearchTool(_StigmerTool):
    """Searches the memory runtime's compiled memories (GET /v1/memories/search, docs/memory.md)."""

    name: str = "stigmer_memory_search"
    description: str = ("Search what is remembered about a subject (a user, a customer, …). Answers a list of "
                        "{kind, content, confidence, created_at}, best match first.")
    args_schema: type[BaseModel] = MemorySearchArgs
    subject_id: str | None = None
    tenant_id: str | None = None  # the Statewave tenant (X-Tenant-ID) inside the key's own tenant

    def _run(self, query: str, subject_id: str | None = None, limit: int = 5) -> str:
        subject = subject_id or self.subject_id
        if not subject:
            return json.dumps({"error": {"code": "invalid_argument", "message": "subject_id is required"}})
        return _answer(lambda: [
            {"kind": m.kind, "content": m.content, "confidence": m.confidence, "created_at": m.created_at}
            for m in self.client.search_memories(subject, q=query or None, limit=limit, tenant_id=self.tenant_id)])


def stigmer_tools(client: Client, *, namespace: str = "crewai", subject_id: str | None = None,
                  tenant_id: str | None = None) -> list[BaseTool]:
    """The five tools on one client and namespace, to give to an `Agent(tools=...)`."""
    return [StigmerReadTool(client=client, namespace=namespace), StigmerWriteTool(client=client, namespace=namespace),
            StigmerLeaseAcquireTool(client=client, namespace=namespace),
            StigmerLeaseReleaseTool(client=client, namespace=namespace),
            StigmerMemorySearchTool(client=client, namespace=namespace, subject_id=subject_id, tenant_id=tenant_id)]
