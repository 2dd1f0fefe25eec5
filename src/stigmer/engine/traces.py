"""Traces: conversations whose messages are observations (AgentState §5.9; D13, D24).

Rules:
- ingest creates one conversation with 1-100 observations (messages that each have an observation_type)
  in one mutation, through the conversation engine (`draft`, `create_in`): the same validation, counters
  and `_conversations` mirror, and Conflict when the external_id is taken;
- a parent_message_id `$N` (N in decimal without leading zeros, from 1 to the batch's size) becomes the
  id generated for the batch's N-th observation; any other value (`$0`, `$01`, `$101` of a smaller batch,
  an id) is stored verbatim;
- the traces list holds the conversations with at least one message of an observation_type, ordered
  and paged as conversations are, by (updated_at, id);
- a trace read is any conversation of the tenant (§5.9 reads a conversation's messages and filters only
  the list), with all its messages as a tree: a message whose parent_message_id names another message
  of the same conversation is its child (children in message order); the others are roots, sorted by
  start_time (created_at when null) ascending, ties in message order. A cycle of parents (possible
  through `$N` or appended messages) is broken at its first message in message order, which becomes a
  root: every message is in the tree exactly once.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..store.base import Store
from .conversations import Conversation, Conversations, Cursor, Message, MessageInput, create_in, draft
from .errors import InvalidArgument, NotFound

MAX_OBSERVATIONS = 100
_BATCH_REF = re.compile(r"\$([1-9][0-9]*)")


class Observation(msgspec.Struct):
    """A message of a trace and its children, in message order."""

    message: Message
    children: list["Observation"] = msgspec.field(default_factory=list)


class Trace(msgspec.Struct, frozen=True):
    conversation: Conversation  # without messages: they are in `observations`
    observations: list[Observation]  # the roots


def _observations(items: Any) -> list[MessageInput]:
    if not isinstance(items, list):
        raise InvalidArgument("observations must be an array", field="observations")
    if not 1 <= len(items) <= MAX_OBSERVATIONS:
        raise InvalidArgument(f"observations must hold 1 to {MAX_OBSERVATIONS} elements", field="observations")
    for i, item in enumerate(items):
        if isinstance(item, MessageInput) and item.observation_type is None:
            raise InvalidArgument(f"observations[{i}].observation_type is required",
                                  field=f"observations[{i}].observation_type")
    return items


def _resolve(messages: list[Message]) -> list[Message]:
    """The batch with each `$N` parent replaced by the N-th message's id."""
    out = []
    for m in messages:
        ref = _BATCH_REF.fullmatch(m.parent_message_id or "")
        if ref is not None and int(ref.group(1)) <= len(messages):
            m = msgspec.structs.replace(m, parent_message_id=messages[int(ref.group(1)) - 1].id)
        out.append(m)
    return out


def tree(messages: list[Message]) -> list[Observation]:
    """The roots of the tree of `messages` (given in message order); iterative, so any depth works."""
    index = {m.id: i for i, m in enumerate(messages)}
    parent = [index.get(m.parent_message_id) if m.parent_message_id is not None else None for m in messages]
    state = [0] * len(messages)  # 0 unseen, 1 on the walk in progress, 2 settled
    for i in range(len(messages)):
        walk, j = [], i
        while j is not None and state[j] == 0:
            state[j] = 1
            walk.append(j)
            j = parent[j]
        if j is not None and state[j] == 1:  # the walk came back to itself: a cycle (a self-parent too)
            parent[min(walk[walk.index(j):])] = None
        for k in walk:
            state[k] = 2
    nodes = [Observation(m) for m in messages]
    roots = []
    for i, p in enumerate(parent):
        (roots if p is None else nodes[p].children).append(nodes[i])
    roots.sort(key=lambda o: o.message.start_time if o.message.start_time is not None else o.message.created_at)
    return roots


class Traces:
    """Trace operations, over the conversation engine."""

    def __init__(self, store: Store, conversations: Conversations):
        self.store = store
        self.conversations = conversations

    async def ingest(self, tenant: str, *, external_id: str | None = None, title: str | None = None,
                     metadata: Any = None, observations: list[MessageInput]) -> Conversation:
        """A new conversation holding the observations (with `$N` parents resolved), atomically;
        Conflict if `external_id` is taken."""
        c = draft(tenant, external_id=external_id, title=title, metadata=metadata,
                  messages=_observations(observations))
        c = msgspec.structs.replace(c, messages=_resolve(c.messages))
        return await self.store.submit(tenant, lambda tx: create_in(tx, c))

    async def list(self, tenant: str, *, limit: int = 50, cursor: Cursor | None = None,
                   order: str = "desc") -> tuple[list[Conversation], Cursor | None]:
        """Conversations with at least one observation, as `Conversations.list` pages them."""
        return await self.conversations.list(tenant, limit=limit, cursor=cursor, order=order, observed=True)

    async def get(self, tenant: str, conversation_id: str) -> Trace:
        """The conversation and the tree of all its messages; NotFound if there is no such conversation."""
        c = await self.conversations.get(tenant, conversation_id, max_messages=None)
        if c is None:
            raise NotFound("Trace not found", conversation_id=conversation_id)
        return Trace(msgspec.structs.replace(c, messages=[]), tree(c.messages))
