"""Conversations on PostgreSQL: reads on the pool, writes inside the writer's transaction under the
tenant's revision-counter lock (so counters and messages change together, across replicas). Many rows go
in one statement of array parameters (unnest), so no count meets the bound-parameter limit (§8.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.conversation_search import Matches
from ...engine.conversations import Conversation, Cursor, Message
from .. import conversation_rows as rows
from . import search_index

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

_TAGS = "string_agg(t.tag, ',')"
_GET = rows.select(_TAGS) + " WHERE c.tenant = %s AND c.id = %s"
_MANY = rows.select(_TAGS) + " WHERE c.tenant = %s AND c.id = ANY(%s::text[])"
_BY_EXTERNAL = "SELECT id FROM conversations WHERE tenant = %s AND external_id = %s"
_EXISTS = "SELECT 1 FROM conversations WHERE tenant = %s AND id = %s"
_MESSAGES = rows.messages_sql("%s")
_CONTENTS = rows.contents_sql("SELECT * FROM unnest(%s::text[], %s::int[])", "%s")
_POSITION = "SELECT position FROM conversation_messages WHERE tenant = %s AND conversation_id = %s AND id = %s"
_ALL_TAGS = "SELECT DISTINCT tag FROM conversation_tags WHERE tenant = %s"
_INSERT = f"INSERT INTO conversations ({rows.COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
_TYPES = ("text", "text", "int", "text", "text", "text", "text", "bigint", "text", "bigint", "bigint", "bigint",
          "text", "text", "bigint", "bigint", "text", "text", "bigint")
_INSERT_MESSAGES = (f"INSERT INTO conversation_messages ({', '.join(rows.MESSAGE_INSERT)}) SELECT * FROM unnest("
                    + ", ".join(f"%s::{t}[]" for t in _TYPES) + ")")
_INSERT_TAGS = ("INSERT INTO conversation_tags (tenant, conversation_id, tag) SELECT %s, %s, unnest(%s::text[])"
                " ON CONFLICT DO NOTHING")
_DELETE_TAGS = "DELETE FROM conversation_tags WHERE tenant = %s AND conversation_id = %s AND tag = ANY(%s::text[])"
_UPDATE = rows.UPDATE.format(m="%s")
_ADD_COUNTS = rows.ADD_COUNTS.format(m="%s")
_REMOVED_SUMS = rows.REMOVED_SUMS.format(m="%s")
_REMOVE = rows.REMOVE.format(m="%s")
_SUBTRACT_COUNTS = rows.SUBTRACT_COUNTS.format(m="%s")
_MESSAGE_AT = rows.MESSAGE_AT.format(m="%s")
_DELETE = ("DELETE FROM conversation_messages WHERE tenant = %s AND conversation_id = %s",
           "DELETE FROM conversation_tags WHERE tenant = %s AND conversation_id = %s",
           "DELETE FROM conversations WHERE tenant = %s AND id = %s")


class PostgresConversations:
    """`store.conversations`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, conversation_id: str) -> Conversation | None:
        found = await self._store.fetch(_GET, (tenant, conversation_id))
        return rows.of(found[0]) if found else None

    async def exists(self, tenant: str, conversation_id: str) -> bool:
        return bool(await self._store.fetch(_EXISTS, (tenant, conversation_id)))

    async def id_by_external_id(self, tenant: str, external_id: str) -> str | None:
        found = await self._store.fetch(_BY_EXTERNAL, (tenant, external_id))
        return found[0][0] if found else None

    async def list(self, tenant: str, limit: int, cursor: Cursor | None, order: str,
                   tag: str | None, observed: bool = False) -> list[Conversation]:
        sql, params = rows.list_sql(_TAGS, tenant, limit, cursor, order, tag, "%s", observed)
        return [rows.of(r) for r in await self._store.fetch(sql, params)]

    async def many(self, tenant: str, ids: list[str]) -> list[Conversation]:
        return [rows.of(r) for r in await self._store.fetch(_MANY, (tenant, ids))]

    async def messages(self, tenant: str, conversation_id: str, after_position: int, limit: int) -> list[Message]:
        found = await self._store.fetch(_MESSAGES, (tenant, conversation_id, after_position, limit))
        return [rows.message_of(r) for r in found]

    async def message_position(self, tenant: str, conversation_id: str, message_id: str) -> int | None:
        found = await self._store.fetch(_POSITION, (tenant, conversation_id, message_id))
        return found[0][0] if found else None

    async def all_tags(self, tenant: str) -> list[str]:
        return sorted(r[0] for r in await self._store.fetch(_ALL_TAGS, (tenant,)))

    async def contents(self, tenant: str, at: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        found = await self._store.fetch(_CONTENTS, (tenant, [c for c, _ in at], [p for _, p in at]))
        return {(c, p): text for c, p, text in found}

    async def search(self, tenant: str, wanted: list[str]) -> Matches | None:
        found = await self._store.fetch(search_index.TENANT_ID, (tenant,))
        if not found:
            return None
        tsquery, terms = search_index.query(found[0][0], wanted)
        return search_index.matches(await self._store.fetch(search_index.MATCHES, (tenant, tsquery, terms)), terms)


class ConversationWritesPG:
    """`tx.conversations`: the conversations of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def _one(self, sql: str, params: tuple):
        return self._tx.cur.execute(sql, params).fetchone()

    def get(self, conversation_id: str) -> Conversation | None:
        r = self._one(_GET, (self._tx.tenant, conversation_id))
        return None if r is None else rows.of(r)

    def by_external_id(self, external_id: str) -> str | None:
        r = self._one(_BY_EXTERNAL, (self._tx.tenant, external_id))
        return None if r is None else r[0]

    def insert(self, c: Conversation) -> None:
        tx = self._tx
        tx.check_tenant(c.tenant)
        tx.write(_INSERT, rows.row(c))
        if c.tags:
            tx.write(_INSERT_TAGS, (c.tenant, c.id, c.tags))
        self._messages(c.messages)

    def _messages(self, messages: list[Message]) -> None:
        if messages:
            self._tx.write(_INSERT_MESSAGES, tuple(list(column) for column in zip(
                *rows.message_rows(self._tx.tenant, messages))))
            search_index.index(self._tx, messages)

    def append(self, conversation_id: str, messages: list[Message], tokens: int, total_tokens: int, cost: int,
               now: int) -> None:
        self._messages(messages)
        self._tx.write(_ADD_COUNTS, (len(messages), tokens, total_tokens, cost, now, self._tx.tenant, conversation_id))

    def message_at(self, conversation_id: str, position: int) -> Message | None:
        r = self._one(_MESSAGE_AT, (self._tx.tenant, conversation_id, position))
        return None if r is None else rows.message_of(r)

    def remove_messages(self, conversation_id: str, from_position: int, now: int) -> tuple[int, int, int, int]:
        tx = self._tx
        key = (tx.tenant, conversation_id, from_position)
        sums = tuple(int(x) for x in self._one(_REMOVED_SUMS, key))  # sum() of bigint is numeric
        tx.write(_REMOVE, key)
        tx.write(_SUBTRACT_COUNTS, (*sums, now, tx.tenant, conversation_id))
        return sums  # type: ignore[return-value]

    def update(self, c: Conversation) -> None:
        self._tx.check_tenant(c.tenant)
        self._tx.write(_UPDATE, rows.updates(c))

    def set_tags(self, conversation_id: str, add: list[str], remove: list[str]) -> None:
        tx = self._tx
        if add:
            tx.write(_INSERT_TAGS, (tx.tenant, conversation_id, add))
        if remove:
            tx.write(_DELETE_TAGS, (tx.tenant, conversation_id, remove))

    def delete(self, conversation_id: str) -> bool:
        tx = self._tx
        if self._one(_EXISTS, (tx.tenant, conversation_id)) is None:
            return False
        for sql in _DELETE:
            tx.write(sql, (tx.tenant, conversation_id))
        return True
