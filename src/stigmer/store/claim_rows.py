"""Claim rows as both stores hold them: the columns, the JSON text columns and the page queries.

JSON members (evidence `data` and `expected_value`, a run's results) are stored as compact JSON text, as
received (member order kept); SQL NULL is an absent member, so JSON null stays a value.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..engine import values
from ..engine.claims import MISSING, Claim, Cursor, Evidence, Result, Run

CLAIM_COLUMNS = "id, tenant, subject_type, subject_id, statement, status, created_at, updated_at"
EVIDENCE_COLUMNS = "id, claim_id, kind, source, data, hash, json_path, expected_value, created_at"
RUN_COLUMNS = "id, claim_id, status, results, created_at"
EVIDENCE_INSERT = ("tenant", "claim_id", "pos", "id", "kind", "source", "data", "hash", "json_path",
                   "expected_value", "created_at")

_results = msgspec.json.Decoder(list[Result])
_encode = msgspec.json.Encoder().encode


def json_text(value: Any) -> str | None:
    return None if value is MISSING else values.encode(value).decode()


def from_json_text(text: str | None) -> Any:
    return MISSING if text is None else values.decode(text)


def claim_row(c: Claim) -> tuple:
    return (c.id, c.tenant, c.subject_type, c.subject_id, c.statement, c.status, c.created_at, c.updated_at)


def claim_of(row: tuple | list, evidence: list[Evidence] | None = None) -> Claim:
    return Claim(*row, evidence=evidence or [])


def evidence_rows(c: Claim) -> list[tuple]:
    """Rows in EVIDENCE_INSERT order, `pos` = input order."""
    return [(c.tenant, c.id, i, e.id, e.kind, e.source, json_text(e.data), e.hash, e.json_path,
             json_text(e.expected_value), e.created_at) for i, e in enumerate(c.evidence)]


def evidence_of(row: tuple | list) -> Evidence:
    id_, claim_id, kind, source, data, digest, json_path, expected, created_at = row
    return Evidence(id_, claim_id, kind, source, from_json_text(data), digest, json_path, from_json_text(expected),
                    created_at)


def run_row(tenant: str, r: Run) -> tuple:
    return (tenant, r.claim_id, r.created_at, r.id, r.status, _encode(r.results).decode())


def run_of(row: tuple | list) -> Run:
    id_, claim_id, status, results, created_at = row
    return Run(id_, claim_id, status, _results.decode(results), created_at)


def page_where(cursor: Cursor | None, order: str, mark: str) -> tuple[str, str, tuple]:
    """The `(created_at, id)` condition after `cursor` in `order`, the ORDER BY, and their parameters;
    `mark` is the store's placeholder."""
    direction = "ASC" if order == "asc" else "DESC"
    by = f" ORDER BY created_at {direction}, id {direction}"
    if cursor is None:
        return "", by, ()
    return f" AND (created_at, id) {'>' if order == 'asc' else '<'} ({mark}, {mark})", by, tuple(cursor)


def list_query(table_columns: str, table: str, base: str, cursor: Cursor | None, order: str,
               mark: str) -> tuple[str, tuple]:
    after, by, params = page_where(cursor, order, mark)
    return f"SELECT {table_columns} FROM {table} WHERE {base}{after}{by} LIMIT {mark}", params


def claims_list_sql(tenant: str, limit: int, cursor: Cursor | None, order: str, subject_type: str | None,
                    subject_id: str | None, mark: str) -> tuple[str, tuple]:
    base, params = f"tenant = {mark}", [tenant]
    for column, v in (("subject_type", subject_type), ("subject_id", subject_id)):
        if v is not None:
            base += f" AND {column} = {mark}"
            params.append(v)
    sql, more = list_query(CLAIM_COLUMNS, "claims", base, cursor, order, mark)
    return sql, (*params, *more, limit)


def runs_sql(tenant: str, claim_id: str, limit: int, cursor: Cursor | None, order: str, mark: str) -> tuple[str, tuple]:
    sql, more = list_query(RUN_COLUMNS, "claim_runs", f"tenant = {mark} AND claim_id = {mark}", cursor, order, mark)
    return sql, (tenant, claim_id, *more, limit)
