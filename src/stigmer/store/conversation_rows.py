"""Conversation rows as both stores hold them: the columns, the records and the page queries.

Metadata is compact JSON text as received (member order kept); SQL NULL is no metadata. A row of a
conversation carries its tags as one comma-joined text (tags cannot hold a comma), read in the same
statement as the row, so a row and its tags come from one snapshot.

The search index (docs/search.md) holds each message as its §6.6 tokens, each written as an index term of
the characters [a-z0-9_] only, behind the tenant's search id: `<tenant id>_<token>` for a short ASCII token,
`<tenant id>__<UTF-8 hex>` for a short other one, `<tenant id>__h<SHA-256 hex>` for one over 64 bytes. So
neither store's tokenizer or parser ever sees a user's text, and a tenant's terms are its own.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..engine import values
from ..engine.conversation_search import tokens
from ..engine.conversations import Conversation, Cursor, Message

MAX_TERM_BYTES = 64

COLUMNS = ("id, tenant, external_id, title, metadata, message_count, token_count, total_tokens,"
           " total_cost_microdollars, created_at, updated_at")
MESSAGE_COLUMNS = ("id, conversation_id, role, content, metadata, token_count, model, input_tokens, output_tokens,"
                   " cost_microdollars, parent_message_id, observation_type, start_time, end_time, status, level,"
                   " created_at, position")
MESSAGE_INSERT = ("tenant", "conversation_id", "position", "id", "role", "content", "metadata", "token_count", "model",
                  "input_tokens", "output_tokens", "cost_microdollars", "parent_message_id", "observation_type",
                  "start_time", "end_time", "status", "level", "created_at")


def select(tag_list: str) -> str:
    """The conversation columns and the row's tags; `tag_list` is the store's string aggregate of `tag`."""
    columns = ", ".join(f"c.{name.strip()}" for name in COLUMNS.split(","))
    return (f"SELECT {columns}, (SELECT {tag_list} FROM conversation_tags t"
            " WHERE t.tenant = c.tenant AND t.conversation_id = c.id) FROM conversations c")


def json_text(value: Any) -> str | None:
    return None if value is None else values.encode(value).decode()


def from_json_text(text: str | None) -> Any:
    return None if text is None else values.decode(text)


def row(c: Conversation) -> tuple:
    return (c.id, c.tenant, c.external_id, c.title, json_text(c.metadata), c.message_count, c.token_count,
            c.total_tokens, c.total_cost_microdollars, c.created_at, c.updated_at)


def of(r: tuple | list) -> Conversation:
    *head, tags = r
    head[4] = from_json_text(head[4])
    return Conversation(*head, tags=sorted(tags.split(",")) if tags else [])


def message_rows(tenant: str, messages: list[Message]) -> list[tuple]:
    """Rows in MESSAGE_INSERT order."""
    return [(tenant, m.conversation_id, m.position, m.id, m.role, m.content, json_text(m.metadata), m.token_count,
             m.model, m.input_tokens, m.output_tokens, m.cost_microdollars, m.parent_message_id, m.observation_type,
             m.start_time, m.end_time, m.status, m.level, m.created_at) for m in messages]


def message_of(r: tuple | list) -> Message:
    r = list(r)
    r[4] = from_json_text(r[4])
    return Message(*r)


def list_sql(tag_list: str, tenant: str, limit: int, cursor: Cursor | None, order: str, tag: str | None,
             mark: str, observed: bool = False) -> tuple[str, tuple]:
    direction = "ASC" if order == "asc" else "DESC"
    sql, params = select(tag_list) + f" WHERE c.tenant = {mark}", [tenant]
    if tag is not None:
        sql += (f" AND EXISTS (SELECT 1 FROM conversation_tags g WHERE g.tenant = c.tenant"
                f" AND g.conversation_id = c.id AND g.tag = {mark})")
        params.append(tag)
    if observed:  # a trace: a probe of the partial index conversation_messages_observed (migration 11)
        sql += (" AND EXISTS (SELECT 1 FROM conversation_messages o WHERE o.tenant = c.tenant"
                " AND o.conversation_id = c.id AND o.observation_type IS NOT NULL)")
    if cursor is not None:
        sql += f" AND (c.updated_at, c.id) {'>' if order == 'asc' else '<'} ({mark}, {mark})"
        params.extend(cursor)
    return sql + f" ORDER BY c.updated_at {direction}, c.id {direction} LIMIT {mark}", (*params, limit)


def messages_sql(mark: str) -> str:
    return (f"SELECT {MESSAGE_COLUMNS} FROM conversation_messages WHERE tenant = {mark} AND conversation_id = {mark}"
            f" AND position > {mark} ORDER BY position LIMIT {mark}")


def contents_sql(pairs: str, mark: str) -> str:
    """The content of the messages at some (conversation_id, position) pairs; `pairs` is the store's table of them."""
    return (f"SELECT conversation_id, position, content FROM conversation_messages WHERE tenant = {mark}"
            f" AND (conversation_id, position) IN ({pairs})")


def updates(c: Conversation) -> tuple:
    """The parameters of an UPDATE setting external_id, title, metadata and updated_at of `c`."""
    return (c.external_id, c.title, json_text(c.metadata), c.updated_at, c.tenant, c.id)


UPDATE = "UPDATE conversations SET external_id = {m}, title = {m}, metadata = {m}, updated_at = {m} WHERE tenant = {m} AND id = {m}"
ADD_COUNTS = ("UPDATE conversations SET message_count = message_count + {m}, token_count = token_count + {m},"
              " total_tokens = total_tokens + {m}, total_cost_microdollars = total_cost_microdollars + {m},"
              " updated_at = {m} WHERE tenant = {m} AND id = {m}")
# What a removal takes off the counters: (count, token_count, total_tokens, cost) of the messages removed.
REMOVED_SUMS = ("SELECT count(*), coalesce(sum(token_count), 0),"
                " coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0),"
                " coalesce(sum(coalesce(cost_microdollars, 0)), 0) FROM conversation_messages"
                " WHERE tenant = {m} AND conversation_id = {m} AND position >= {m}")
REMOVE = "DELETE FROM conversation_messages WHERE tenant = {m} AND conversation_id = {m} AND position >= {m}"
SUBTRACT_COUNTS = ("UPDATE conversations SET message_count = message_count - {m}, token_count = token_count - {m},"
                   " total_tokens = total_tokens - {m}, total_cost_microdollars = total_cost_microdollars - {m},"
                   " updated_at = {m} WHERE tenant = {m} AND id = {m}")
MESSAGE_AT = (f"SELECT {MESSAGE_COLUMNS} FROM conversation_messages WHERE tenant = {{m}} AND conversation_id = {{m}}"
              " AND position = {m}")


def index_term(tenant_id: int, token: str) -> str:
    raw = token.encode()
    if len(raw) > MAX_TERM_BYTES:
        return f"{tenant_id}__h{hashlib.sha256(raw).hexdigest()}"
    return f"{tenant_id}_{token}" if token.isascii() else f"{tenant_id}__{raw.hex()}"


def index_terms(tenant_id: int, content: str) -> list[str]:
    """The index terms of a message's content, in order (repeats kept: their count is the term frequency)."""
    found = tokens(content)
    term = {t: index_term(tenant_id, t) for t in set(found)}
    return [term[t] for t in found]
