"""Episode and memory rows as both stores hold them (Statewave memory engine, docs/memory.md).

`tenant` is the Stigmer tenant, `tenant_id` the Statewave tenant (NULL: written unscoped). `seq` is the
creation sequence that breaks timestamp ties (§6.12). JSON members are compact JSON text; timestamps are
integer microseconds. SQL is written with `{m}` for the store's parameter mark.
"""

from __future__ import annotations

from ..engine import values
from ..engine.memory import Episode, MemoryRecord

EPISODE_COLUMNS = ("id", "tenant", "tenant_id", "subject_id", "source", "type", "payload", "metadata", "provenance",
                   "session_id", "created_at", "last_compiled_at")
MEMORY_COLUMNS = ("id", "tenant", "tenant_id", "subject_id", "kind", "content", "summary", "confidence", "valid_from",
                  "valid_to", "source_episode_ids", "metadata", "status", "created_at", "updated_at")
_EPISODES = f"SELECT {', '.join(EPISODE_COLUMNS)} FROM episodes"
_MEMORIES = f"SELECT {', '.join(MEMORY_COLUMNS)} FROM memories"
ASCENDING = " ORDER BY created_at, seq"
NEWEST_FIRST = " ORDER BY created_at DESC, seq"


def insert_sql(table: str, columns: tuple[str, ...], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _json(value) -> str:
    return values.encode(value).decode()


def scope(tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    """The WHERE clause of a request's scope (§3.2): a Statewave tenant sees its rows, unscoped sees all of
    the Stigmer tenant's rows."""
    sql, params = f" WHERE tenant = {mark} AND subject_id = {mark}", [tenant, subject_id]
    if tenant_id is not None:
        sql += f" AND tenant_id = {mark}"
        params.append(tenant_id)
    return sql, params


def same_tenant_value(tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    """The rows of exactly this Statewave tenant value: NULL matches only NULL (§6.3)."""
    if tenant_id is not None:
        return scope(tenant, tenant_id, subject_id, mark)
    return f" WHERE tenant = {mark} AND subject_id = {mark} AND tenant_id IS NULL", [tenant, subject_id]


def episodes_sql(tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return _EPISODES + where + ASCENDING, params


def uncompiled_sql(tenant: str, tenant_id: str | None, subject_id: str, limit: int, mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return _EPISODES + where + f" AND last_compiled_at IS NULL{ASCENDING} LIMIT {mark}", [*params, limit]


def still_uncompiled_sql(tenant: str, mark: str, many: str) -> tuple[str, list]:
    """`many` is the dialect's list test of the ids: ` IN (?, ?, …)` or ` = ANY(%s::text[])`."""
    return f"SELECT id FROM episodes WHERE tenant = {mark} AND last_compiled_at IS NULL AND id{many}", [tenant]


def memories_sql(tenant: str, tenant_id: str | None, subject_id: str, status: str | None,
                 mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    if status is not None:
        where += f" AND status = {mark}"
        params.append(status)
    return _MEMORIES + where + NEWEST_FIRST, params


def newest_active_sql(tenant: str, tenant_id: str | None, subject_id: str, limit: int,
                      mark: str) -> tuple[str, list]:
    """The newest `limit` active memories of one tenant value, then in ascending order (§6.3, §6.12)."""
    where, params = same_tenant_value(tenant, tenant_id, subject_id, mark)
    inner = (f"SELECT seq, {', '.join(MEMORY_COLUMNS)} FROM memories{where} AND status = 'active'"
             f"{NEWEST_FIRST} LIMIT {mark}")
    return f"SELECT {', '.join(MEMORY_COLUMNS)} FROM ({inner}) newest{ASCENDING}", [*params, limit]


def episode_row(e: Episode) -> tuple:
    return (e.id, e.tenant, e.tenant_id, e.subject_id, e.source, e.type, _json(e.payload), _json(e.metadata),
            _json(e.provenance), e.session_id, e.created_at, e.last_compiled_at)


def episode_of(r) -> Episode:
    r = list(r)
    for i in (6, 7, 8):
        r[i] = values.decode(r[i])
    return Episode(*r)


def memory_row(m: MemoryRecord) -> tuple:
    return (m.id, m.tenant, m.tenant_id, m.subject_id, m.kind, m.content, m.summary, m.confidence, m.valid_from,
            m.valid_to, _json(m.source_episode_ids), _json(m.metadata), m.status, m.created_at, m.updated_at)


def memory_of(r) -> MemoryRecord:
    r = list(r)
    r[10], r[11] = values.decode(r[10]), values.decode(r[11])
    return MemoryRecord(*r)


def scope_all(tenant: str, tenant_id: str | None, mark: str) -> tuple[str, list]:
    """The WHERE clause of a request's scope across its subjects."""
    if tenant_id is None:
        return f" WHERE tenant = {mark}", [tenant]
    return f" WHERE tenant = {mark} AND tenant_id = {mark}", [tenant, tenant_id]


def window_sql(table: str, tenant: str, tenant_id: str | None, subject_id: str, limit: int, offset: int,
               newest_first: bool, mark: str) -> tuple[str, list]:
    """One timeline window (§5.9): rows [offset, offset+limit) ascending, or counted back from the newest
    (then put back in ascending order by the caller: the rows come newest first)."""
    where, params = scope(tenant, tenant_id, subject_id, mark)
    order = " ORDER BY created_at DESC, seq DESC" if newest_first else ASCENDING
    select = _EPISODES if table == "episodes" else _MEMORIES
    return select + where + order + f" LIMIT {mark} OFFSET {mark}", [*params, limit, offset]


def count_sql(table: str, tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return f"SELECT count(*) FROM {table}{where}", params


def subjects_sql(tenant: str, tenant_id: str | None, limit: int, offset: int, mark: str,
                 collate: str = "") -> tuple[tuple[str, list], tuple[str, list]]:
    """The page of subjects in scope by code point (§5.10) with their counts, and the count of all of them.
    `collate` makes PostgreSQL compare by code point (SQLite's BINARY already does for UTF-8)."""
    where, params = scope_all(tenant, tenant_id, mark)
    both = (f"SELECT subject_id, count(*) AS e, 0 AS m FROM episodes{where} GROUP BY subject_id UNION ALL "
            f"SELECT subject_id, 0 AS e, count(*) AS m FROM memories{where} GROUP BY subject_id")
    page = (f"SELECT subject_id, sum(e), sum(m) FROM ({both}) s GROUP BY subject_id"
            f" ORDER BY subject_id{collate} LIMIT {mark} OFFSET {mark}")
    total = f"SELECT count(DISTINCT subject_id) FROM ({both}) s"
    return (page, [*params, *params, limit, offset]), (total, [*params, *params])


def delete_sql(table: str, tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return f"DELETE FROM {table}{where}", params
