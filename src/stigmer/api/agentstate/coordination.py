"""AgentState leases by id, capability tokens and claims (specs/agentstate.md §5.2.2–5.4), over the lease,
token and claim engines."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from ...engine import errors as engine_errors, jsonpath
from ...engine.access import CAPABILITY_SCOPES, check_claim, check_evidence_reads
from ...engine.claims import MISSING, EvidenceInput
from ...services import Services
from ..kit.body import request_body
from . import wire
from .states import MAX_BODY, lease_out
from .surface import Call, Route, route

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
KINDS = ("text_hash", "json_value", "state_event")


def _none(v: Any) -> Any:
    return None if v is MISSING else v


def token_out(r: Any) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "key_prefix": r.key_prefix, "scopes": list(r.scopes),
            "expires_at": wire.ms(r.expires_at), "created_at": wire.ms(r.created_at),
            "last_used_at": wire.ms(r.last_used_at), "revoked_at": wire.ms(r.revoked_at)}


def claim_out(c: Any, tenant: str, evidence: bool = True) -> dict[str, Any]:
    out = {"id": c.id, "project_id": tenant, "subject_type": c.subject_type, "subject_id": c.subject_id,
           "statement": c.statement, "status": c.status, "created_at": c.created_at, "updated_at": c.updated_at}
    if evidence:
        out["evidence"] = [{"id": e.id, "project_id": tenant, "claim_id": c.id, "kind": e.kind, "source": e.source,
                            "data": _none(e.data), "hash": e.hash, "json_path": e.json_path,
                            "expected_value": _none(e.expected_value), "created_at": e.created_at}
                           for e in c.evidence]
    return out


def run_out(r: Any, tenant: str) -> dict[str, Any]:
    return {"id": r.id, "project_id": tenant, "claim_id": r.claim_id, "status": r.status,
            "details": {"results": [{"evidence_id": x.evidence_id, "kind": x.kind, "source": x.source,
                                     "passed": x.passed, "message": x.message} for x in r.results]},
            "created_at": r.created_at}


def _invalid() -> wire.Problem:
    return wire.bad("Invalid input")


def evidence_input(item: Any) -> EvidenceInput:
    """One evidence element, checked in the spec's order (§5.4.1)."""
    if not isinstance(item, dict):
        raise wire.expected("object", item)
    kind = item.get("kind")
    if kind not in KINDS:
        raise _invalid()
    strings = {"text_hash": ("source", "data", "hash"), "json_value": ("source", "json_path"),
               "state_event": ("source",)}[kind]
    for name in strings:
        if not isinstance(item.get(name), str):
            raise _invalid()
    if kind == "state_event":
        for name in ("hash", "json_path"):
            if item.get(name) is not None and not isinstance(item[name], str):
                raise _invalid()
    wire.check_string(item["source"], 1, 255)
    if kind == "text_hash":
        wire.check_string(item["data"], 1)
    hash_ = item.get("hash")
    if hash_ is not None and not _HEX64.fullmatch(hash_):
        raise wire.bad("hash must be a SHA-256 hex digest")
    path = item.get("json_path")
    if path is not None and jsonpath.parse(path) is None:
        raise wire.bad("json_path must be a simple JSON path")
    if kind == "json_value":
        if "data" not in item:
            raise wire.bad("data is required")
        if "expected_value" not in item:
            raise wire.bad("expected_value is required")
    if kind == "state_event" and hash_ is None and (path is None or "expected_value" not in item):
        raise wire.bad("state_event evidence requires hash or json_path with expected_value")
    has_expected = kind != "text_hash" and "expected_value" in item
    return EvidenceInput(kind=kind, source=item["source"],
                         data=item["data"] if kind != "state_event" else MISSING,
                         hash=hash_.lower() if hash_ is not None else None, json_path=path,
                         expected_value=item["expected_value"] if has_expected else MISSING)


def _id(call: Call, message: str) -> str:
    """The path's id; one no store can hold (U+0000) is unknown, as every malformed id is (§3.3)."""
    if "\x00" in call.params[0]:
        raise wire.not_found(message)
    return call.params[0]


def _page(rows: list[dict], nxt: tuple[int, str] | None) -> dict[str, Any]:
    return {"data": rows, "pagination": {"limit": len(rows),
                                         "next_cursor": wire.time_cursor(*nxt) if nxt is not None else None}}


def routes(svc: Services) -> list[Route]:
    leases, tokens, claims = svc.leases, svc.tokens, svc.claims

    def whole_project(call: Call) -> None:
        """A lease named by id alone could guard any state: a prefix-limited credential may not name one."""
        if call.p.grants is not None:
            raise wire.fail(403, "FORBIDDEN", "this credential is limited to some states: leases by id need the "
                            "whole project", padded=True)

    async def renew(call: Call) -> Response:
        whole_project(call)
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        ttl_ms = f.integer("ttl_ms", 1000, 3_600_000) or 60_000
        outcome = await wire.or_not_found(leases.renew_by_id(call.p.tenant, _id(call, "Lease not found"), ttl_ms / 1000),
                                          "Lease not found")
        return wire.json(lease_out(outcome.lease))

    async def release(call: Call) -> Response:
        whole_project(call)
        await wire.or_not_found(leases.release_by_id(call.p.tenant, _id(call, "Lease not found")), "Lease not found")
        return Response(status_code=204)

    async def mint(call: Call) -> Response:
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        name = f.string("name", 1, 255, required=True)
        scopes = [wire.check_enum(s, CAPABILITY_SCOPES) for s in f.array("scopes", 1, 6, required=True)]
        expires_ms = f.integer("expires_at", positive=True)
        if len(set(scopes)) != len(scopes):
            raise wire.bad("scopes must be unique; allowed scopes: " + ", ".join(CAPABILITY_SCOPES))
        try:
            created = await tokens.mint(call.p, name, sorted(scopes),
                                        expires_at=expires_ms / 1000 if expires_ms is not None else None)
        except engine_errors.Forbidden:
            raise wire.fail(403, "FORBIDDEN", "Cannot grant scopes beyond the calling key's own scopes") from None
        return wire.json(token_out(created.record) | {"token": created.secret}, 201)

    async def list_tokens(call: Call) -> Response:
        return wire.json({"data": [token_out(r) for r in await tokens.list(call.p.tenant)]})

    async def revoke(call: Call) -> Response:
        await wire.or_not_found(tokens.revoke(call.p, _id(call, "Capability token not found")), "Capability token not found")
        return Response(status_code=204)

    async def create_claim(call: Call) -> Response:
        f = wire.Fields(wire.parse_object(await request_body(call.request, MAX_BODY)))
        subject_type = f.string("subject_type", 1, 100, required=True)
        subject_id = f.string("subject_id", 1, 255, required=True)
        statement = f.string("statement", 1, 5000, required=True)
        evidence = [evidence_input(item) for item in f.array("evidence", 1, 50, required=True)]
        check_claim(call.p, "claim:write")
        check_evidence_reads(call.p, evidence)
        c = await claims.create(call.p.tenant, subject_type, subject_id, statement, evidence)
        return wire.json(claim_out(c, call.p.tenant), 201)

    async def list_claims(call: Call) -> Response:
        q = call.request.query_params
        order = wire.order_of(q.get("order"))
        check_claim(call.p, "claim:read")
        rows, nxt = await claims.list(call.p.tenant, limit=wire.lenient_limit(q.get("limit"), 50, 100),
                                      cursor=wire.page_cursor(q.get("cursor"), order), order=order,
                                      subject_type=q.get("subject_type"), subject_id=q.get("subject_id"))
        return wire.json(_page([claim_out(c, call.p.tenant, evidence=False) for c in rows], nxt))

    async def get_claim(call: Call) -> Response:
        claim_id = _id(call, "Claim not found")
        check_claim(call.p, "claim:read", claim_id)
        c = await claims.get(call.p.tenant, claim_id)
        if c is None:
            raise wire.not_found("Claim not found")
        return wire.json(claim_out(c, call.p.tenant))

    async def verify(call: Call) -> Response:
        claim_id = _id(call, "Claim not found")
        check_claim(call.p, "claim:write", claim_id)
        if call.p.grants is not None:  # what verifying reads, the credential must read
            c = await claims.get(call.p.tenant, claim_id)
            check_evidence_reads(call.p, c.evidence if c is not None else ())
        run = await wire.or_not_found(claims.verify(call.p.tenant, claim_id), "Claim not found")
        return wire.json(run_out(run, call.p.tenant), 201)

    async def runs(call: Call) -> Response:
        q = call.request.query_params
        order = wire.order_of(q.get("order"))
        cursor = wire.page_cursor(q.get("cursor"), order)
        claim_id = _id(call, "Claim not found")
        check_claim(call.p, "claim:read", claim_id)
        rows, nxt = await wire.or_not_found(claims.runs(
            call.p.tenant, claim_id, limit=wire.lenient_limit(q.get("limit"), 50, 100), cursor=cursor,
            order=order), "Claim not found")
        return wire.json(_page([run_out(r, call.p.tenant) for r in rows], nxt))

    return [
        route("POST", "leases/{id}/renew", "lease:write", renew),
        route("DELETE", "leases/{id}", "lease:write", release),
        route("POST", "capability-tokens", "keys:write", mint, tokens=False),
        route("GET", "capability-tokens", "keys:read", list_tokens, tokens=False),
        route("DELETE", "capability-tokens/{id}", "keys:write", revoke, tokens=False),
        route("POST", "claims", "claim:write", create_claim),
        route("GET", "claims", "claim:read", list_claims),
        route("GET", "claims/{id}/verifications", "claim:read", runs),
        route("GET", "claims/{id}", "claim:read", get_claim),
        route("POST", "claims/{id}/verify", "claim:write", verify),
    ]
