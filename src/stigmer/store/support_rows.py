"""Resolution and health-state rows, and the support layer's reads, as both stores hold and run them
(docs/memory.md, "Support"). Scopes are those of memory_rows: a Statewave tenant sees its rows, unscoped
(None) every row of the Stigmer tenant; an upsert key's tenant value is exact (NULL matches only NULL).
SQL is written with `{m}` for the store's parameter mark."""

from __future__ import annotations

from ..engine import values
from ..engine.memory.resolutions import Resolution
from . import memory_rows
from .memory_rows import EPISODE_COLUMNS, MEMORY_COLUMNS, same_tenant_value, scope

RESOLUTION_COLUMNS = ("id", "tenant", "tenant_id", "subject_id", "session_id", "status", "resolution_summary",
                      "resolved_at", "metadata", "created_at", "updated_at")
_RESOLUTIONS = f"SELECT {', '.join(RESOLUTION_COLUMNS)} FROM resolutions"
RECENTLY_UPDATED = " ORDER BY updated_at DESC, seq"


def resolution_row(r: Resolution) -> tuple:
    return (r.id, r.tenant, r.tenant_id, r.subject_id, r.session_id, r.status, r.resolution_summary, r.resolved_at,
            values.encode(r.metadata).decode(), r.created_at, r.updated_at)


def resolution_of(row) -> Resolution:
    row = list(row)
    row[8] = values.decode(row[8])
    return Resolution(*row)


def insert_resolution_sql(mark: str) -> str:
    return memory_rows.insert_sql("resolutions", RESOLUTION_COLUMNS, mark)


def update_resolution_sql(mark: str) -> str:
    return (f"UPDATE resolutions SET status = {mark}, resolution_summary = {mark}, resolved_at = {mark},"
            f" metadata = {mark}, updated_at = {mark} WHERE tenant = {mark} AND id = {mark}")


def update_resolution_params(r: Resolution) -> tuple:
    return (r.status, r.resolution_summary, r.resolved_at, values.encode(r.metadata).decode(), r.updated_at,
            r.tenant, r.id)


def resolution_sql(tenant: str, tenant_id: str | None, subject_id: str, session_id: str,
                   mark: str) -> tuple[str, list]:
    where, params = same_tenant_value(tenant, tenant_id, subject_id, mark)
    return _RESOLUTIONS + where + f" AND session_id = {mark}", [*params, session_id]


def resolutions_sql(tenant: str, tenant_id: str | None, subject_id: str, status: str | None, limit: int,
                    offset: int, mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    if status is not None:
        where += f" AND status = {mark}"
        params.append(status)
    return _RESOLUTIONS + where + RECENTLY_UPDATED + f" LIMIT {mark} OFFSET {mark}", [*params, limit, offset]


def episode_window_sql(tenant: str, tenant_id: str | None, subject_id: str, limit: int,
                       mark: str) -> tuple[str, list]:
    """The newest `limit` episodes by (created_at, seq) descending, returned ascending (§6.12)."""
    where, params = scope(tenant, tenant_id, subject_id, mark)
    columns = ", ".join(EPISODE_COLUMNS)
    inner = f"SELECT seq, {columns} FROM episodes{where} ORDER BY created_at DESC, seq DESC LIMIT {mark}"
    return f"SELECT {columns} FROM ({inner}) newest ORDER BY created_at, seq", [*params, limit]


def facts_sql(tenant: str, tenant_id: str | None, subject_id: str, limit: int, mark: str) -> tuple[str, list]:
    """The newest `limit` active profile facts (created_at descending, then seq ascending)."""
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return (f"SELECT {', '.join(MEMORY_COLUMNS)} FROM memories{where} AND status = 'active'"
            f" AND kind = 'profile_fact' ORDER BY created_at DESC, seq LIMIT {mark}", [*params, limit])


def health_get_sql(tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    where, params = same_tenant_value(tenant, tenant_id, subject_id, mark)
    return "SELECT state FROM health_states" + where, params


def health_update_sql(tenant: str, tenant_id: str | None, subject_id: str, state: str, score: int, now: int,
                      mark: str) -> tuple[str, list]:
    where, params = same_tenant_value(tenant, tenant_id, subject_id, mark)
    return (f"UPDATE health_states SET state = {mark}, score = {mark}, updated_at = {mark}" + where,
            [state, score, now, *params])


def health_insert_sql(mark: str) -> str:
    return ("INSERT INTO health_states (tenant, tenant_id, subject_id, state, score, updated_at)"
            f" VALUES ({', '.join([mark] * 6)})")


def delete_sql(table: str, tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> tuple[str, list]:
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return f"DELETE FROM {table}" + where, params


# admin (§5.17): compile jobs are rows of the job queue whose JSON payload names subject and tenant

def compile_jobs_where(tenant: str, kind: str, status: str | None, subject_id: str | None, tenant_id: str | None,
                       field, mark: str) -> tuple[str, list]:
    """`field(name)` is the store's SQL for a payload member as text."""
    where, params = f" WHERE tenant = {mark} AND kind = {mark}", [tenant, kind]
    for sql, value in (("status", status), (field("subject_id"), subject_id), (field("tenant_id"), tenant_id)):
        if value is not None:
            where += f" AND {sql} = {mark}"
            params.append(value)
    return where, params


def null_tenant_sql(kind: str, tenant: str, field, mark: str) -> tuple[str, list]:
    return (f"SELECT (SELECT count(*) FROM episodes WHERE tenant = {mark} AND tenant_id IS NULL),"
            f" (SELECT count(*) FROM memories WHERE tenant = {mark} AND tenant_id IS NULL),"
            f" (SELECT count(*) FROM jobs WHERE tenant = {mark} AND kind = {mark} AND {field('tenant_id')} IS NULL)",
            [tenant, tenant, tenant, kind])


def export_sql(tenant: str, tenant_id: str | None, subject_id: str, mark: str) -> list[tuple[str, list]]:
    """A subject's episodes, then its memories, both ascending (created_at, seq) (§5.17 export)."""
    where, params = scope(tenant, tenant_id, subject_id, mark)
    return [memory_rows.episodes_sql(tenant, tenant_id, subject_id, mark),
            (f"SELECT {', '.join(MEMORY_COLUMNS)} FROM memories{where}{memory_rows.ASCENDING}", params)]
