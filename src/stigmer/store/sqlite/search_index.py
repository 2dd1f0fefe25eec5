"""The search index of conversation messages on SQLite (docs/search.md): FTS5 over our own tokens.

Each message has a narrow row in `conversation_message_terms` (its conversation, position and length in
tokens: what ranking reads per matching message) and, under the same rowid, its index terms
(conversation_rows.index_terms, computed in Python) in an FTS5 table (the `ascii` tokenizer with `_` as a token
character splits nothing, as terms are [a-z0-9_] only). Its `row` vocabulary gives each term's document
frequency, its `instance` vocabulary each term's occurrences per message (the term frequencies);
`conversation_search_tenants` holds each tenant's search id,
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
CREATE VIRTUAL TABLE conversation_message_term_counts USING fts5vocab (conversation_message_index, 'row');
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
_DF = "SELECT doc FROM conversation_message_term_counts WHERE term = ?"
_TF = "SELECT doc, count(*) FROM conversation_message_instances WHERE term = ? GROUP BY doc"
_WITH_ALL = "SELECT rowid FROM conversation_message_index WHERE conversation_message_index MATCH ?"
# FTS5's own table of the terms it holds (its documented `_content` shadow table): read by rowid, a plain B-tree.
_TERMS = "SELECT id, c0 FROM conversation_message_index_content WHERE id IN (SELECT value FROM json_each(?))"
_ROWS = ("SELECT id, conversation_id, position, length FROM conversation_message_terms"
         " WHERE id IN (SELECT value FROM json_each(?)) AND +tenant = ?")  # by id, not by the tenant index
_ONE = ("SELECT t.id, t.conversation_id, t.position, t.length, i.n FROM (SELECT doc, count(*) AS n"
        " FROM conversation_message_instances WHERE term = ? GROUP BY doc) AS i"
        " JOIN conversation_message_terms t ON t.id = i.doc AND +t.tenant = ?")
FEW = 0.05  # counting in the candidates' terms while they are at most this share of the tokens' postings
_BACKFILL = ("SELECT tenant, conversation_id, position, content FROM conversation_messages"
             " WHERE (tenant, conversation_id, position) > (?, ?, ?) ORDER BY tenant, conversation_id, position"
             " LIMIT 500")


def index(conn: sqlite3.Connection, tenant: str, messages: list[Message]) -> None:
    """Index new messages of the tenant (inside its mutation)."""
    if not messages:
        return
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
    """The tenant's messages holding every one of the distinct tokens `wanted`, in one read transaction.

    Each token's document frequency comes from the `row` vocabulary. One token: its postings (`instance`
    vocabulary) give tf, joined to the messages' rows in SQL. Several: FTS5 intersects the postings (MATCH of
    quoted terms, which are [a-z0-9_]); while the candidates are few beside the tokens' postings, tf is
    counted in the candidates' own terms, otherwise read from every token's postings."""
    conn.execute("BEGIN")
    try:
        found = conn.execute(_TENANT, (tenant,)).fetchone()
        if found is None:
            return None
        tenant_id, n, length = found
        terms = [rows.index_term(tenant_id, t) for t in wanted]
        df = []
        for term in terms:
            got = conn.execute(_DF, (term,)).fetchone()
            if got is None:
                return None
            df.append(got[0])
        if len(terms) == 1:
            return Matches(n, length, df, [(cid, position, dl, (tf,)) for _, cid, position, dl, tf
                                           in conn.execute(_ONE, (terms[0], tenant))])
        docs = [doc for (doc,) in conn.execute(_WITH_ALL, (" ".join(f'"{t}"' for t in terms),))]
        if len(docs) <= FEW * sum(df):
            tfs = {}
            for doc, text in conn.execute(_TERMS, (json.dumps(docs),)):
                counted = Counter(text.split())
                tfs[doc] = tuple(counted[t] for t in terms)
        else:
            per_term = [dict(conn.execute(_TF, (term,)).fetchall()) for term in terms]
            tfs = {doc: tuple(c[doc] for c in per_term) for doc in docs}
        if not tfs:
            return None
        meta = conn.execute(_ROWS, (json.dumps(list(tfs)), tenant)).fetchall()
    finally:
        conn.execute("COMMIT")
    return Matches(n, length, df, [(cid, position, dl, tfs[doc]) for doc, cid, position, dl in meta])
