"""The search index of conversation messages on SQLite (docs/search.md): FTS5 over our own tokens.

Each message has a narrow row in `conversation_message_terms` (its conversation, position and length in
tokens: what ranking reads per matching message) and, under the same rowid, its index terms
(conversation_rows.index_terms, computed in Python) in an FTS5 table (the `ascii` tokenizer with `_` as a token
character splits nothing, as terms are [a-z0-9_] only). That table's `instance` vocabulary gives each term's
occurrences per message (the term frequencies); `conversation_search_tenants` holds each tenant's search id,
message count and total length. Triggers keep all of it exact whatever path deletes a message.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

from ...engine.conversation_search import Matches
from ...engine.conversations import Message
from .. import conversation_rows as rows

SCHEMA = """
CREATE TABLE conversation_search_tenants (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL UNIQUE,
    messages INTEGER NOT NULL DEFAULT 0,
    length INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE conversation_message_terms (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    length INTEGER NOT NULL,
    UNIQUE (tenant, conversation_id, position)
);
CREATE VIRTUAL TABLE conversation_message_index USING fts5 (terms, tokenize = "ascii tokenchars '_'", detail = full);
CREATE VIRTUAL TABLE conversation_message_instances USING fts5vocab (conversation_message_index, 'instance');
CREATE TRIGGER conversation_message_terms_added AFTER INSERT ON conversation_message_terms BEGIN
    UPDATE conversation_search_tenants SET messages = messages + 1, length = length + new.length
        WHERE tenant = new.tenant;
END;
CREATE TRIGGER conversation_message_terms_removed AFTER DELETE ON conversation_message_terms BEGIN
    DELETE FROM conversation_message_index WHERE rowid = old.id;
    UPDATE conversation_search_tenants SET messages = messages - 1, length = length - old.length
        WHERE tenant = old.tenant;
END;
CREATE TRIGGER conversation_messages_removed AFTER DELETE ON conversation_messages BEGIN
    DELETE FROM conversation_message_terms
        WHERE tenant = old.tenant AND conversation_id = old.conversation_id AND position = old.position;
END;
"""
_TENANT = "SELECT id, messages, length FROM conversation_search_tenants WHERE tenant = ?"
_NEW_TENANT = "INSERT INTO conversation_search_tenants (tenant) VALUES (?) RETURNING id"
_LAST_ID = "SELECT max(id) FROM conversation_message_terms"
_INSERT = "INSERT INTO conversation_message_terms (id, tenant, conversation_id, position, length) VALUES (?, ?, ?, ?, ?)"
_INSERT_TERMS = "INSERT INTO conversation_message_index (rowid, terms) VALUES (?, ?)"
_OCCURRENCES = "SELECT doc FROM conversation_message_instances WHERE term = ?"
_ROWS = ("SELECT id, conversation_id, position, length FROM conversation_message_terms"
         " WHERE id IN (SELECT value FROM json_each(?)) AND +tenant = ?")  # by id, not by the tenant index
_BACKFILL = ("SELECT tenant, conversation_id, position, content FROM conversation_messages"
             " WHERE (tenant, conversation_id, position) > (?, ?, ?) ORDER BY tenant, conversation_id, position"
             " LIMIT 500")


def index(conn: sqlite3.Connection, tenant: str, messages: list[Message]) -> None:
    """Index new messages of the tenant (inside its mutation)."""
    found = conn.execute(_TENANT, (tenant,)).fetchone()
    tenant_id = found[0] if found is not None else conn.execute(_NEW_TENANT, (tenant,)).fetchone()[0]
    first = (conn.execute(_LAST_ID).fetchone()[0] or 0) + 1
    found_terms = [rows.index_terms(tenant_id, m.content) for m in messages]
    conn.executemany(_INSERT, [(first + i, tenant, m.conversation_id, m.position, len(terms))
                               for i, (m, terms) in enumerate(zip(messages, found_terms))])
    conn.executemany(_INSERT_TERMS, [(first + i, " ".join(terms)) for i, terms in enumerate(found_terms)])


def backfill(conn: sqlite3.Connection) -> None:
    """After migration 10's SCHEMA, in its transaction: index the messages written before it."""
    after: tuple = ("", "", -1)
    while found := conn.execute(_BACKFILL, after).fetchall():
        for tenant, conversation_id, position, content in found:
            index(conn, tenant, [Message("", conversation_id, "", content, position=position)])
        after = found[-1][:3]


def search(conn: sqlite3.Connection, tenant: str, wanted: list[str]) -> Matches | None:
    """The tenant's messages holding every one of the distinct tokens `wanted`, in one read transaction."""
    conn.execute("BEGIN")
    try:
        found = conn.execute(_TENANT, (tenant,)).fetchone()
        if found is None:
            return None
        tenant_id, n, length = found
        counts = [Counter(doc for (doc,) in conn.execute(_OCCURRENCES, (rows.index_term(tenant_id, t),)))
                  for t in wanted]
        common = set(min(counts, key=len)).intersection(*counts)
        if not common:
            return None
        meta = conn.execute(_ROWS, (json.dumps(sorted(common)), tenant)).fetchall()
    finally:
        conn.execute("COMMIT")
    return Matches(n, length, [len(c) for c in counts],
                   [(cid, position, dl, tuple(c[doc] for c in counts)) for doc, cid, position, dl in meta])
