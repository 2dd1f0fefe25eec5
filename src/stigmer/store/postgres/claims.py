"""Claims on PostgreSQL: reads on the pool, writes inside the writer's transaction under the tenant's
revision-counter lock (so a verification's run and the claim's status change together, across replicas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.claims import Claim, Cursor, Run
from ..claim_rows import (CLAIM_COLUMNS, EVIDENCE_COLUMNS, EVIDENCE_INSERT, claim_of, claim_row, claims_list_sql,
                          evidence_of, evidence_rows, run_row, run_of, runs_sql)

if TYPE_CHECKING:
    from .store import PostgresStore
    from .writer import WriteTxnPG

_GET = f"SELECT {CLAIM_COLUMNS} FROM claims WHERE tenant = %s AND id = %s"
_EVIDENCE = f"SELECT {EVIDENCE_COLUMNS} FROM claim_evidence WHERE tenant = %s AND claim_id = %s ORDER BY pos"
_INSERT = f"INSERT INTO claims ({CLAIM_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
# Every item in one statement of eleven array parameters, whatever the count (AgentState §8.4).
_TYPES = ("text", "text", "int", "text", "text", "text", "text", "text", "text", "text", "bigint")
_INSERT_EVIDENCE = (f"INSERT INTO claim_evidence ({', '.join(EVIDENCE_INSERT)}) SELECT * FROM unnest("
                    + ", ".join(f"%s::{t}[]" for t in _TYPES) + ")")
_INSERT_RUN = "INSERT INTO claim_runs (tenant, claim_id, created_at, id, status, results) VALUES (%s, %s, %s, %s, %s, %s)"
_SET_STATUS = "UPDATE claims SET status = %s, updated_at = %s WHERE tenant = %s AND id = %s"


class PostgresClaims:
    """`store.claims`."""

    def __init__(self, store: "PostgresStore"):
        self._store = store

    async def get(self, tenant: str, claim_id: str) -> Claim | None:
        async def both(conn) -> Claim | None:
            async with conn.transaction():  # one snapshot for the claim and its evidence
                cur = conn.cursor()
                row = await (await cur.execute(_GET, (tenant, claim_id))).fetchone()
                if row is None:
                    return None
                rows = await (await cur.execute(_EVIDENCE, (tenant, claim_id))).fetchall()
                return claim_of(row, [evidence_of(r) for r in rows])

        return await self._store.run(both)

    async def exists(self, tenant: str, claim_id: str) -> bool:
        return bool(await self._store.fetch("SELECT 1 FROM claims WHERE tenant = %s AND id = %s", (tenant, claim_id)))

    async def list(self, tenant: str, limit: int, cursor: Cursor | None, order: str, subject_type: str | None,
                   subject_id: str | None) -> list[Claim]:
        sql, params = claims_list_sql(tenant, limit, cursor, order, subject_type, subject_id, "%s")
        return [claim_of(r) for r in await self._store.fetch(sql, params)]

    async def runs(self, tenant: str, claim_id: str, limit: int, cursor: Cursor | None, order: str) -> list[Run]:
        sql, params = runs_sql(tenant, claim_id, limit, cursor, order, "%s")
        return [run_of(r) for r in await self._store.fetch(sql, params)]


class ClaimWritesPG:
    """`tx.claims`: the claims of the transaction's tenant."""

    __slots__ = ("_tx",)

    def __init__(self, tx: "WriteTxnPG"):
        self._tx = tx

    def get(self, claim_id: str) -> Claim | None:
        tx = self._tx
        row = tx.cur.execute(_GET, (tx.tenant, claim_id)).fetchone()
        return None if row is None else claim_of(row)

    def insert(self, claim: Claim) -> None:
        tx = self._tx
        tx.check_tenant(claim.tenant)
        tx.write(_INSERT, claim_row(claim))
        tx.write(_INSERT_EVIDENCE, tuple(list(column) for column in zip(*evidence_rows(claim))))

    def add_run(self, run: Run) -> None:
        tx = self._tx
        tx.write(_INSERT_RUN, run_row(tx.tenant, run))
        tx.write(_SET_STATUS, (run.status, run.created_at, tx.tenant, run.claim_id))
