"""The state event log on PostgreSQL: reads on the pool, appends inside the writer's transaction (under
the tenant's revision-counter lock, so sequences commit in order across replicas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import StateEventRecord

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

COLUMNS = ("sequence, id, state_key, agent_id, event_type, data, metadata, tags, idempotency_key, created_at,"
           " state_created_at")
NO_BOUND = 2**63 - 1  # bounds left open compare against the largest BIGINT
# Keys are found through the index on their MD5 (migration 5), then compared in full.
_KEY = "tenant = %s AND md5(state_key) = md5(%s) AND state_key = %s"
_LAST = (f"SELECT {COLUMNS} FROM state_events WHERE {_KEY} AND sequence <= %s AND created_at <= %s"
         " ORDER BY sequence DESC LIMIT 1")
_OF_KEY = f"SELECT {COLUMNS} FROM state_events WHERE {_KEY} AND sequence > %s ORDER BY sequence LIMIT %s"
_AFTER = f"SELECT {COLUMNS} FROM state_events WHERE tenant = %s AND sequence > %s ORDER BY sequence LIMIT %s"
# A key's newest event within the bounds: no later event of the key is within them too.
_HEADS = (
    f"SELECT {COLUMNS} FROM state_events e WHERE tenant = %(t)s AND sequence < %(before)s"
    " AND sequence <= %(seq)s AND created_at <= %(time)s"
    " AND NOT EXISTS (SELECT 1 FROM state_events n WHERE n.tenant = %(t)s"
    " AND md5(n.state_key) = md5(e.state_key) AND n.state_key = e.state_key"
    " AND n.sequence > e.sequence AND n.sequence <= %(seq)s AND n.created_at <= %(time)s)"
    " AND event_type = 'upsert' ORDER BY sequence DESC LIMIT %(limit)s"
)
_BY_SEQUENCE = f"SELECT {COLUMNS} FROM state_events WHERE tenant = %s AND sequence = %s"
_BY_ID = f"SELECT {COLUMNS} FROM state_events WHERE tenant = %s AND id = %s"
_APPEND = (f"INSERT INTO state_events (tenant, {COLUMNS})"
           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def _bound(value: int | None) -> int:
    return NO_BOUND if value is None else min(value, NO_BOUND)


def _one(rows: list[tuple]) -> StateEventRecord | None:
    return StateEventRecord(*rows[0]) if rows else None


class PostgresStates:
    """`store.states`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def _rows(self, sql: str, params: tuple | dict) -> list[StateEventRecord]:
        return [StateEventRecord(*r) for r in await self._store.fetch(sql, params)]

    async def last(self, tenant: str, key: str, at_sequence: int | None,
                   at_time: int | None) -> StateEventRecord | None:
        return _one(await self._store.fetch(_LAST, (tenant, key, key, _bound(at_sequence), _bound(at_time))))

    async def of_key(self, tenant: str, key: str, after: int, limit: int) -> list[StateEventRecord]:
        return await self._rows(_OF_KEY, (tenant, key, key, after, limit))

    async def after(self, tenant: str, after: int, limit: int) -> list[StateEventRecord]:
        return await self._rows(_AFTER, (tenant, after, limit))

    async def heads(self, tenant: str, before: int | None, at_sequence: int | None, at_time: int | None,
                    limit: int) -> list[StateEventRecord]:
        return await self._rows(_HEADS, {"t": tenant, "before": _bound(before), "seq": _bound(at_sequence),
                                         "time": _bound(at_time), "limit": limit})

    async def by_sequence(self, tenant: str, sequence: int) -> StateEventRecord | None:
        return _one(await self._store.fetch(_BY_SEQUENCE, (tenant, sequence)))

    async def by_id(self, tenant: str, event_id: str) -> StateEventRecord | None:
        return _one(await self._store.fetch(_BY_ID, (tenant, event_id)))


class StateWritesPG:
    """`tx.states`: the state event log of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def last(self, key: str) -> StateEventRecord | None:
        tx = self._tx
        row = tx.cur.execute(_LAST, (tx.tenant, key, key, NO_BOUND, NO_BOUND)).fetchone()
        return None if row is None else StateEventRecord(*row)

    def append(self, r: StateEventRecord) -> None:
        tx = self._tx
        tx.write(_APPEND, (tx.tenant, r.sequence, r.id, r.state_key, r.agent_id, r.event_type, r.data, r.metadata,
                           r.tags, r.idempotency_key, r.created_at, r.state_created_at))
