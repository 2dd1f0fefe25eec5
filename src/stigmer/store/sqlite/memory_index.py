"""The memory search index and vectors on SQLite (engine/memory/search.py, docs/memory.md "Search"), migration 16.

Each active memory has a narrow row in `memory_index_rows` (scope columns, `created_at`, its length in tokens)
whose `seq` is the memory's own and the rowid of its index terms in the FTS5 table `memory_index_terms`. Terms
carry the id of their (Stigmer tenant, subject) in `memory_index_subjects` as prefix, so a term's postings are
one subject's and document frequencies are counted over a subject's rows only. Vectors (float32 bytes, one per
memory and embedder) are in `memory_vectors`. A row's `repeats` lists its terms that occur more than once
("term count ..."), so a search reads term frequencies from the postings and the narrow rows alone. Rows are written in the memory insert's transaction (Python
computes the terms); triggers drop them when a memory stops being active or is deleted, whatever the path.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import TYPE_CHECKING, Callable

import numpy as np

from ...engine.memory.search import TermMatches
from ...engine.memory import Episode, MemoryRecord
from .. import memory_index_rows as rows
from .. import memory_rows

if TYPE_CHECKING:
    from .store import SQLiteStore

SCHEMA = """
CREATE TABLE memory_index_subjects (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    UNIQUE (tenant, subject_id)
);
CREATE TABLE memory_index_rows (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    tenant_id TEXT,
    subject_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    length INTEGER NOT NULL,
    repeats TEXT NOT NULL
);
CREATE INDEX memory_index_rows_scope ON memory_index_rows (tenant, subject_id, kind);
CREATE VIRTUAL TABLE memory_index_terms USING fts5 (terms, tokenize = "ascii tokenchars '_'", detail = none);
CREATE TABLE memory_vectors (
    seq INTEGER NOT NULL,
    embedder TEXT NOT NULL,
    tenant TEXT NOT NULL,
    tenant_id TEXT,
    subject_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (seq, embedder)
);
CREATE INDEX memory_vectors_scope ON memory_vectors (tenant, subject_id, embedder);
CREATE TRIGGER memory_index_inactive AFTER UPDATE OF status ON memories
    WHEN old.status = 'active' AND new.status <> 'active' BEGIN
    DELETE FROM memory_index_terms WHERE rowid = old.seq;
    DELETE FROM memory_index_rows WHERE seq = old.seq;
    DELETE FROM memory_vectors WHERE seq = old.seq;
END;
CREATE TRIGGER memory_index_deleted AFTER DELETE ON memories BEGIN
    DELETE FROM memory_index_terms WHERE rowid = old.seq;
    DELETE FROM memory_index_rows WHERE seq = old.seq;
    DELETE FROM memory_vectors WHERE seq = old.seq;
END;
"""
_SUBJECT = "SELECT id FROM memory_index_subjects WHERE tenant = ? AND subject_id = ?"
_NEW_SUBJECT = "INSERT INTO memory_index_subjects (tenant, subject_id) VALUES (?, ?) RETURNING id"
_SEQS = ("SELECT seq, id FROM memories WHERE tenant = ? AND status = 'active'"
         " AND id IN (SELECT value FROM json_each(?))")
_INSERT_ROW = ("INSERT INTO memory_index_rows (seq, tenant, tenant_id, subject_id, kind, created_at, length,"
               " repeats) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
# repeats as bytes: its text is ASCII, and a bytes value skips the decoding of ~440 strings a task
_META = ("SELECT seq, created_at, length, CAST(repeats AS BLOB) FROM memory_index_rows"
         " WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq")
_INSERT_TERMS = "INSERT INTO memory_index_terms (rowid, terms) VALUES (?, ?)"
_POSTINGS = "SELECT rowid FROM memory_index_terms WHERE memory_index_terms MATCH ?"
_PUT_VECTOR = ("INSERT OR REPLACE INTO memory_vectors (seq, embedder, tenant, tenant_id, subject_id, kind, created_at,"
               " vector) SELECT seq, ?, tenant, tenant_id, subject_id, kind, created_at, ? FROM memories"
               " WHERE tenant = ? AND id = ? AND status = 'active'")
# CROSS JOIN keeps json_each outermost: one primary-key lookup per seq (left to itself, the planner walks the
# tenant's whole active index and tests each row against the list).
_BY_SEQ = (f"SELECT seq, {', '.join('m.' + c for c in memory_rows.MEMORY_COLUMNS)} FROM json_each(?) AS j"
           " CROSS JOIN memories AS m ON m.seq = j.value WHERE m.tenant = ? AND m.status = 'active'")
_BACKFILL = "SELECT seq, id, tenant, tenant_id, subject_id, kind, content, created_at FROM memories" \
            " WHERE status = 'active' AND seq > ? ORDER BY seq LIMIT 500"


def _prefix(conn: sqlite3.Connection, tenant: str, subject_id: str) -> int:
    found = conn.execute(_SUBJECT, (tenant, subject_id)).fetchone()
    return found[0] if found is not None else conn.execute(_NEW_SUBJECT, (tenant, subject_id)).fetchone()[0]


def _add(conn: sqlite3.Connection, items: list[tuple[int, str, str | None, str, str, str, int]]) -> None:
    """Index (seq, tenant, tenant_id, subject_id, kind, content, created_at) rows."""
    prefixes: dict[tuple[str, str], int] = {}
    index_rows, term_rows = [], []
    for seq, tenant, tenant_id, subject_id, kind, content, created_at in items:
        key = (tenant, subject_id)
        if key not in prefixes:
            prefixes[key] = _prefix(conn, tenant, subject_id)
        found = rows.term_list(prefixes[key], content)
        index_rows.append((seq, tenant, tenant_id, subject_id, kind, created_at, len(found), rows.repeats(found)))
        term_rows.append((seq, " ".join(found)))
    conn.executemany(_INSERT_ROW, index_rows)
    conn.executemany(_INSERT_TERMS, term_rows)


def index(conn: sqlite3.Connection, tenant: str, memories: list[MemoryRecord]) -> None:
    """Index the active ones among memories just inserted (inside their mutation)."""
    active = [m for m in memories if m.status == "active"]
    if not active:
        return
    seq = dict((i, s) for s, i in conn.execute(_SEQS, (tenant, json.dumps([m.id for m in active]))))
    _add(conn, [(seq[m.id], tenant, m.tenant_id, m.subject_id, m.kind, m.content, m.created_at) for m in active])


def backfill(conn: sqlite3.Connection) -> None:
    """After migration 16's SCHEMA, in its transaction: index the active memories written before it."""
    after = 0
    while found := conn.execute(_BACKFILL, (after,)).fetchall():
        _add(conn, [(seq, tenant, tenant_id, subject_id, kind, content, created_at)
                    for seq, _, tenant, tenant_id, subject_id, kind, content, created_at in found])
        after = found[-1][0]


def lexical(conn: sqlite3.Connection, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
            wanted: list[str], every: bool = True) -> TermMatches | None:
    """The scope's statistics and its memories holding every token of `wanted` (any of them, if not `every`),
    in one read transaction. Each term's holders come from its postings (a term's document frequency is their
    count); a holder's term frequency is 1 unless its row's `repeats` says more."""
    conn.execute("BEGIN")
    try:
        found = conn.execute(_SUBJECT, (tenant, subject_id)).fetchone()
        if found is None:
            return None
        terms = [rows.index_term(found[0], t) for t in wanted]
        where, params = rows.scope(tenant, tenant_id, subject_id, [kind] if kind is not None else None, "?")
        n, length = conn.execute(f"SELECT count(*), total(length) FROM memory_index_rows WHERE {where}",
                                 params).fetchone()
        # A term's postings are its subject's rows already (the prefix): only a narrower scope filters them.
        narrower = tenant_id is not None or kind is not None
        in_scope = (rows.seq_column(conn.execute(f"SELECT seq FROM memory_index_rows WHERE {where}", params))
                    if narrower else None)
        holders: list[np.ndarray] = []
        for term in terms:
            posted = rows.seq_column(conn.execute(_POSTINGS, (f'"{term}"',)))
            holders.append(np.intersect1d(posted, in_scope, assume_unique=True) if narrower else posted)
            if every and not len(holders[-1]):
                return None
        chosen = (functools.reduce(np.intersect1d, holders) if every else np.unique(np.concatenate(holders)))
        meta = conn.execute(_META, (json.dumps(chosen.tolist()),)).fetchall() if len(chosen) else []
    finally:
        conn.execute("COMMIT")
    return rows.term_matches(n, int(length), meta, terms, holders)


def newest_sql(tenant: str, tenant_id: str | None, subject_id: str, kinds: list[str] | None,
               limit: int) -> tuple[str, tuple]:
    """The order is picked over the narrow index rows (one row per active memory; with one kind, straight from
    the index memory_index_rows_newest, migration 23): a compile's memories share one created_at, so the wide
    rows' order would sort the whole subject."""
    where, params = rows.scope(tenant, tenant_id, subject_id, kinds, "?")
    return (f"{rows.SELECT_MEMORIES} WHERE seq IN (SELECT seq FROM memory_index_rows WHERE {where}"
            f"{memory_rows.NEWEST_FIRST} LIMIT ?) AND status = 'active'{memory_rows.NEWEST_FIRST}", (*params, limit))


def by_seq(conn: sqlite3.Connection, tenant: str, seqs: list[int]) -> dict[int, MemoryRecord]:
    return rows.by_seq(conn.execute(_BY_SEQ, (json.dumps(seqs), tenant)).fetchall()) if seqs else {}


class SQLiteMemoryIndex:
    """`store.memory_index`: reads for search and context."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def lexical(self, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                      wanted: list[str], every: bool = True) -> TermMatches | None:
        return await self._store.in_pool_do(lambda conn: lexical(conn, tenant, tenant_id, subject_id, kind, wanted,
                                                                 every))

    async def lexical_ranking(self, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                              wanted: list[str], rank: Callable[[TermMatches | None], list[tuple[int, float]]],
                              first: int, recent: tuple[list[str], int] | None = None
                              ) -> tuple[list[tuple[int, float]], dict[int, MemoryRecord], list[MemoryRecord]]:
        """`rank` (the engine's) of the any-term lexical matches (None without terms), the active records of
        its first `first` seqs, and the `newest` (kinds, limit) of `recent` ([] without): one reader call, where
        a search, a read of its hits and the newest were three hops (a hop costs about as much as a read)."""
        def work(conn: sqlite3.Connection) -> tuple[list[tuple[int, float]], dict[int, MemoryRecord], list]:
            ranking = rank(lexical(conn, tenant, tenant_id, subject_id, kind, wanted, False) if wanted else None)
            latest = []
            if recent is not None:
                sql, params = newest_sql(tenant, tenant_id, subject_id, *recent)
                latest = [memory_rows.memory_of(r) for r in conn.execute(sql, params).fetchall()]
            return ranking, by_seq(conn, tenant, [seq for seq, _ in ranking[:first]]), latest

        return await self._store.in_pool_do(work)

    async def newest(self, tenant: str, tenant_id: str | None, subject_id: str, kinds: list[str] | None,
                     limit: int) -> list[MemoryRecord]:
        sql, params = newest_sql(tenant, tenant_id, subject_id, kinds, limit)
        return [memory_rows.memory_of(r) for r in await self._store.in_pool(sql, params)]

    async def by_seq(self, tenant: str, seqs: list[int]) -> dict[int, MemoryRecord]:
        """The active memories among these seqs."""
        if not seqs:
            return {}
        return await self._store.in_pool_do(lambda conn: by_seq(conn, tenant, seqs))

    async def vectors(self, tenant: str, tenant_id: str | None, subject_id: str, kind: str | None,
                      embedder: str) -> list[tuple[int, int, bytes]]:
        where, params = rows.scope(tenant, tenant_id, subject_id, [kind] if kind is not None else None, "?")
        return await self._store.in_pool(
            f"SELECT seq, created_at, vector FROM memory_vectors WHERE {where} AND embedder = ? ORDER BY seq",
            (*params, embedder))

    async def newest_episodes(self, tenant: str, tenant_id: str | None, subject_id: str, limit: int) -> list[Episode]:
        """The newest `limit` episodes by (created_at, seq), in ascending order (§6.12 windows)."""
        where, params = memory_rows.scope(tenant, tenant_id, subject_id, "?")
        sql = (f"SELECT {', '.join(memory_rows.EPISODE_COLUMNS)} FROM episodes{where}"
               + rows.EPISODE_WINDOW.format(m="?"))
        return [memory_rows.episode_of(r) for r in reversed(await self._store.in_pool(sql, (*params, limit)))]

    async def episodes_by_id(self, tenant: str, ids: list[str]) -> dict[str, Episode]:
        if not ids:
            return {}
        sql = (f"SELECT {', '.join(memory_rows.EPISODE_COLUMNS)} FROM episodes WHERE tenant = ?"
               " AND id IN (SELECT value FROM json_each(?))")
        found = [memory_rows.episode_of(r) for r in await self._store.in_pool(sql, (tenant, json.dumps(ids)))]
        return {e.id: e for e in found}


class MemoryIndexWrites:
    """`tx.memory_index`: vectors of one Stigmer tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def put_vectors(self, embedder: str, vectors: list[tuple[str, bytes]]) -> int:
        """Store (memory id, float32 bytes) for the memories still active; the count stored."""
        stored = 0
        for memory_id, blob in vectors:
            stored += self._conn.execute(_PUT_VECTOR, (embedder, blob, self._tenant, memory_id)).rowcount
        return stored
