"""Conversations, their messages and tags (AgentState §5.5-5.7, §6.1, §6.4; D12, D13, D15, D28, D33).

Rules:
- a conversation is created atomically with all its messages (up to 1000) and its tags (up to 50) and its
  counters (D13): one mutation, so a failure leaves nothing behind;
- `external_id` is unique per tenant: a duplicate is Conflict, checked inside the mutation (which holds the
  tenant's write lock) before anything is written;
- counters: message_count = messages, token_count = Σ token_count, total_tokens = Σ (input_tokens +
  output_tokens), total_cost_microdollars = Σ cost_microdollars (absent = 0). An append adds to them in
  the same mutation as its messages; mutations of a tenant never overlap, so no increment is lost;
- messages are ordered by insertion (`position`, 0-based per conversation); all messages of one request
  share one `created_at`. Times are integer milliseconds of the store clock;
- tags are `^[A-Za-z0-9_-]{1,50}$`, kept sorted by code point and without duplicates; adding or removing
  tags does not move `updated_at`; update (title, metadata, external_id), append, pop and clear do;
- only a suffix of the messages is ever removed (the last one, or all), so positions stay 0..n-1 and the
  next append continues at message_count; the counters lose exactly the removed messages' sums;
- every conversation is also the key `_conversations/<id>` (a reserved namespace, written only here)
  holding its document without messages: put on create, update, append and each tag change, deleted with
  the conversation, so watchers and the change feed see conversation changes in revision order.
"""

from __future__ import annotations

import re
from typing import Any, AsyncIterator

import msgspec

from ..store.base import Store, WriteTxn
from . import kv, values
from .errors import Conflict, InvalidArgument, NotFound
from .ids import new_id

CONVERSATIONS = "_conversations"  # the reserved namespace that mirrors every conversation (engine/access.py)
ROLES = ("system", "user", "assistant", "tool")
OBSERVATION_TYPES = ("generation", "tool", "agent", "chain", "span", "event")
STATUSES = ("success", "error")
LEVELS = ("debug", "default", "warning", "error")
ORDERS = ("asc", "desc")
MAX_MESSAGES = 1000  # per create or append (D12)
MAX_TAGS = 50  # per request (D12)
MAX_EXTERNAL_ID = 1024
MAX_MODEL = 100
MAX_PAGE = 1000
MAX_INT = 2**53 - 1  # a message's integers: exact in every JSON client
MAX_TOTAL = 2**63 - 1  # a counter (a 64-bit column on both stores)
MAX_VALUE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
EXPORT_PAGE = 100  # conversations read per page by `export`
WINDOW = 20  # messages an AI feature reads: the first 20 for a title, the last 20 for follow-ups (§5.8)
_TAG = re.compile(r"[A-Za-z0-9_-]{1,50}")

Cursor = tuple[int, str]  # (updated_at ms, id): the last row of a page


# records


class Message(msgspec.Struct, frozen=True):
    id: str
    conversation_id: str
    role: str
    content: str
    metadata: Any = None  # a JSON object (member order as given) or None
    token_count: int = 0
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_microdollars: int | None = None
    parent_message_id: str | None = None
    observation_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    status: str | None = None
    level: str | None = None
    created_at: int = 0  # ms
    position: int = 0  # insertion order in its conversation, from 0


class Conversation(msgspec.Struct, frozen=True):
    id: str
    tenant: str
    external_id: str | None
    title: str | None
    metadata: Any  # a JSON object (member order as given) or None
    message_count: int
    token_count: int
    total_tokens: int
    total_cost_microdollars: int
    created_at: int  # ms
    updated_at: int  # ms
    tags: list[str] = []  # sorted, distinct
    messages: list[Message] = []  # only where asked for


class MessageInput(msgspec.Struct, frozen=True):
    """One message as a caller gives it (AgentState §5.5 message input)."""

    role: str
    content: str
    metadata: Any = None
    token_count: int = 0
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_microdollars: int | None = None
    parent_message_id: str | None = None
    observation_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    status: str | None = None
    level: str | None = None


UNSET: Any = msgspec.UNSET  # a member `update` leaves as it is


# validation


def _text(value: Any, field: str, lo: int = 0, hi: int | None = None) -> str:
    """A string every store can hold: valid Unicode without U+0000 (a PostgreSQL text column cannot)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if len(value) < lo:
        raise InvalidArgument(f"String must contain at least {lo} character(s)", field=field)
    if hi is not None and len(value) > hi:
        raise InvalidArgument(f"String must contain at most {hi} character(s)", field=field)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} must be valid Unicode text", field=field) from None
    if "\x00" in value:
        raise InvalidArgument(f"{field} must not contain U+0000", field=field)
    return value


def _object(value: Any, field: str) -> Any:
    """None or a JSON object; stored as its compact JSON text."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be an object", field=field)
    try:
        values.check_value(value, MAX_VALUE_BYTES, MAX_DEPTH)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{field}: {exc.message}", field=field) from None
    return value


def _count(value: Any, field: str, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise InvalidArgument(f"{field} must be an integer from 0 to {MAX_INT}", field=field)
    return value


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise InvalidArgument(f"{field} must be one of {', '.join(allowed)}", field=field)
    return value


def _message(item: Any, i: int, conversation_id: str, message_id: str) -> Message:
    """A validated message; created_at and position are set in the mutation."""
    at = f"messages[{i}]"
    if not isinstance(item, MessageInput):
        raise InvalidArgument(f"{at} must be a message", field=at)
    if item.role not in ROLES:
        raise InvalidArgument(f"{at}.role must be one of {', '.join(ROLES)}", field=f"{at}.role")
    model = _text(item.model, f"{at}.model", 0, MAX_MODEL) if item.model is not None else None
    parent = _text(item.parent_message_id, f"{at}.parent_message_id") if item.parent_message_id is not None else None
    return Message(
        message_id, conversation_id, item.role, _text(item.content, f"{at}.content", 1),
        _object(item.metadata, f"{at}.metadata"), _count(item.token_count, f"{at}.token_count", False), model,
        _count(item.input_tokens, f"{at}.input_tokens"), _count(item.output_tokens, f"{at}.output_tokens"),
        _count(item.cost_microdollars, f"{at}.cost_microdollars"), parent,
        _choice(item.observation_type, f"{at}.observation_type", OBSERVATION_TYPES),
        _count(item.start_time, f"{at}.start_time"), _count(item.end_time, f"{at}.end_time"),
        _choice(item.status, f"{at}.status", STATUSES), _choice(item.level, f"{at}.level", LEVELS))


def _messages(items: Any, conversation_id: str, lo: int) -> list[Message]:
    if not isinstance(items, list):
        raise InvalidArgument("messages must be an array", field="messages")
    if len(items) < lo:
        raise InvalidArgument(f"Array must contain at least {lo} element(s)", field="messages")
    if len(items) > MAX_MESSAGES:
        raise InvalidArgument(f"Array must contain at most {MAX_MESSAGES} element(s)", field="messages")
    return [_message(item, i, conversation_id, new_id()) for i, item in enumerate(items)]


def validate_tag(tag: Any, field: str = "tag") -> str:
    """A conversation tag, with the AgentState §5.7 messages."""
    if not isinstance(tag, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if not tag:
        raise InvalidArgument("tag cannot be empty", field=field)
    if len(tag) > 50:
        raise InvalidArgument("tag cannot exceed 50 characters", field=field)
    if not _TAG.fullmatch(tag):
        raise InvalidArgument("tag can only contain letters, numbers, hyphens, and underscores", field=field)
    return tag


def _tags(tags: Any, lo: int = 0) -> list[str]:
    if not isinstance(tags, list):
        raise InvalidArgument("tags must be an array", field="tags")
    if len(tags) < lo:
        raise InvalidArgument(f"Array must contain at least {lo} element(s)", field="tags")
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"Array must contain at most {MAX_TAGS} element(s)", field="tags")
    return sorted({validate_tag(t, f"tags[{i}]") for i, t in enumerate(tags)})


def _limit(limit: Any, hi: int = MAX_PAGE) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= hi:
        raise InvalidArgument(f"limit must be an integer from 1 to {hi}", field="limit")
    return limit


def _cursor(cursor: Any) -> Cursor | None:
    if cursor is None:
        return None
    if (not isinstance(cursor, tuple) or len(cursor) != 2 or not isinstance(cursor[0], int)
            or isinstance(cursor[0], bool) or not 0 <= cursor[0] <= 2**63 - 1 or not isinstance(cursor[1], str)):
        raise InvalidArgument("cursor must be (updated_at ms, id)", field="cursor")
    return cursor


def _ids(ids: Any, field: str = "ids") -> list[str]:
    """The distinct ids (duplicates count once) that could name a stored conversation."""
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidArgument(f"{field} must be an array of strings", field=field)
    return [i for i in dict.fromkeys(ids) if holdable(i)]


def holdable(value: Any) -> bool:
    """A non-empty string every store can hold; any other names nothing stored (unknown, not an error)."""
    if not isinstance(value, str) or not value or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _before_last(c: Conversation, n: int) -> int:
    """The position after which the last `n` messages of `c` start (-1: from the first)."""
    return max(c.message_count - n, 0) - 1


def ms(seconds: float) -> int:
    return round(seconds * 1000)


# the mutations


def document(c: Conversation) -> bytes:
    """The `_conversations/<id>` document: the conversation without its messages."""
    return values.encode({
        "id": c.id, "external_id": c.external_id, "title": c.title, "metadata": c.metadata, "tags": c.tags,
        "message_count": c.message_count, "token_count": c.token_count, "total_tokens": c.total_tokens,
        "total_cost_microdollars": c.total_cost_microdollars, "created_at": c.created_at,
        "updated_at": c.updated_at})


def _mirror(tx: WriteTxn, c: Conversation) -> None:
    current = kv.live(tx, CONVERSATIONS, c.id)
    kv.write_in(tx, kv.Op("put", CONVERSATIONS, c.id, value=document(c), ttl=None), current)


def _unmirror(tx: WriteTxn, conversation_id: str) -> None:
    current = kv.live(tx, CONVERSATIONS, conversation_id)
    if current is not None:
        kv.write_in(tx, kv.Op("delete", CONVERSATIONS, conversation_id), current)


def _sums(messages: list[Message]) -> tuple[int, int, int]:
    """(token_count, total_tokens, total_cost_microdollars) of some messages."""
    return (sum(m.token_count for m in messages),
            sum((m.input_tokens or 0) + (m.output_tokens or 0) for m in messages),
            sum(m.cost_microdollars or 0 for m in messages))


def _stamp(messages: list[Message], now: int, first: int) -> list[Message]:
    return [msgspec.structs.replace(m, created_at=now, position=first + i) for i, m in enumerate(messages)]


def _existing(tx: WriteTxn, conversation_id: str) -> Conversation:
    c = tx.conversations.get(conversation_id)
    if c is None:
        raise NotFound("Conversation not found", conversation_id=conversation_id)
    return c


def _free_external_id(tx: WriteTxn, external_id: str | None, conversation_id: str) -> None:
    if external_id is None:
        return
    holder = tx.conversations.by_external_id(external_id)
    if holder is not None and holder != conversation_id:
        raise Conflict("A conversation with this external_id already exists", external_id=external_id)


def create_in(tx: WriteTxn, conversation: Conversation) -> Conversation:
    _free_external_id(tx, conversation.external_id, conversation.id)
    now = ms(tx.now)
    messages = _stamp(conversation.messages, now, 0)
    tokens, total, cost = _sums(messages)
    c = msgspec.structs.replace(conversation, message_count=len(messages), token_count=tokens, total_tokens=total,
                                total_cost_microdollars=cost, created_at=now, updated_at=now, messages=messages)
    tx.conversations.insert(c)  # the row, its tags and its messages
    _mirror(tx, c)
    return c


def _at(tx: WriteTxn, c: Conversation) -> int:
    """Now, but never before the conversation's last change: message times and updated_at never go back,
    so insertion order is also (created_at, insertion) order."""
    return max(ms(tx.now), c.updated_at)


def append_in(tx: WriteTxn, conversation_id: str, messages: list[Message]) -> list[Message]:
    c = _existing(tx, conversation_id)
    now = _at(tx, c)
    messages = _stamp(messages, now, c.message_count)
    tokens, total, cost = _sums(messages)
    if max(c.token_count + tokens, c.total_tokens + total, c.total_cost_microdollars + cost) > MAX_TOTAL:
        raise InvalidArgument("the conversation's counters would exceed their limit", limit=MAX_TOTAL)
    tx.conversations.append(conversation_id, messages, tokens, total, cost, now)  # counters added in SQL
    _mirror(tx, msgspec.structs.replace(
        c, message_count=c.message_count + len(messages), token_count=c.token_count + tokens,
        total_tokens=c.total_tokens + total, total_cost_microdollars=c.total_cost_microdollars + cost,
        updated_at=now))
    return messages


def remove_in(tx: WriteTxn, conversation_id: str, from_position: int) -> int:
    """Remove the messages at `from_position` and after; how many went (nothing changes when none)."""
    c = _existing(tx, conversation_id)
    if from_position >= c.message_count:
        return 0
    now = _at(tx, c)
    count, tokens, total, cost = tx.conversations.remove_messages(conversation_id, from_position, now)
    _mirror(tx, msgspec.structs.replace(
        c, message_count=c.message_count - count, token_count=c.token_count - tokens,
        total_tokens=c.total_tokens - total, total_cost_microdollars=c.total_cost_microdollars - cost,
        updated_at=now))
    return count


def pop_in(tx: WriteTxn, conversation_id: str) -> Message | None:
    c = _existing(tx, conversation_id)
    last = tx.conversations.message_at(conversation_id, c.message_count - 1) if c.message_count else None
    if last is not None:
        remove_in(tx, conversation_id, last.position)
    return last


def update_in(tx: WriteTxn, conversation_id: str, changes: dict[str, Any]) -> Conversation:
    c = _existing(tx, conversation_id)
    if "external_id" in changes:
        _free_external_id(tx, changes["external_id"], conversation_id)
    c = msgspec.structs.replace(c, updated_at=_at(tx, c), **changes)
    tx.conversations.update(c)
    _mirror(tx, c)
    return c


def delete_in(tx: WriteTxn, conversation_ids: list[str]) -> int:
    """Delete those of the ids that exist (with their messages and tags); return how many."""
    deleted = 0
    for conversation_id in conversation_ids:
        if tx.conversations.delete(conversation_id):
            _unmirror(tx, conversation_id)
            deleted += 1
    return deleted


def tags_in(tx: WriteTxn, conversation_id: str, add: list[str], remove: list[str]) -> list[str]:
    c = _existing(tx, conversation_id)
    tags = sorted((set(c.tags) | set(add)) - set(remove))
    if tags != c.tags:
        tx.conversations.set_tags(conversation_id, [t for t in add if t not in c.tags],
                                  [t for t in remove if t in c.tags])
        _mirror(tx, msgspec.structs.replace(c, tags=tags))
    return tags


def draft(tenant: str, *, external_id: str | None = None, title: str | None = None, metadata: Any = None,
          tags: list[str] | None = None, messages: list[MessageInput] | None = None) -> Conversation:
    """A validated new conversation for `create_in`: its ids drawn (outside the mutation, so a rerun reuses
    them), its times and counters set there."""
    if external_id is not None:
        _text(external_id, "external_id", 0, MAX_EXTERNAL_ID)
    if title is not None:
        _text(title, "title")
    metadata = _object(metadata, "metadata")
    tag_list = _tags(tags if tags is not None else [])
    conversation_id = new_id()
    items = _messages(messages if messages is not None else [], conversation_id, 0)
    return Conversation(conversation_id, tenant, external_id, title, metadata, 0, 0, 0, 0, 0, 0, tag_list, items)


class Conversations:
    """Conversation operations over a store."""

    def __init__(self, store: Store):
        self.store = store

    # writes

    async def create(self, tenant: str, *, external_id: str | None = None, title: str | None = None,
                     metadata: Any = None, tags: list[str] | None = None,
                     messages: list[MessageInput] | None = None) -> Conversation:
        """A new conversation with all its messages, in input order; Conflict if `external_id` is taken."""
        c = draft(tenant, external_id=external_id, title=title, metadata=metadata, tags=tags, messages=messages)
        return await self.store.submit(tenant, lambda tx: create_in(tx, c))

    async def append(self, tenant: str, conversation_id: str, messages: list[MessageInput]) -> list[Message]:
        """Append 1-1000 messages (validated before the conversation is looked up)."""
        items = _messages(messages, conversation_id if isinstance(conversation_id, str) else "", 1)
        self._check_id(conversation_id)
        return await self.store.submit(tenant, lambda tx: append_in(tx, conversation_id, items))

    async def pop_message(self, tenant: str, conversation_id: str) -> Message | None:
        """Remove and return the last message (None when there is none); NotFound if unknown."""
        self._check_id(conversation_id)
        return await self.store.submit(tenant, lambda tx: pop_in(tx, conversation_id))

    async def clear_messages(self, tenant: str, conversation_id: str) -> int:
        """Remove every message (the conversation, its tags and title stay); how many went."""
        self._check_id(conversation_id)
        return await self.store.submit(tenant, lambda tx: remove_in(tx, conversation_id, 0))

    async def update(self, tenant: str, conversation_id: str, *, title: Any = UNSET, metadata: Any = UNSET,
                     external_id: Any = UNSET) -> Conversation:
        """Change only the members given (None clears one); `updated_at` moves. Without messages."""
        changes: dict[str, Any] = {}
        if title is not UNSET:
            changes["title"] = None if title is None else _text(title, "title")
        if metadata is not UNSET:
            changes["metadata"] = _object(metadata, "metadata")
        if external_id is not UNSET:
            changes["external_id"] = (None if external_id is None
                                      else _text(external_id, "external_id", 0, MAX_EXTERNAL_ID))
        self._check_id(conversation_id)
        return await self.store.submit(tenant, lambda tx: update_in(tx, conversation_id, changes))

    async def delete(self, tenant: str, conversation_id: str) -> None:
        """NotFound if there is no such conversation."""
        self._check_id(conversation_id)
        if not await self.store.submit(tenant, lambda tx: delete_in(tx, [conversation_id])):
            raise NotFound("Conversation not found", conversation_id=conversation_id)

    async def bulk_delete(self, tenant: str, ids: list[str]) -> int:
        """Delete those of `ids` the tenant has (others skipped, duplicates counted once); how many went."""
        wanted = _ids(ids)
        if not wanted:
            return 0
        return await self.store.submit(tenant, lambda tx: delete_in(tx, wanted))

    async def add_tags(self, tenant: str, conversation_id: str, tags: list[str]) -> list[str]:
        """Add 1-50 tags (existing ones ignored); all the conversation's tags, sorted."""
        wanted = _tags(tags, 1)
        self._check_id(conversation_id)
        return await self.store.submit(tenant, lambda tx: tags_in(tx, conversation_id, wanted, []))

    async def remove_tag(self, tenant: str, conversation_id: str, tag: str) -> list[str]:
        """Remove one tag (nothing happens if absent); NotFound if the conversation is unknown."""
        self._check_id(conversation_id)
        if not isinstance(tag, str):
            raise InvalidArgument("tag must be a string", field="tag")
        absent = not _TAG.fullmatch(tag)  # a tag no conversation can carry: nothing to remove
        return await self.store.submit(tenant, lambda tx: tags_in(tx, conversation_id, [], [] if absent else [tag]))

    # reads

    async def get(self, tenant: str, conversation_id: str, with_messages: bool = True,
                  max_messages: int | None = MAX_MESSAGES) -> Conversation | None:
        """The conversation with its tags and (unless not asked for) its first `max_messages` messages
        (None: all of them), or None."""
        if not self._valid_id(conversation_id):
            return None
        c = await self.store.conversations.get(tenant, conversation_id)
        if c is None or not with_messages:
            return c
        return msgspec.structs.replace(c, messages=await self._all_messages(tenant, conversation_id, max_messages))

    async def window(self, tenant: str, conversation_id: str, first: bool, size: int = WINDOW) -> Conversation | None:
        """The conversation with its first (or last) `size` messages in order, or None: what an AI feature reads."""
        c = await self.get(tenant, conversation_id, with_messages=False)
        if c is None:
            return None
        after = -1 if first else _before_last(c, size)
        rows = await self.store.conversations.messages(tenant, conversation_id, after, size)
        return msgspec.structs.replace(c, messages=rows)

    async def by_external_id(self, tenant: str, external_id: str, with_messages: bool = True) -> Conversation | None:
        """The conversation with this external id and (unless not asked for) ALL its messages, or None."""
        if not holdable(external_id):
            return None
        conversation_id = await self.store.conversations.id_by_external_id(tenant, external_id)
        if conversation_id is None:
            return None
        return await self.get(tenant, conversation_id, with_messages, max_messages=None)

    async def list(self, tenant: str, *, limit: int = 50, cursor: Cursor | None = None, order: str = "desc",
                   tag: str | None = None, observed: bool = False) -> tuple[list[Conversation], Cursor | None]:
        """Conversations (with tags, without messages) by (updated_at, id) in `order`, strictly after
        `cursor`, only those carrying `tag` if given, only those with at least one message of an
        `observation_type` (the traces) if `observed`; the second item is the next page's cursor, None when
        no row follows (pages are exact)."""
        limit, cursor = _limit(limit), _cursor(cursor)
        if order not in ORDERS:
            raise InvalidArgument("order must be asc or desc", field="order")
        if tag is not None:
            validate_tag(tag)
        rows = await self.store.conversations.list(tenant, limit + 1, cursor, order, tag, observed)
        return rows[:limit], ((rows[limit - 1].updated_at, rows[limit - 1].id) if len(rows) > limit else None)

    async def messages(self, tenant: str, conversation_id: str, *, after: str | None = None,
                       limit: int = 100, last: int | None = None) -> tuple[list[Message], str | None]:
        """Messages in order after the message `after` (exclusive; an id not of this conversation is
        ignored, D33), or from the `last`-th message from the end; the second item is the page's last
        id when more follow. NotFound if unknown."""
        limit = _limit(limit)
        if last is not None:
            last = _count(last, "last", False)
            if after is not None:
                raise InvalidArgument("give after or last, not both", field="last")
        if not self._valid_id(conversation_id):
            raise NotFound("Conversation not found", conversation_id=conversation_id)
        position = -1
        if last is not None:
            c = await self.store.conversations.get(tenant, conversation_id)
            if c is None:
                raise NotFound("Conversation not found", conversation_id=conversation_id)
            position = _before_last(c, last)
        elif not await self.store.conversations.exists(tenant, conversation_id):
            raise NotFound("Conversation not found", conversation_id=conversation_id)
        if holdable(after):
            found = await self.store.conversations.message_position(tenant, conversation_id, after)
            position = found if found is not None else -1
        rows = await self.store.conversations.messages(tenant, conversation_id, position, limit + 1)
        return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)

    async def tags(self, tenant: str, conversation_id: str) -> list[str]:
        c = await self.get(tenant, conversation_id, with_messages=False)
        if c is None:
            raise NotFound("Conversation not found", conversation_id=conversation_id)
        return c.tags

    async def all_tags(self, tenant: str) -> list[str]:
        """The distinct tags of the tenant's conversations, sorted by code point."""
        return await self.store.conversations.all_tags(tenant)

    async def export(self, tenant: str, ids: list[str] | None = None,
                     limit: int | None = None) -> AsyncIterator[Conversation]:
        """Conversations with all their messages, by updated_at desc, id desc (D28), read page by page
        (never all at once): those of `ids` the tenant has (unknown ones skipped), else every one of the
        tenant, or the `limit` most recently updated."""
        if ids:  # a list naming only unknown conversations exports nothing
            wanted = _ids(ids)
            rows = await self.store.conversations.many(tenant, wanted) if wanted else []
            rows.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
            for c in rows:
                yield await self._with_all_messages(tenant, c)
            return
        left = _limit(limit, 2**31) if limit is not None else None
        cursor: Cursor | None = None
        while left is None or left > 0:
            size = EXPORT_PAGE if left is None else min(EXPORT_PAGE, left)
            rows = await self.store.conversations.list(tenant, size, cursor, "desc", None)
            for c in rows:
                yield await self._with_all_messages(tenant, c)
            if len(rows) < size:
                return
            cursor = (rows[-1].updated_at, rows[-1].id)
            if left is not None:
                left -= len(rows)

    async def _with_all_messages(self, tenant: str, c: Conversation) -> Conversation:
        messages = await self._all_messages(tenant, c.id, None)
        # The export's message_count is the number of messages exported (AgentState §5.5.8).
        return msgspec.structs.replace(c, messages=messages, message_count=len(messages))

    async def _all_messages(self, tenant: str, conversation_id: str, cap: int | None) -> list[Message]:
        out: list[Message] = []
        position = -1
        while cap is None or len(out) < cap:
            size = MAX_PAGE if cap is None else min(MAX_PAGE, cap - len(out))
            rows = await self.store.conversations.messages(tenant, conversation_id, position, size)
            out.extend(rows)
            if len(rows) < size:
                break
            position = rows[-1].position
        return out

    @staticmethod
    def _valid_id(conversation_id: Any) -> bool:
        return holdable(conversation_id) and len(conversation_id) <= 255

    def _check_id(self, conversation_id: Any) -> None:
        if not self._valid_id(conversation_id):
            raise NotFound("Conversation not found", conversation_id=conversation_id)
