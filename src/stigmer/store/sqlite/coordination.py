"""The semvec coordination rows on SQLite: inside a mutation, on the writer's connection."""

from __future__ import annotations

import sqlite3

from ..coordination_rows import CoordinationRows


class CoordinationWrites(CoordinationRows):
    """`tx.coordination`."""

    mark = "?"

    def __init__(self, conn: sqlite3.Connection, tenant: str):
        super().__init__(tenant)
        self._conn = conn

    def _rows(self, sql: str, params: tuple) -> list[tuple]:
        return self._conn.execute(sql, params).fetchall()

    def _do(self, sql: str, params: tuple) -> None:
        self._conn.execute(sql, params)

    def _count(self, sql: str, params: tuple) -> int:
        return self._conn.execute(sql, params).rowcount
