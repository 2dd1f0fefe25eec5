"""Native claim routes: /v1/claims, /v1/claims/{id}, /v1/claims/{id}/verify, /v1/claims/{id}/runs.
Validate, call the claim engine, render (docs/claims.md)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...engine.access import GuardedClaims
from ...engine.claims import MISSING, Claim, Evidence, EvidenceInput, Outcome, Run
from ...engine.errors import InvalidArgument
from ...services import Services
from ..errors import APIError
from ..http import json_response, rfc3339
from ..kit.body import request_body
from ..kit.cursors import decode_row_cursor, encode_row_cursor
from ..kit.params import optional_int
from ..kit.idempotency import idempotent
from ..kit.routing import by_method
from ..kit.surface import principal
from .kv import _decode
from .models import Out, convert

BODY_LIMIT = 10 * 1024 * 1024  # 50 evidence items with their data (AgentState's limit too)
MAX_PAGE = 1000
DEFAULT_PAGE = 100
Kind = Literal["text_hash", "json_value", "state_event", "key_value"]


# request and response models


class EvidenceIn(msgspec.Struct, forbid_unknown_fields=True):
    """One evidence item; which members a kind takes is in docs/claims.md."""

    kind: Kind
    source: str | None = None
    data: Any = MISSING  # any JSON value; null is a value
    hash: str | None = None
    json_path: str | None = None
    expected_value: Any = MISSING  # any JSON value; null is a value
    namespace: str | None = None  # key_value
    key: str | None = None  # key_value


class CreateClaimRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /v1/claims."""

    subject_type: str
    subject_id: str
    statement: str
    evidence: list[EvidenceIn]


class EvidenceOut(Out):
    id: str
    kind: Kind
    source: str  # `<namespace>/<key>` for key_value
    data: Any  # null when absent
    hash: str | None
    json_path: str | None
    expected_value: Any  # null when absent
    namespace: str | None  # key_value only
    key: str | None  # key_value only
    created_at: str


class ClaimSummaryOut(Out):
    id: str
    subject_type: str
    subject_id: str
    statement: str
    status: Literal["pending", "verified", "failed"]
    created_at: str
    updated_at: str


class ClaimOut(ClaimSummaryOut):
    """A claim and its evidence, in input order."""

    evidence: list[EvidenceOut]


class ClaimsOut(Out):
    claims: list[ClaimSummaryOut]
    next_cursor: str | None


class ResultOut(Out):
    evidence_id: str
    kind: Kind
    source: str
    passed: bool
    message: str


class RunOut(Out):
    """One verification run: every evidence item's result, in evidence order."""

    id: str
    claim_id: str
    status: Literal["verified", "failed"]
    results: list[ResultOut]
    created_at: str


class RunsOut(Out):
    runs: list[RunOut]
    next_cursor: str | None


# rendering


def _time(ms: int) -> str:
    return rfc3339(ms / 1000)  # type: ignore[return-value]


def _json(value: Any) -> Any:
    return None if value is MISSING else value


def evidence_out(e: Evidence) -> EvidenceOut:
    namespace, key = e.key_ref() if e.kind == "key_value" else (None, None)
    return EvidenceOut(e.id, e.kind, e.source, _json(e.data), e.hash, e.json_path, _json(e.expected_value),  # type: ignore[arg-type]
                       namespace, key, _time(e.created_at))


def claim_out(c: Claim) -> ClaimOut:
    return ClaimOut(c.id, c.subject_type, c.subject_id, c.statement, c.status, _time(c.created_at),  # type: ignore[arg-type]
                    _time(c.updated_at), [evidence_out(e) for e in c.evidence])


def summary_out(c: Claim) -> ClaimSummaryOut:
    return ClaimSummaryOut(c.id, c.subject_type, c.subject_id, c.statement, c.status, _time(c.created_at),  # type: ignore[arg-type]
                           _time(c.updated_at))


def run_out(r: Run) -> RunOut:
    return RunOut(r.id, r.claim_id, r.status, [ResultOut(x.evidence_id, x.kind, x.source, x.passed, x.message)  # type: ignore[arg-type]
                                              for x in r.results], _time(r.created_at))


def _page(request: Request) -> dict[str, Any]:
    q = request.query_params
    order = q.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidArgument("order must be asc or desc", field="order")
    return {"limit": optional_int(q.get("limit"), "limit", DEFAULT_PAGE, lo=1, hi=MAX_PAGE),
            "cursor": decode_row_cursor(q.get("cursor")), "order": order}


def _evidence_input(e: EvidenceIn) -> EvidenceInput:
    return EvidenceInput(e.kind, e.source, e.data, e.hash, e.json_path, e.expected_value, e.namespace, e.key)


def routes(svc: Services) -> list[Route]:
    def guarded(request: Request) -> GuardedClaims:
        return GuardedClaims(svc.claims, principal(request))

    def written(outcome: Outcome, body: Out) -> Response:
        return json_response(body, 201, {"X-Stigmer-Revision": str(outcome.revision)})

    def not_found(claim_id: str) -> APIError:
        return APIError(404, "not_found", "claim not found", {"claim_id": claim_id})

    def once(handler):  # Idempotency-Key on every write
        return idempotent(svc.idempotency, handler, body_limit=BODY_LIMIT)

    async def create(request: Request) -> Response:
        claims = guarded(request)
        req: CreateClaimRequest = convert(_decode(await request_body(request, BODY_LIMIT)), CreateClaimRequest)
        outcome = await claims.create(req.subject_type, req.subject_id, req.statement,
                                      [_evidence_input(e) for e in req.evidence])
        return written(outcome, claim_out(outcome.claim))

    async def list_claims(request: Request) -> Response:
        claims = guarded(request)
        q = request.query_params
        rows, nxt = await claims.list(**_page(request), subject_type=q.get("subject_type"),
                                      subject_id=q.get("subject_id"))
        return json_response(ClaimsOut([summary_out(c) for c in rows], encode_row_cursor(nxt)))

    async def get_claim(request: Request) -> Response:
        claim_id = request.path_params["id"]
        c = await guarded(request).get(claim_id)
        if c is None:
            raise not_found(claim_id)
        return json_response(claim_out(c))

    async def verify(request: Request) -> Response:
        outcome = await guarded(request).verify(request.path_params["id"])
        return written(outcome, run_out(outcome.run))  # type: ignore[arg-type]

    async def runs(request: Request) -> Response:
        rows, nxt = await guarded(request).runs(request.path_params["id"], **_page(request))
        return json_response(RunsOut([run_out(r) for r in rows], encode_row_cursor(nxt)))

    return [
        Route("/v1/claims", by_method({"GET": list_claims, "POST": once(create)}), methods=["GET", "POST"]),
        Route("/v1/claims/{id}", get_claim, methods=["GET"]),
        Route("/v1/claims/{id}/verify", once(verify), methods=["POST"]),
        Route("/v1/claims/{id}/runs", runs, methods=["GET"]),
    ]
