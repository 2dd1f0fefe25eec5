"""Conversations on SQLite: point reads inline on the read connection, pages on the reader pool, writes
through the writer's connection (SQL at once: the engine raises before it writes). Many rows go in one
executemany, so no count of messages or tags meets the bound-parameter limit (AgentState §8.4)."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from ...engine.conversation_search import Matches
from ...engine.conversations import Conversation, Cursor, Message
from .. import conversation_rows as rows
from . import search_index
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

_TAGS = "group_concat(t.tag, ',')"
_GET = rows.select(_TAGS) + " WHERE c.tenant = ? AND c.id = ?"
_MANY = rows.select(_TAGS) + " WHERE c.tenant = ? AND c.id IN (SELECT value FROM json_each(?))"
_BY_EXTERNAL = "SELECT id FROM conversations WHERE tenant = ? AND external_id = ?"
_EXISTS = "SELECT 1 FROM conversations WHERE tenant = ? AND id = ?"
_MESSAGES = rows.messages_sql("?")
_CONTENTS = rows.contents_sql("SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)", "?")
_POSITION = "SELECT position FROM conversation_messages WHERE tenant = ? AND conversation_id = ? AND id = ?"
_ALL_TAGS = "SELECT DISTINCT tag FROM conversation_tags WHERE tenant = ? ORDER BY tag"
_INSERT = f"INSERT INTO conversations ({rows.COLUMNS}) VALUES ({','.join('?' * 11)})"
_INSERT_MESSAGE = (f"INSERT INTO conversation_messages ({', '.join(rows.MESSAGE_INSERT)})"
                   f" VALUES ({','.join('?' * len(rows.MESSAGE_INSERT))})")
_INSERT_TAG = "INSERT OR IGNORE INTO conversation_tags (tenant, conversation_id, tag) VALUES (?, ?, ?)"
_DELETE_TAG = "DELETE FROM conversation_tags WHERE tenant = ? AND conversation_id = ? AND tag = ?"
_UPDATE = rows.UPDATE.format(m="?")
_ADD_COUNTS = rows.ADD_COUNTS.format(m="?")
_REMOVED_SUMS = rows.REMOVED_SUMS.format(m="?")
_REMOVE = rows.REMOVE.format(m="?")
_SUBTRACT_COUNTS = rows.SUBTRACT_COUNTS.format(m="?")
_MESSAGE_AT = rows.MESSAGE_AT.format(m="?")
_DELETE = ("DELETE FROM conversation_messages WHERE tenant = ? AND conversation_id = ?",
           "DELETE FROM conversation_tags WHERE tenant = ? AND conversation_id = ?",
           "DELETE FROM conversations WHERE tenant = ? AND id = ?")


class SQLiteConversations:
    """`store.conversations`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    def _one(self, sql: str, params: tuple):
        try:
            return self._store.read_conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None

    async def get(self, tenant: str, conversation_id: str) -> Conversation | None:
        r = self._one(_GET, (tenant, conversation_id))
        return None if r is None else rows.of(r)

    async def exists(self, tenant: str, conversation_id: str) -> bool:
        return self._one(_EXISTS, (tenant, conversation_id)) is not None

    async def id_by_external_id(self, tenant: str, external_id: str) -> str | None:
        r = self._one(_BY_EXTERNAL, (tenant, external_id))
        return None if r is None else r[0]

    async def list(self, tenant: str, limit: int, cursor: Cursor | None, order: str,
                   tag: str | None, observed: bool = False) -> list[Conversation]:
        sql, params = rows.list_sql(_TAGS, tenant, limit, cursor, order, tag, "?", observed)
        return [rows.of(r) for r in await self._store.in_pool(sql, params)]

    async def many(self, tenant: str, ids: list[str]) -> list[Conversation]:
        return [rows.of(r) for r in await self._store.in_pool(_MANY, (tenant, json.dumps(ids)))]

    async def messages(self, tenant: str, conversation_id: str, after_position: int, limit: int) -> list[Message]:
        found = await self._store.in_pool(_MESSAGES, (tenant, conversation_id, after_position, limit))
        return [rows.message_of(r) for r in found]

    async def message_position(self, tenant: str, conversation_id: str, message_id: str) -> int | None:
        r = self._one(_POSITION, (tenant, conversation_id, message_id))
        return None if r is None else r[0]

    async def all_tags(self, tenant: str) -> list[str]:
        return sorted(r[0] for r in await self._store.in_pool(_ALL_TAGS, (tenant,)))

    async def contents(self, tenant: str, at: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        found = await self._store.in_pool(_CONTENTS, (tenant, json.dumps(at)))
        return {(c, p): text for c, p, text in found}

    async def search(self, tenant: str, wanted: list[str]) -> Matches | None:
        return await self._store.in_pool_do(lambda conn: search_index.search(conn, tenant, wanted))


class ConversationWrites:
    """`tx.conversations`: the conversations of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def get(self, conversation_id: str) -> Conversation | None:
        r = self._conn.execute(_GET, (self._tenant, conversation_id)).fetchone()
        return None if r is None else rows.of(r)

    def by_external_id(self, external_id: str) -> str | None:
        r = self._conn.execute(_BY_EXTERNAL, (self._tenant, external_id)).fetchone()
        return None if r is None else r[0]

    def insert(self, c: Conversation) -> None:
        if c.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may not write tenant {c.tenant!r}")
        self._conn.execute(_INSERT, rows.row(c))
        self._conn.executemany(_INSERT_TAG, [(c.tenant, c.id, t) for t in c.tags])
        self._conn.executemany(_INSERT_MESSAGE, rows.message_rows(c.tenant, c.messages))
        search_index.index(self._conn, c.tenant, c.messages)

    def append(self, conversation_id: str, messages: list[Message], tokens: int, total_tokens: int, cost: int,
               now: int) -> None:
        self._conn.executemany(_INSERT_MESSAGE, rows.message_rows(self._tenant, messages))
        search_index.index(self._conn, self._tenant, messages)
        self._conn.execute(_ADD_COUNTS, (len(messages), tokens, total_tokens, cost, now, self._tenant,
                                         conversation_id))

    def message_at(self, conversation_id: str, position: int) -> Message | None:
        r = self._conn.execute(_MESSAGE_AT, (self._tenant, conversation_id, position)).fetchone()
        return None if r is None else rows.message_of(r)

    def remove_messages(self, conversation_id: str, from_position: int, now: int) -> tuple[int, int, int, int]:
        key = (self._tenant, conversation_id, from_position)
        sums = tuple(self._conn.execute(_REMOVED_SUMS, key).fetchone())
        self._conn.execute(_REMOVE, key)
        self._conn.execute(_SUBTRACT_COUNTS, (*sums, now, self._tenant, conversation_id))
        return sums  # type: ignore[return-value]

    def update(self, c: Conversation) -> None:
        self._conn.execute(_UPDATE, rows.updates(c))

    def set_tags(self, conversation_id: str, add: list[str], remove: list[str]) -> None:
        self._conn.executemany(_INSERT_TAG, [(self._tenant, conversation_id, t) for t in add])
        self._conn.executemany(_DELETE_TAG, [(self._tenant, conversation_id, t) for t in remove])

    def delete(self, conversation_id: str) -> bool:
        if self._conn.execute(_EXISTS, (self._tenant, conversation_id)).fetchone() is None:
            return False
        for sql in _DELETE:
            self._conn.execute(sql, (self._tenant, conversation_id))
        return True
