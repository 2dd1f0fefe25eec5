"""Claims on SQLite: point reads inline on the read connection, pages on the reader pool, writes through
the writer's connection (SQL at once, as lease rows are: the engine raises before it writes)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ...engine.claims import Claim, Cursor, Run
from ..claim_rows import (CLAIM_COLUMNS, EVIDENCE_COLUMNS, EVIDENCE_INSERT, claim_of, claim_row, claims_list_sql,
                          evidence_of, evidence_rows, run_row, run_of, runs_sql)
from .faults import storage_error

if TYPE_CHECKING:
    from .store import SQLiteStore

_GET = f"SELECT {CLAIM_COLUMNS} FROM claims WHERE tenant = ? AND id = ?"
_EVIDENCE = f"SELECT {EVIDENCE_COLUMNS} FROM claim_evidence WHERE tenant = ? AND claim_id = ? ORDER BY pos"
_INSERT = f"INSERT INTO claims ({CLAIM_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
_INSERT_EVIDENCE = f"INSERT INTO claim_evidence ({', '.join(EVIDENCE_INSERT)}) VALUES ({','.join('?' * len(EVIDENCE_INSERT))})"
_INSERT_RUN = "INSERT INTO claim_runs (tenant, claim_id, created_at, id, status, results) VALUES (?,?,?,?,?,?)"
_SET_STATUS = "UPDATE claims SET status = ?, updated_at = ? WHERE tenant = ? AND id = ?"


class SQLiteClaims:
    """`store.claims`."""

    def __init__(self, store: "SQLiteStore"):
        self._store = store

    async def get(self, tenant: str, claim_id: str) -> Claim | None:
        conn = self._store.read_conn
        try:
            row = conn.execute(_GET, (tenant, claim_id)).fetchone()
            if row is None:
                return None
            # Evidence is written with its claim and never changes: a second statement sees all of it.
            return claim_of(row, [evidence_of(r) for r in conn.execute(_EVIDENCE, (tenant, claim_id))])
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None

    async def exists(self, tenant: str, claim_id: str) -> bool:
        try:
            return self._store.read_conn.execute("SELECT 1 FROM claims WHERE tenant = ? AND id = ?",
                                                 (tenant, claim_id)).fetchone() is not None
        except sqlite3.Error as exc:
            raise storage_error(exc) or exc from None

    async def list(self, tenant: str, limit: int, cursor: Cursor | None, order: str, subject_type: str | None,
                   subject_id: str | None) -> list[Claim]:
        sql, params = claims_list_sql(tenant, limit, cursor, order, subject_type, subject_id, "?")
        return [claim_of(r) for r in await self._store.in_pool(sql, params)]

    async def runs(self, tenant: str, claim_id: str, limit: int, cursor: Cursor | None, order: str) -> list[Run]:
        sql, params = runs_sql(tenant, claim_id, limit, cursor, order, "?")
        return [run_of(r) for r in await self._store.in_pool(sql, params)]


class ClaimWrites:
    """`tx.claims`: the claims of one tenant's mutation."""

    __slots__ = ("_conn", "_tenant")

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant

    def get(self, claim_id: str) -> Claim | None:
        row = self._conn.execute(_GET, (self._tenant, claim_id)).fetchone()
        return None if row is None else claim_of(row)

    def insert(self, claim: Claim) -> None:
        if claim.tenant != self._tenant:
            raise ValueError(f"a mutation of tenant {self._tenant!r} may not write tenant {claim.tenant!r}")
        self._conn.execute(_INSERT, claim_row(claim))
        # One statement per row: no bound-parameter limit, however many items (AgentState §8.4).
        self._conn.executemany(_INSERT_EVIDENCE, evidence_rows(claim))

    def add_run(self, run: Run) -> None:
        self._conn.execute(_INSERT_RUN, run_row(self._tenant, run))
        self._conn.execute(_SET_STATUS, (run.status, run.created_at, self._tenant, run.claim_id))
