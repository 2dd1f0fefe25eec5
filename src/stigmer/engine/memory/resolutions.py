"""Resolutions (Statewave §5.14, §5.15): one row per (Statewave tenant, subject, session) saying whether that
support session is open, resolved or unresolved. An upsert is one mutation, so it is atomic per key and
concurrent upserts of one session leave one row (§6.16, Decision 25)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from .. import values
from ..errors import InvalidArgument
from .episodes import check_subject_id, micros

OPEN, RESOLVED, UNRESOLVED = "open", "resolved", "unresolved"
STATUSES = (OPEN, RESOLVED, UNRESOLVED)
MAX_SUMMARY = 2000
MAX_PAGE = 200


class Resolution(msgspec.Struct, frozen=True):
    id: str
    tenant: str
    tenant_id: str | None
    subject_id: str
    session_id: str
    status: str
    resolution_summary: str | None
    resolved_at: int | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int


class ResolutionInput(msgspec.Struct, frozen=True):
    """One resolution as a client sends it (§5.14)."""

    subject_id: str
    session_id: str
    status: str = OPEN
    resolution_summary: str | None = None
    metadata: dict[str, Any] = {}


PATTERN = "^(open|resolved|unresolved)$"


def check_status(status: Any, loc: list) -> str:
    if not isinstance(status, str):
        raise InvalidArgument("Input should be a valid string", loc=loc, type="string_type")
    if status not in STATUSES:
        raise InvalidArgument(f"String should match pattern '{PATTERN}'", loc=loc, type="string_pattern_mismatch",
                              input=status, ctx={"pattern": PATTERN})
    return status


def checked(r: ResolutionInput) -> ResolutionInput:
    subject_id = check_subject_id(r.subject_id, ["body", "subject_id"])
    session_id = check_subject_id(r.session_id, ["body", "session_id"])  # the same rule: 1–256 characters
    summary = r.resolution_summary
    if summary is not None and (not isinstance(summary, str) or len(summary) > MAX_SUMMARY):
        raise InvalidArgument(f"String should have at most {MAX_SUMMARY} characters", loc=["body", "resolution_summary"],
                              type="string_too_long", ctx={"max_length": MAX_SUMMARY})
    if not isinstance(r.metadata, dict):
        raise InvalidArgument("Input should be a valid dictionary", loc=["body", "metadata"], type="dict_type")
    return ResolutionInput(subject_id, session_id, check_status(r.status, ["body", "status"]), summary, r.metadata)


def upsert_in(tx, tenant_id: str | None, r: ResolutionInput) -> Resolution:
    """The upsert keyed by (tenant value, subject, session): a new row gets a fresh id; an existing one keeps
    its id and `created_at`, takes the request's status, summary and metadata, and moves `updated_at` only
    when a stored field changed. `resolved_at` is now for `resolved`, else null."""
    now = micros(tx.now)
    resolved_at = now if r.status == RESOLVED else None
    old = tx.support.resolution(tenant_id, r.subject_id, r.session_id)
    if old is None:
        new = Resolution(str(uuid.uuid4()), tx.tenant, tenant_id, r.subject_id, r.session_id, r.status,
                         r.resolution_summary, resolved_at, r.metadata, now, now)
        tx.support.insert_resolution(new)
        return new
    if ((r.status, r.resolution_summary, resolved_at) == (old.status, old.resolution_summary, old.resolved_at)
            and values.json_equal(r.metadata, old.metadata)):
        return old
    new = msgspec.structs.replace(old, status=r.status, resolution_summary=r.resolution_summary,
                                  resolved_at=resolved_at, metadata=r.metadata, updated_at=now)
    tx.support.update_resolution(new)
    return new
