"""Semantic-session rows as both stores hold them (semvec surface, docs/semantic-sessions.md).

A session is one row: its JSON state (counters, histories, anchors, triggers, gate, config) and its
vector as a float64 blob; what changes on nearly every request (pending message, memory revision, view token)
is a small row of its own (`semvec_session_heads`). Memories are rows of their own: the embedding as a float32 blob, `seq` the
creation order within the session, `rev` the session's memory revision at the row's last change (what a
process's in-memory index reads to catch up). Entities are rows keyed by (session, key), `seq` the
insertion order. SQL is written with `{m}` for the store's parameter mark.
"""

from __future__ import annotations

from ..engine.sessions.model import EntityRow, MemoryRow, SessionRow

SESSION_COLUMNS = ("tenant", "session_id", "kind", "state", "vector", "checksum", "created_at")
MEMORY_COLUMNS = ("tenant", "session_id", "id", "seq", "rev", "text", "embedding", "source", "tier", "importance",
                  "access_count", "ts", "created_turn", "last_access_turn", "hash", "meta", "digest")
ENTITY_COLUMNS = ("tenant", "session_id", "key", "seq", "kind", "value", "context", "importance", "access_count",
                  "created_at", "last_access_at")
_SESSION = ", ".join(SESSION_COLUMNS)
_SESSION_H = ", ".join(f"s.{c}" for c in SESSION_COLUMNS) + ", h.heads, h.checksum"
_JOIN = (" FROM semvec_sessions s LEFT JOIN semvec_session_heads h"
         " ON h.tenant = s.tenant AND h.session_id = s.session_id")
_MEMORY = ", ".join(MEMORY_COLUMNS)
_ENTITY = ", ".join(ENTITY_COLUMNS)


def sql(m: str) -> dict[str, str]:
    """Every statement of the session repositories, with `m` as the parameter mark."""
    def marks(n: int) -> str:
        return ", ".join([m] * n)

    upd_m = ", ".join(f"{c} = excluded.{c}" for c in MEMORY_COLUMNS[3:])
    upd_e = ", ".join(f"{c} = excluded.{c}" for c in ENTITY_COLUMNS[3:])
    return {
        "get": f"SELECT {_SESSION_H}{_JOIN} WHERE s.tenant = {m} AND s.session_id = {m}",
        "count": "SELECT count(*) FROM semvec_sessions",
        "list": f"SELECT {_SESSION_H}{_JOIN} WHERE s.tenant = {m} AND s.kind = {m} ORDER BY s.created_at, s.session_id",
        "page": f"SELECT {_SESSION_H}{_JOIN} WHERE s.tenant = {m} AND s.kind = {m}"
                f" ORDER BY s.created_at DESC, s.session_id DESC LIMIT {m}",
        "page_before": f"SELECT {_SESSION_H}{_JOIN} WHERE s.tenant = {m} AND s.kind = {m}"
                       f" AND (s.created_at < {m} OR s.created_at = {m} AND s.session_id < {m})"
                       f" ORDER BY s.created_at DESC, s.session_id DESC LIMIT {m}",
        "heads": f"INSERT INTO semvec_session_heads (tenant, session_id, heads, checksum) VALUES ({m}, {m}, {m}, {m})"
                 " ON CONFLICT (tenant, session_id) DO UPDATE SET heads = excluded.heads, checksum = excluded.checksum",
        "delete_heads": f"DELETE FROM semvec_session_heads WHERE tenant = {m} AND session_id = {m}",
        "insert": f"INSERT INTO semvec_sessions ({_SESSION}) VALUES ({marks(7)})",
        "update": f"UPDATE semvec_sessions SET state = {m}, vector = {m}, checksum = {m} WHERE tenant = {m} AND session_id = {m}",
        "delete": f"DELETE FROM semvec_sessions WHERE tenant = {m} AND session_id = {m}",
        "memories": f"SELECT {_MEMORY} FROM semvec_memories WHERE tenant = {m} AND session_id = {m} ORDER BY seq",
        "memories_after": f"SELECT {_MEMORY} FROM semvec_memories WHERE tenant = {m} AND session_id = {m}"
                          f" AND rev > {m} ORDER BY seq",
        "by_hash": f"SELECT {_MEMORY} FROM semvec_memories WHERE tenant = {m} AND session_id = {m} AND hash = {m}"
                   " ORDER BY seq DESC",
        "put_memory": f"INSERT INTO semvec_memories ({_MEMORY}) VALUES ({marks(len(MEMORY_COLUMNS))})"
                      f" ON CONFLICT (tenant, session_id, id) DO UPDATE SET {upd_m}",
        "stats": f"UPDATE semvec_memories SET tier = {m}, access_count = {m}, last_access_turn = {m}, rev = {m}"
                 f" WHERE tenant = {m} AND session_id = {m} AND id = {m}",
        "clear_memories": f"DELETE FROM semvec_memories WHERE tenant = {m} AND session_id = {m}",
        "entities": f"SELECT {_ENTITY} FROM semvec_entities WHERE tenant = {m} AND session_id = {m} ORDER BY seq",
        "put_entity": f"INSERT INTO semvec_entities ({_ENTITY}) VALUES ({marks(len(ENTITY_COLUMNS))})"
                      f" ON CONFLICT (tenant, session_id, key) DO UPDATE SET {upd_e}",
        "has_entity": f"SELECT 1 FROM semvec_entities WHERE tenant = {m} AND session_id = {m} AND key = {m}",
        "delete_entity": f"DELETE FROM semvec_entities WHERE tenant = {m} AND session_id = {m} AND key = {m}",
        "clear_entities": f"DELETE FROM semvec_entities WHERE tenant = {m} AND session_id = {m}",
    }


def session_row(r: SessionRow) -> tuple:
    return (r.tenant, r.session_id, r.kind, r.state, r.vector, r.checksum, r.created_at)


def session_of(r) -> SessionRow:
    """A session row from the `get`/`list` columns (with its heads), or from SESSION_COLUMNS alone (heads not
    read: `heads_checksum` is "", and a Work opened on it reads the whole row again)."""
    heads = (r[7] or "{}", r[8] or "") if len(r) > 7 else ("{}", "")
    return SessionRow(r[0], r[1], r[2], r[3], bytes(r[4]) if r[4] is not None else None, r[5], r[6], *heads)


def memory_row(r: MemoryRow) -> tuple:
    return (r.tenant, r.session_id, r.id, r.seq, r.rev, r.text, r.embedding, r.source, r.tier, r.importance,
            r.access_count, r.ts, r.created_turn, r.last_access_turn, r.hash, r.meta, r.digest)


def memory_of(r) -> MemoryRow:
    r = list(r)
    r[6] = bytes(r[6])
    return MemoryRow(*r)


def entity_row(r: EntityRow) -> tuple:
    return (r.tenant, r.session_id, r.key, r.seq, r.kind, r.value, r.context, r.importance, r.access_count,
            r.created_at, r.last_access_at)


def entity_of(r) -> EntityRow:
    return EntityRow(*r)
