"""The search index of conversation messages on PostgreSQL (docs/search.md): tsvectors of our own tokens.

Each message's index terms (conversation_rows.index_terms, computed in Python, never PostgreSQL's parser) go
into `conversation_message_terms` as tsvectors under a GIN index, one lexeme per distinct term. A lexeme's
positions carry the term's frequency in the message as their sum (one position, the frequency itself, up to
16,383; above that several distinct positions, up to the 256 a lexeme may have, so frequencies up to 4,161,408
are exact and larger ones are cut there). A message whose terms would pass the 1 MB limit of a tsvector is
split over several rows (`part`), each lexeme in exactly one. The rows reference their message with
ON DELETE CASCADE, and triggers keep each tenant's message count and total length in
`conversation_search_tenants`: whatever path deletes a message, its index rows and counts go with it.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import psycopg

from ...engine.conversation_search import Matches
from ...engine.conversations import Message
from .. import conversation_rows as rows

if TYPE_CHECKING:
    from .writer import WriteTxnPG

SCHEMA = """
CREATE TABLE conversation_search_tenants (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL UNIQUE,
    messages BIGINT NOT NULL DEFAULT 0,
    length BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE conversation_message_terms (
    tenant TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    position INTEGER NOT NULL,
    part INTEGER NOT NULL,
    length BIGINT NOT NULL,
    terms TSVECTOR NOT NULL,
    PRIMARY KEY (tenant, conversation_id, position, part),
    FOREIGN KEY (tenant, conversation_id, position) REFERENCES conversation_messages ON DELETE CASCADE
);
CREATE INDEX conversation_message_terms_search ON conversation_message_terms USING gin (terms);

CREATE FUNCTION conversation_search_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE sign INTEGER := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    UPDATE conversation_search_tenants s SET messages = s.messages + sign * d.n, length = s.length + sign * d.l
    FROM (SELECT tenant, count(*) AS n, sum(length) AS l FROM changed WHERE part = 0 GROUP BY tenant) d
    WHERE s.tenant = d.tenant;
    RETURN NULL;
END $$;
CREATE TRIGGER conversation_message_terms_added AFTER INSERT ON conversation_message_terms
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION conversation_search_count();
CREATE TRIGGER conversation_message_terms_removed AFTER DELETE ON conversation_message_terms
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION conversation_search_count();
"""
TENANT_ID = "SELECT id FROM conversation_search_tenants WHERE tenant = %s"
NEW_TENANT = "INSERT INTO conversation_search_tenants (tenant) VALUES (%s) ON CONFLICT (tenant) DO NOTHING"
INSERT = ("INSERT INTO conversation_message_terms (tenant, conversation_id, position, part, length, terms)"
          " SELECT %s, c, p, k, n, t::tsvector FROM unnest(%s::text[], %s::int[], %s::int[], %s::bigint[], %s::text[])"
          " AS u(c, p, k, n, t)")
MATCHES = ("SELECT s.messages, s.length, t.conversation_id, t.position, t.length, u.lexeme, u.positions"
            " FROM conversation_search_tenants s JOIN conversation_message_terms t ON t.tenant = s.tenant,"
            " unnest(t.terms) u WHERE s.tenant = %s AND t.terms @@ %s::tsquery AND u.lexeme = ANY(%s::text[])")
_BACKFILL = ("SELECT tenant, conversation_id, position, content FROM conversation_messages"
             " WHERE (tenant, conversation_id, position) > (%s, %s, %s) ORDER BY tenant, conversation_id, position"
             " LIMIT 500")

MAX_POSITION = 16383  # a tsvector position's largest value
MAX_POSITIONS = 256  # per lexeme
PART_BYTES = 512 * 1024  # a row's tsvector stays well under the 1 MB limit


def _positions(tf: int) -> list[int]:
    """Distinct positions whose sum is `tf` (capped at the largest sum there can be)."""
    out, top = [], MAX_POSITION
    while tf > top and len(out) < MAX_POSITIONS - 1:
        out.append(top)
        tf -= top
        top -= 1
    return [*out, min(tf, top)]


def _parts(terms: list[str]) -> list[str]:
    """The tsvector texts of a message's terms: one, or more when they are too many for one tsvector."""
    parts, entries, size = [], [], 0
    for term, tf in Counter(terms).items():
        positions = _positions(tf)
        cost = len(term) + 8 + 2 * len(positions)  # the entry, the lexeme, the position count and positions
        if entries and size + cost > PART_BYTES:
            parts.append(" ".join(entries))
            entries, size = [], 0
        entries.append(f"'{term}':{','.join(map(str, positions))}")  # terms are [a-z0-9_]: nothing to escape
        size += cost
    return [*parts, " ".join(entries)]


def insert_params(tenant: str, tenant_id: int, messages: list[Message]) -> tuple:
    columns: list[list] = [[], [], [], [], []]
    for m in messages:
        terms = rows.index_terms(tenant_id, m.content)
        for part, text in enumerate(_parts(terms)):
            for column, value in zip(columns, (m.conversation_id, m.position, part, len(terms), text)):
                column.append(value)
    return (tenant, *columns)


def index(tx: "WriteTxnPG", messages: list[Message]) -> None:
    """Index new messages of the transaction's tenant."""
    found = tx.cur.execute(TENANT_ID, (tx.tenant,)).fetchone()
    if found is None:
        tx.write(NEW_TENANT, (tx.tenant,))
        found = tx.cur.execute(TENANT_ID, (tx.tenant,)).fetchone()
    tx.write(INSERT, insert_params(tx.tenant, found[0], messages))


async def backfill(conn: psycopg.AsyncConnection) -> None:
    """After migration 10's SCHEMA, in its transaction: index the messages written before it."""
    ids: dict[str, int] = {}
    after: tuple = ("", "", -1)
    while found := await (await conn.execute(_BACKFILL, after)).fetchall():
        for tenant, conversation_id, position, content in found:
            if tenant not in ids:
                await conn.execute(NEW_TENANT, (tenant,))
                ids[tenant] = (await (await conn.execute(TENANT_ID, (tenant,))).fetchone())[0]
            await conn.execute(INSERT, insert_params(tenant, ids[tenant], [
                Message("", conversation_id, "", content, position=position)]))
        after = found[-1][:3]


def query(tenant_id: int, wanted: list[str]) -> tuple[str, list[str]]:
    """The tsquery (any of the terms: a message's terms may span rows) and the terms of `wanted`."""
    terms = [rows.index_term(tenant_id, t) for t in wanted]
    return " | ".join(f"'{t}'" for t in terms), terms


def matches(found: list[tuple], terms: list[str]) -> Matches | None:
    """Matches from the rows of MATCHES: (messages, length, conversation_id, position, length, lexeme, positions)."""
    if not found:
        return None
    slot = {t: i for i, t in enumerate(terms)}
    per_message: dict[tuple[str, int], tuple[int, list[int]]] = {}
    df = [0] * len(terms)
    for _, _, conversation_id, position, length, lexeme, positions in found:
        tfs = per_message.setdefault((conversation_id, position), (length, [0] * len(terms)))[1]
        tfs[slot[lexeme]] = sum(positions)
        df[slot[lexeme]] += 1
    return Matches(found[0][0], found[0][1], df, [(c, p, length, tuple(tfs)) for (c, p), (length, tfs)
                                                  in per_message.items() if all(tfs)])

