"""The memory search index and vectors on PostgreSQL (engine/memory/search.py, docs/memory.md "Search"), migration 16.

Each active memory has one `memory_index` row: scope columns, `created_at`, its length in tokens, its index terms
as text (term frequencies are counted from it) and their distinct set as a tsvector under a GIN index (terms
computed in Python, [a-z0-9_] only: PostgreSQL's parser never sees user text). Vectors (float32 bytes, one per
memory and embedder) are in `memory_vectors`. Both reference the memory with ON DELETE CASCADE, and a trigger
drops them when a memory stops being active: whatever path supersedes or deletes, the index stays exact.
A search is one statement (one snapshot): the scope's count, total length and document frequencies, and the
rows holding every term.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import psycopg

from ...engine.memory.search import TermMatches
from ...engine.memory import Episode, MemoryRecord
from .. import memory_index_rows as rows
from .. import memory_rows

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

SCHEMA = """
CREATE TABLE memory_index (
    memory_seq BIGINT PRIMARY KEY REFERENCES memories (seq) ON DELETE CASCADE,
    tenant TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C",
    subject_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    length INTEGER NOT NULL,
    terms TEXT NOT NULL,
    lexemes TSVECTOR NOT NULL
);
CREATE INDEX memory_index_scope ON memory_index (tenant, subject_id, kind);
CREATE INDEX memory_index_lexemes ON memory_index USING gin (lexemes);
CREATE TABLE memory_vectors (
    memory_seq BIGINT NOT NULL REFERENCES memories (seq) ON DELETE CASCADE,
    embedder TEXT NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C",
    subject_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (memory_seq, embedder)
);
CREATE INDEX memory_vectors_scope ON memory_vectors (tenant, subject_id, embedder);
CREATE FUNCTION memory_index_inactive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memory_index WHERE memory_seq = NEW.seq;
    DELETE FROM memory_vectors WHERE memory_seq = NEW.seq;
    RETURN NULL;
END $$;
CREATE TRIGGER memory_index_inactive AFTER UPDATE OF status ON memories
    FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status <> 'active') EXECUTE FUNCTION memory_index_inactive();
"""
PREFIX = 0  # one index for all subjects: the scope columns select a subject's rows, not the terms
_INSERT = ("INSERT INTO memory_index (memory_seq, tenant, tenant_id, subject_id, kind, created_at, length, terms,"
           " lexemes) SELECT m.seq, m.tenant, m.tenant_id, m.subject_id, m.kind, m.created_at, u.n, u.t, u.v::tsvector"
           " FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[]) AS u(id, n, t, v)"
           " JOIN memories m ON m.tenant = %s AND m.id = u.id AND m.status = 'active'")
_PUT_VECTORS = ("INSERT INTO memory_vectors (memory_seq, embedder, tenant, tenant_id, subject_id, kind, created_at,"
                " vector) SELECT m.seq, %s, m.tenant, m.tenant_id, m.subject_id, m.kind, m.created_at, u.v"
                " FROM unnest(%s::text[], %s::bytea[]) AS u(id, v)"
                " JOIN memories m ON m.tenant = %s AND m.id = u.id AND m.status = 'active'"
                " ON CONFLICT (memory_seq, embedder) DO UPDATE SET vector = EXCLUDED.vector")
_STORED = ("SELECT count(*) FROM memory_vectors v JOIN memories m ON m.seq = v.memory_seq"
           " WHERE v.embedder = %s AND m.tenant = %s AND m.id = ANY(%s::text[])")
_BY_SEQ = (f"SELECT seq, {', '.join(memory_rows.MEMORY_COLUMNS)} FROM memories"
           " WHERE tenant = %s AND status = 'active' AND seq = ANY(%s::bigint[])")


def insert_params(tenant: str, memories: list[tuple[str, str]]) -> tuple:
    """(id, content) pairs of one Stigmer tenant as the columns of _INSERT."""
    ids, lengths, texts, lexemes = [], [], [], []
    for memory_id, content in memories:
        found = rows.term_list(PREFIX, content)
        ids.append(memory_id)
        lengths.append(len(found))
        texts.append(" ".join(found))
        lexemes.append(" ".join(f"'{t}'" for t in dict.fromkeys(found)))  # [a-z0-9_]: nothing to escape
    return ids, lengths, texts, lexemes, tenant


def index(tx: "WriteTxnPG", memories: list[MemoryRecord]) -> None:
    """Index the active ones among memories just inserted by the transaction."""
    active = [(m.id, m.content) for m in memories if m.status == "active"]
    if active:
        tx.write(_INSERT, insert_params(tx.tenant, active))


async def backfill(conn: psycopg.AsyncConnection) -> None:
    """After migration 16's SCHEMA, in its transaction: index the active memories written before it."""
    after = 0
    while found := await (await conn.execute(
            "SELECT seq, id, tenant, content FROM memories WHERE status = 'active' AND seq > %s ORDER BY seq LIMIT 500",
            (after,))).fetchall():
        by_tenant: dict[str, list[tuple[str, str]]] = {}
        for _, memory_id, tenant, content in found:
            by_tenant.setdefault(tenant, []).append((memory_id, content))
        for tenant, items in by_tenant.items():
            await conn.execute(_INSERT, insert_params(tenant, items))
        after = found[-1][0]


def lexical_sql(tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                terms: list[str], every: bool = True) -> tuple[str, list]:
    where, params = rows.scope(tenant, tenant_id, subject_id, [kind] if kind is not None else None, "%s")
    frequencies = ", ".join(f"count(*) FILTER (WHERE lexemes @@ %s::tsquery) AS d{i}" for i in range(len(terms)))
    sql = (f"WITH s AS (SELECT memory_seq, created_at, length, terms, lexemes FROM memory_index WHERE {where}),"
           f" st AS (SELECT count(*) AS n, coalesce(sum(length), 0) AS l, {frequencies} FROM s)"
           " SELECT st.*, s.memory_seq, s.created_at, s.length, s.terms FROM st LEFT JOIN s ON s.lexemes @@ %s::tsquery")
    return sql, [*params, *(f"'{t}'" for t in terms), (" & " if every else " | ").join(f"'{t}'" for t in terms)]


class PostgresMemoryIndex:
    """`store.memory_index`: reads for search and context."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def lexical(self, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                      wanted: list[str], every: bool = True) -> TermMatches | None:
        terms = [rows.index_term(PREFIX, t) for t in wanted]
        sql, params = lexical_sql(tenant, tenant_id, subject_id, kind, terms, every)
        found = await self._store.fetch(sql, tuple(params))
        n, length, df = found[0][0], found[0][1], list(found[0][2:2 + len(terms)])
        if not any(df) or (every and not all(df)):
            return None
        width = 2 + len(terms)
        return rows.found_matches(n, int(length), df, [r[width:] for r in found if r[width] is not None], terms)

    async def lexical_ranking(self, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                              wanted: list[str], rank: Callable[[TermMatches | None], list[tuple[int, float]]],
                              first: int, recent: tuple[list[str], int] | None = None
                              ) -> tuple[list[tuple[int, float]], dict[int, MemoryRecord], list[MemoryRecord]]:
        """`rank` (the engine's) of the any-term lexical matches (None without terms), the active records of
        its first `first` seqs, and the `newest` (kinds, limit) of `recent` ([] without): statements one after
        another, as there is no reader thread to hop to here."""
        ranking = rank(await self.lexical(tenant, tenant_id, subject_id, kind, wanted, False) if wanted else None)
        latest = await self.newest(tenant, tenant_id, subject_id, *recent) if recent is not None else []
        return ranking, await self.by_seq(tenant, [seq for seq, _ in ranking[:first]]), latest

    async def newest(self, tenant: str, tenant_id: str | None, subject_id: str, kinds: list[str] | None,
                     limit: int) -> list[MemoryRecord]:
        sql, params = rows.newest_sql(tenant, tenant_id, subject_id, kinds, limit, "%s")
        return [memory_rows.memory_of(r) for r in await self._store.fetch(sql, tuple(params))]

    async def by_seq(self, tenant: str, seqs: list[int]) -> dict[int, MemoryRecord]:
        """The active memories among these seqs."""
        if not seqs:
            return {}
        return rows.by_seq(await self._store.fetch(_BY_SEQ, (tenant, seqs)))

    async def vectors(self, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                      embedder: str) -> list[tuple[int, int, bytes]]:
        where, params = rows.scope(tenant, tenant_id, subject_id, [kind] if kind is not None else None, "%s")
        found = await self._store.fetch(f"SELECT memory_seq, created_at, vector FROM memory_vectors WHERE {where}"
                                        " AND embedder = %s ORDER BY memory_seq", (*params, embedder))
        return [(seq, created_at, bytes(vector)) for seq, created_at, vector in found]

    async def newest_episodes(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        """The newest `limit` episodes by (created_at, seq), in ascending order (§6.12 windows)."""
        where, params = memory_rows.scope(tenant, tenant_id, subject_id, "%s")
        sql = (f"SELECT {', '.join(memory_rows.EPISODE_COLUMNS)} FROM episodes{where}"
               + rows.EPISODE_WINDOW.format(m="%s"))
        return [memory_rows.episode_of(r) for r in reversed(await self._store.fetch(sql, (*params, limit)))]

    async def episodes_by_id(self, tenant: str, ids: list[str]) -> dict[str, Episode]:
        if not ids:
            return {}
        sql = (f"SELECT {', '.join(memory_rows.EPISODE_COLUMNS)} FROM episodes WHERE tenant = %s"
               " AND id = ANY(%s::text[])")
        found = [memory_rows.episode_of(r) for r in await self._store.fetch(sql, (tenant, ids))]
        return {e.id: e for e in found}


class MemoryIndexWritesPG:
    """`tx.memory_index`: vectors of one Stigmer tenant's mutation."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def put_vectors(self, embedder: str, vectors: list[tuple[str, bytes]]) -> int:
        """Store (memory id, float32 bytes) for the memories still active; the count stored."""
        if not vectors:
            return 0
        ids = [i for i, _ in vectors]
        self._tx.write(_PUT_VECTORS, (embedder, ids, [b for _, b in vectors], self._tx.tenant))
        return self._tx.cur.execute(_STORED, (embedder, self._tx.tenant, ids)).fetchone()[0]
