"""The curated MCP tools: what an agent does with Stigmer, each a thin call of the SDK.

Each tool is an async method taking typed, described parameters (the SDK turns them into the tool's JSON
schema and checks the arguments against it) and the MCP `Context` (which says whose credential to use).
Answers are the server's JSON (the SDK's models as plain data). A server error becomes an MCP tool error
whose text is the server's code, message and details: never a traceback, never a secret.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated, Any, AsyncIterator, Callable, Literal

import msgspec
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field

from ...client import StigmerError
from .link import Link

log = logging.getLogger("stigmer.mcp")

Links = Callable[[Context], contextlib.AbstractAsyncContextManager[Link]]
MAX_WAIT = 60.0  # the server's longest long-poll

Namespace = Annotated[str, Field(description="Namespace of the key (like a table or bucket name), e.g. `app`.")]
Key = Annotated[str, Field(description="The key within the namespace; `/` separates segments, e.g. `agents/7/status`.")]
Json = Annotated[Any, Field(description="Any JSON value.")]
ExpectedVersion = Annotated[int | None, Field(
    ge=0, description="Apply only if the key is at this version (optimistic concurrency: read, change, write back "
    "with the version you read). 0 means the key must be absent. Omit to write unconditionally.")]
Ttl = Annotated[float | None, Field(gt=0, description="Expire the key this many seconds from now.")]
Fence = Annotated[str | None, Field(description="`resource:token` of a lease you hold (the `fence` of "
                                    "lease_acquire): the write applies only while that lease is still the newest.")]
Resource = Annotated[str, Field(description="Name of the leased resource, e.g. `jobs/42`.")]
FencingToken = Annotated[int, Field(ge=1, description="The lease's fencing_token, as lease_acquire returned it.")]


class TxnCompare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str
    key: str
    version: int | None = Field(None, ge=0, description="The key must be at this version (0: absent).")
    exists: bool | None = Field(None, description="The key must (true) or must not (false) exist.")
    value: Any = Field(None, description="The key's value must equal this JSON (give it to compare).")


class TxnOp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["put", "delete", "incr", "merge", "append", "patch"]
    namespace: str
    key: str
    value: Any = Field(None, description="put: the value; merge: an object; append: the item.")
    amount: int | float | None = Field(None, description="incr: how much to add (default 1).")
    field: str | None = Field(None, description="incr: the object member holding the number.")
    deep: bool | None = Field(None, description="merge: merge nested objects too; null deletes a member.")
    max: int | None = Field(None, ge=1, description="append: keep only the newest N items.")
    patch: list[dict[str, Any]] | None = Field(None, description="patch: RFC 6902 JSON Patch operations.")
    ttl: float | None = Field(None, gt=0, description="Expire the key this many seconds from now.")
    version: int | None = Field(None, ge=0, description="Apply only over this version (0: absent).")


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    model: str | None = Field(None, description="The model that wrote it (at most 100 characters).")
    token_count: int | None = Field(None, ge=0)


def plain(obj: Any) -> Any:
    """An SDK model (or a list of them) as JSON data."""
    return msgspec.to_builtins(obj)


def _given(model: BaseModel) -> dict[str, Any]:
    """The members the caller gave (a `value: null` given is kept: null is a value)."""
    return model.model_dump(exclude_unset=True)


def error_text(exc: StigmerError) -> str:
    text = f"{exc.code}: {exc.message}"
    if exc.details:
        text += " " + msgspec.json.encode(exc.details).decode()
    return text


class ToolBase:
    """Tools over `links`: for each call, the `Link` that carries its caller's credential."""

    def __init__(self, links: Links):
        self.links = links

    @contextlib.asynccontextmanager
    async def link(self, ctx: Context) -> AsyncIterator[Link]:
        async with self.links(ctx) as link:
            try:
                yield link
            except StigmerError as exc:
                raise ToolError(error_text(exc)) from None
            except ToolError:
                raise
            except Exception:  # a bug of ours: logged here, never shown to the caller
                log.exception("MCP tool failed")
                raise ToolError("internal error: the tool failed (the server log has the details)") from None


class Tools(ToolBase):
    """Keys, watch, transactions, leases, claims and conversations."""

    # ---- keys -----------------------------------------------------------------------------------

    async def kv_get(self, namespace: Namespace, key: Key, ctx: Context) -> dict[str, Any]:
        """Read one key: its JSON value, its version (for expected_version), its revisions and expiry.
        Fails with not_found when the key is absent or expired."""
        async with self.link(ctx) as s:
            return plain(await s.client.get(namespace, key))

    async def kv_put(self, namespace: Namespace, key: Key, value: Json, ctx: Context,
                     expected_version: ExpectedVersion = None, ttl: Ttl = None, fence: Fence = None
                     ) -> dict[str, Any]:
        """Write a JSON value at a key (create or replace). With expected_version the write applies only over
        that version, else it fails with version_conflict and the current version: read again and retry."""
        async with self.link(ctx) as s:
            if expected_version == 0:
                e = await s.client.put(namespace, key, value, ttl=ttl, create_only=True, fence=fence)
            else:
                e = await s.client.put(namespace, key, value, ttl=ttl, if_version=expected_version, fence=fence)
            return plain(e)

    async def kv_incr(self, namespace: Namespace, key: Key, ctx: Context,
                      amount: Annotated[int | float, Field(description="How much to add (negative subtracts).")] = 1,
                      field: Annotated[str | None, Field(description="Add to this member of an object value "
                                                                      "instead of the value itself.")] = None,
                      expected_version: ExpectedVersion = None, ttl: Ttl = None, fence: Fence = None
                      ) -> dict[str, Any]:
        """Atomically add to a number (an absent key counts as 0): a shared counter without lost updates."""
        async with self.link(ctx) as s:
            return plain(await s.client.incr(namespace, key, amount, field=field, ttl=ttl,
                                             if_version=expected_version, fence=fence))

    async def kv_merge(self, namespace: Namespace, key: Key,
                       value: Annotated[dict[str, Any], Field(description="The members to set.")], ctx: Context,
                       deep: Annotated[bool, Field(description="Merge nested objects too; a null member "
                                                               "deletes that member.")] = False,
                       expected_version: ExpectedVersion = None, ttl: Ttl = None, fence: Fence = None
                       ) -> dict[str, Any]:
        """Atomically merge members into an object value (an absent key starts as {}), leaving the others."""
        async with self.link(ctx) as s:
            return plain(await s.client.merge(namespace, key, value, deep=deep, ttl=ttl,
                                              if_version=expected_version, fence=fence))

    async def kv_delete(self, namespace: Namespace, key: Key, ctx: Context,
                        expected_version: ExpectedVersion = None, fence: Fence = None) -> dict[str, Any]:
        """Delete a key (not_found when absent); with expected_version only that version."""
        async with self.link(ctx) as s:
            return plain(await s.client.delete(namespace, key, if_version=expected_version, fence=fence))

    async def kv_list(self, namespace: Namespace, ctx: Context,
                      prefix: Annotated[str | None, Field(description="Only keys starting with this.")] = None,
                      limit: Annotated[int, Field(ge=1, le=1000, description="At most this many entries.")] = 100,
                      cursor: Annotated[str | None, Field(description="next_cursor of the previous page.")] = None,
                      values: Annotated[bool, Field(description="Include the values.")] = True) -> dict[str, Any]:
        """List the live keys of a namespace in key order, a page at a time (next_cursor is null on the last)."""
        async with self.link(ctx) as s:
            return plain(await s.client.list_page(namespace, prefix=prefix, cursor=cursor, limit=limit,
                                                  values=values))

    async def watch(self, ctx: Context,
                    namespace: Annotated[str | None, Field(description="Only this namespace (omit for all).")] = None,
                    prefix: Annotated[str | None, Field(description="Only keys starting with this "
                                                                    "(needs namespace).")] = None,
                    key: Annotated[str | None, Field(description="Only this key (needs namespace).")] = None,
                    after_revision: Annotated[int | None, Field(ge=0, description=(
                        "Return the changes after this revision (a mod_revision you read, or the revision of the "
                        "previous watch answer). Omit to wait for the next change from now."))] = None,
                    timeout: Annotated[float, Field(ge=0, le=MAX_WAIT, description=(
                        "Seconds to wait when nothing has changed yet."))] = 10.0) -> dict[str, Any]:
        """Changes after a revision, in revision order: returns as soon as there are some, or empty after
        timeout. Call again with after_revision = the answer's revision to continue without gaps."""
        async with self.link(ctx) as s:
            if after_revision is None:
                after_revision = (await s.client.revision()).revision
            return plain(await s.client.poll(index=after_revision, namespace=namespace, prefix=prefix, key=key,
                                             wait=timeout))

    async def txn(self, ctx: Context,
                  ops: Annotated[list[TxnOp], Field(min_length=1, description="The writes, applied all or none.")],
                  compare: Annotated[list[TxnCompare], Field(description=(
                      "Conditions that must all hold, else nothing is written (compare_failed, details.index)."))
                  ] = [],  # noqa: B006  (pydantic copies defaults)
                  fence: Fence = None) -> dict[str, Any]:
        """A multi-key transaction: if every comparison holds, every op applies at one revision; else none."""
        async with self.link(ctx) as s:
            return plain(await s.client.txn([_given(c) for c in compare], [_given(o) for o in ops], fence=fence))

    # ---- leases ---------------------------------------------------------------------------------

    async def lease_acquire(self, resource: Resource,
                            holder: Annotated[str, Field(description="Who takes it, e.g. the agent's name.")],
                            ctx: Context,
                            ttl: Annotated[float | None, Field(gt=0, description="Seconds it lasts unless renewed "
                                                                                  "(server default 30).")] = None,
                            wait: Annotated[float | None, Field(ge=0, le=MAX_WAIT, description=(
                                "Queue up to this many seconds for it (first come, first served) instead of "
                                "failing with lease_conflict at once."))] = None) -> dict[str, Any]:
        """Take the exclusive lease of a resource. Its fence (`resource:token`) makes writes conditional on
        still holding it: pass it as `fence` to kv_put, kv_incr, kv_merge, kv_delete or txn."""
        async with self.link(ctx) as s:
            return plain(await s.client.acquire_lease(resource, holder, ttl=ttl, wait=wait or None))

    async def lease_renew(self, resource: Resource, fencing_token: FencingToken, ctx: Context,
                          ttl: Annotated[float | None, Field(gt=0, description="New duration in seconds.")] = None
                          ) -> dict[str, Any]:
        """Extend a lease you hold to now + ttl (lease_expired once it has run out)."""
        async with self.link(ctx) as s:
            return plain(await s.client.renew_lease(resource, fencing_token=fencing_token, ttl=ttl))

    async def lease_release(self, resource: Resource, fencing_token: FencingToken, ctx: Context) -> dict[str, Any]:
        """Give a lease up now, so the next holder need not wait for it to expire."""
        async with self.link(ctx) as s:
            return plain(await s.client.release_lease(resource, fencing_token=fencing_token))

    # ---- claims ---------------------------------------------------------------------------------

    async def claim_create(self, subject_type: Annotated[str, Field(description="What the claim is about, "
                                                                                 "e.g. `deploy`.")],
                           subject_id: Annotated[str, Field(description="Which one, e.g. `web-42`.")],
                           statement: Annotated[str, Field(description="The claim in words.")],
                           evidence: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=50, description=(
                               "1-50 items, each with `kind` and its members: key_value {namespace, key, "
                               "json_path (default $), expected_value}; json_value {source, data, json_path, "
                               "expected_value}; text_hash {source, data, hash (SHA-256 hex)}; state_event "
                               "{source, hash | json_path + expected_value}."))],
                           ctx: Context) -> dict[str, Any]:
        """Record a claim backed by evidence that can be checked again at any time (status pending)."""
        async with self.link(ctx) as s:
            return plain(await s.client.create_claim(subject_type, subject_id, statement, evidence))

    async def claim_get(self, claim_id: Annotated[str, Field(description="The claim's id.")],
                        ctx: Context) -> dict[str, Any]:
        """A claim with its evidence and its current status (pending, verified or failed)."""
        async with self.link(ctx) as s:
            return plain(await s.client.get_claim(claim_id))

    async def claim_verify(self, claim_id: Annotated[str, Field(description="The claim's id.")],
                           ctx: Context) -> dict[str, Any]:
        """Check every evidence item now; the run (a result per item) is kept and sets the claim's status."""
        async with self.link(ctx) as s:
            return plain(await s.client.verify_claim(claim_id))

    # ---- conversations --------------------------------------------------------------------------

    async def conversation_create(self, ctx: Context,
                                  title: Annotated[str | None, Field(description="A title.")] = None,
                                  external_id: Annotated[str | None, Field(description=(
                                      "Your own unique id for it (conflict if taken).")) ] = None,
                                  tags: Annotated[list[str], Field(description="Tags to filter by.")] = [],  # noqa: B006
                                  metadata: Annotated[dict[str, Any] | None, Field(description="Any JSON object.")
                                                      ] = None,
                                  messages: Annotated[list[NewMessage], Field(max_length=1000, description=(
                                      "Its first messages, in order."))] = []) -> dict[str, Any]:  # noqa: B006
        """Start a conversation (a transcript of messages with roles), optionally with its first messages."""
        async with self.link(ctx) as s:
            return plain(await s.client.create_conversation(
                external_id=external_id, title=title, metadata=metadata, tags=tags,
                messages=[_given(m) for m in messages]))

    async def conversation_append(self, conversation_id: Annotated[str, Field(description="The conversation's id.")],
                                  messages: Annotated[list[NewMessage], Field(min_length=1, max_length=1000)],
                                  ctx: Context) -> dict[str, Any]:
        """Append messages, in order, after those already there."""
        async with self.link(ctx) as s:
            stored = await s.client.append_messages(conversation_id, [_given(m) for m in messages])
            return {"messages": plain(stored)}

    async def conversation_get(self, conversation_id: Annotated[str, Field(description="The conversation's id.")],
                               ctx: Context,
                               last: Annotated[int | None, Field(ge=1, le=1000, description=(
                                   "Only the latest N messages (oldest first); omit for the first 1000."))] = None
                               ) -> dict[str, Any]:
        """A conversation with its messages in order."""
        async with self.link(ctx) as s:
            if last is None:
                return plain(await s.client.get_conversation(conversation_id))
            conversation = plain(await s.client.get_conversation(conversation_id, messages=False))
            page = await s.client.list_messages(conversation_id, limit=last, last=last)
            return {**conversation, "messages": plain(page.messages)}

    async def conversation_search(self, query: Annotated[str, Field(min_length=1, description=(
                                      "Words that must all occur in a message (whole words, any case)."))],
                                  ctx: Context,
                                  limit: Annotated[int, Field(ge=1, le=100)] = 20,
                                  cursor: Annotated[str | None, Field(description="next_cursor of the previous "
                                                                                   "page.")] = None
                                  ) -> dict[str, Any]:
        """Full-text search of every conversation's messages, best match first (BM25), with a highlighted
        snippet per conversation."""
        async with self.link(ctx) as s:
            page = await s.client.search_conversations(query, limit=limit, cursor=cursor)
            return {"results": plain(page.hits), "next_cursor": page.next_cursor}


READ_ONLY = frozenset({"kv_get", "kv_list", "watch", "claim_get", "conversation_get", "conversation_search"})
NAMES = ("kv_get", "kv_put", "kv_incr", "kv_merge", "kv_delete", "kv_list", "watch", "txn",
         "lease_acquire", "lease_renew", "lease_release", "claim_create", "claim_get", "claim_verify",
         "conversation_create", "conversation_append", "conversation_get", "conversation_search")
