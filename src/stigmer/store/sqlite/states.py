"""The state event log on SQLite: reads in the reader pool, appends through the writer's connection.

An append is SQL written at once (entry writes are held by the group); the engine checks leases and
encodes before it appends, so a refused write costs the group no rerun (writer.py `_Rerun`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..base import StateEventRecord

if TYPE_CHECKING:
    from .store import SQLiteStore

COLUMNS = ("sequence, id, state_key, agent_id, event_type, data, metadata, tags, idempotency_key, created_at,"
           " state_created_at")
NO_BOUND = 2**63 - 1  # bounds left open compare against the largest integer SQLite holds
_LAST = (f"SELECT {COLUMNS} FROM state_events WHERE tenant=? AND state_key=? AND sequence<=? AND created_at<=?"
         " ORDER BY sequence DESC LIMIT 1")
_OF_KEY = (f"SELECT {COLUMNS} FROM state_events WHERE tenant=? AND state_key=? AND sequence>?"
           " ORDER BY sequence LIMIT ?")
_AFTER = f"SELECT {COLUMNS} FROM state_events WHERE tenant=? AND sequence>? ORDER BY sequence LIMIT ?"
# A key's newest event within the bounds: no later event of the key is within them too.
_HEADS = (
    f"SELECT {COLUMNS} FROM state_events e WHERE tenant=?1 AND sequence<?2 AND sequence<=?3 AND created_at<=?4"
    " AND NOT EXISTS (SELECT 1 FROM state_events n WHERE n.tenant=?1 AND n.state_key=e.state_key"
    " AND n.sequence>e.sequence AND n.sequence<=?3 AND n.created_at<=?4)"
    " AND event_type='upsert' ORDER BY sequence DESC LIMIT ?5"
)
_BY_SEQUENCE = f"SELECT {COLUMNS} FROM state_events WHERE tenant=? AND sequence=?"
_BY_ID = f"SELECT {COLUMNS} FROM state_events WHERE tenant=? AND id=?"
_APPEND = f"INSERT INTO state_events (tenant, {COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"


def _bound(value: int | None) -> int:
    return NO_BOUND if value is None else min(value, NO_BOUND)


def _one(rows: list[tuple]) -> StateEventRecord | None:
    return StateEventRecord(*rows[0]) if rows else None


class SQLiteStates:
    """`store.states`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def last(self, tenant: str, key: str, at_sequence: int | None,
                   at_time: int | None) -> StateEventRecord | None:
        return _one(await self._store.in_pool(_LAST, (tenant, key, _bound(at_sequence), _bound(at_time))))

    async def of_key(self, tenant: str, key: str, after: int, limit: int) -> list[StateEventRecord]:
        return [StateEventRecord(*r) for r in await self._store.in_pool(_OF_KEY, (tenant, key, after, limit))]

    async def after(self, tenant: str, after: int, limit: int) -> list[StateEventRecord]:
        return [StateEventRecord(*r) for r in await self._store.in_pool(_AFTER, (tenant, after, limit))]

    async def heads(self, tenant: str, before: int | None, at_sequence: int | None, at_time: int | None,
                    limit: int) -> list[StateEventRecord]:
        rows = await self._store.in_pool(_HEADS, (tenant, _bound(before), _bound(at_sequence), _bound(at_time), limit))
        return [StateEventRecord(*r) for r in rows]

    async def by_sequence(self, tenant: str, sequence: int) -> StateEventRecord | None:
        return _one(await self._store.in_pool(_BY_SEQUENCE, (tenant, sequence)))

    async def by_id(self, tenant: str, event_id: str) -> StateEventRecord | None:
        return _one(await self._store.in_pool(_BY_ID, (tenant, event_id)))


class StateWrites:
    """`tx.states`: the state event log of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def last(self, key: str) -> StateEventRecord | None:
        return _one(self._conn.execute(_LAST, (self._tenant, key, NO_BOUND, NO_BOUND)).fetchall())

    def append(self, r: StateEventRecord) -> None:
        self._conn.execute(_APPEND, (self._tenant, r.sequence, r.id, r.state_key, r.agent_id, r.event_type, r.data,
                                     r.metadata, r.tags, r.idempotency_key, r.created_at, r.state_created_at))
