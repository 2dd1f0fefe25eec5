"""The semvec coordination rows on PostgreSQL: inside the writer's transaction (writes through `tx.write`, so
the run's savepoint covers them). A count comes back through `RETURNING`: in pipeline mode `rowcount` is not
known until the pipeline syncs, a fetch syncs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..coordination_rows import CoordinationRows

if TYPE_CHECKING:
    from .writer import WriteTxnPG


class CoordinationWritesPG(CoordinationRows):
    """`tx.coordination`."""

    mark = "%s"

    def __init__(self, tx: "WriteTxnPG"):
        super().__init__(tx.tenant)
        self._tx = tx

    def _rows(self, sql: str, params: tuple) -> list[tuple]:
        return self._tx.cur.execute(sql, params).fetchall()

    def _do(self, sql: str, params: tuple) -> None:
        self._tx.write(sql, params)

    def _count(self, sql: str, params: tuple) -> int:
        self._tx.write(sql + " RETURNING 1", params)
        return len(self._tx.cur.fetchall())
