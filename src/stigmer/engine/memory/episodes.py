"""Episodes (Statewave §5.3, §5.4): immutable records of what happened to a subject, never deduplicated.

A Statewave tenant lives inside a Stigmer tenant (§3.2): `tenant` is the Stigmer tenant, `tenant_id` the
Statewave tenant, None for a row written in unscoped mode. Timestamps are integer microseconds since the
epoch (§3.4: microsecond precision); every episode of one request shares one `created_at`.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from ..errors import InvalidArgument

MAX_BATCH = 100


class Episode(msgspec.Struct, frozen=True):
    id: str
    tenant: str
    tenant_id: str | None
    subject_id: str
    source: str
    type: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    provenance: dict[str, Any]
    session_id: str | None
    created_at: int
    last_compiled_at: int | None = None


class EpisodeInput(msgspec.Struct, frozen=True):
    """One episode as a client sends it (§5.3)."""

    subject_id: str
    source: str
    type: str
    payload: dict[str, Any]
    metadata: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    session_id: str | None = None


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def check_tenant_id(tenant_id: str | None) -> str | None:
    """The Statewave tenant of a request: None (unscoped) when absent or empty, else 1–256 chars."""
    if tenant_id is None or tenant_id == "":
        return None
    if not isinstance(tenant_id, str):
        raise InvalidArgument("Input should be a valid string", loc=["header", "X-Tenant-ID"], type="string_type")
    if len(tenant_id) > 256:
        raise InvalidArgument("String should have at most 256 characters", loc=["header", "X-Tenant-ID"],
                              type="string_too_long")
    return tenant_id


def check_subject_id(subject_id: Any, loc: list) -> str:
    return _text(subject_id, 256, loc)


# The errors name the rule broken with pydantic's error types and messages (docs/memory.md), so a surface
# whose upstream is a FastAPI server reports them as its own validation items.

def _text(value: Any, limit: int, loc: list, least: int = 1) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("Input should be a valid string", loc=loc, type="string_type")
    if len(value) < least:
        raise InvalidArgument(f"String should have at least {least} character{'s' if least > 1 else ''}", loc=loc,
                              type="string_too_short", input=value)
    if len(value) > limit:
        raise InvalidArgument(f"String should have at most {limit} characters", loc=loc, type="string_too_long",
                              input=value)
    if "\x00" in value:  # every store alike: a PostgreSQL text column cannot hold it
        raise InvalidArgument("Value error, text must not contain U+0000", loc=loc, type="value_error", input=value)
    return value


def _object(value: Any, loc: list) -> dict:
    if not isinstance(value, dict):
        raise InvalidArgument("Input should be a valid dictionary", loc=loc, type="dict_type")
    return value


def _checked(e: EpisodeInput, loc: list) -> EpisodeInput:
    session_id = e.session_id
    if session_id is not None:
        _text(session_id, 256, [*loc, "session_id"], least=0)
    return EpisodeInput(_text(e.subject_id, 256, [*loc, "subject_id"]), _text(e.source, 256, [*loc, "source"]),
                        _text(e.type, 128, [*loc, "type"]), _object(e.payload, [*loc, "payload"]),
                        _object(e.metadata, [*loc, "metadata"]), _object(e.provenance, [*loc, "provenance"]),
                        session_id or None)  # "" is stored as null (§3.3)


def checked_batch(items: list[EpisodeInput]) -> list[EpisodeInput]:
    """Every item checked before anything is written (all-or-nothing, §5.4)."""
    if not isinstance(items, list):
        raise InvalidArgument("Input should be a valid list", loc=["body", "episodes"], type="list_type")
    if not items:
        raise InvalidArgument("List should have at least 1 item after validation, not 0", loc=["body", "episodes"],
                              type="too_short")
    if len(items) > MAX_BATCH:
        raise InvalidArgument(f"List should have at most {MAX_BATCH} items after validation, not {len(items)}",
                              loc=["body", "episodes"], type="too_long")
    return [_checked(e, ["body", "episodes", i]) for i, e in enumerate(items)]


def checked_one(item: EpisodeInput) -> EpisodeInput:
    return _checked(item, ["body"])


def insert_in(tx, tenant_id: str | None, items: list[EpisodeInput]) -> list[Episode]:
    """The mutation storing checked items as episodes with one `created_at`, in input order."""
    now = micros(tx.now)
    episodes = [Episode(str(uuid.uuid4()), tx.tenant, tenant_id, e.subject_id, e.source, e.type, e.payload,
                        e.metadata, e.provenance, e.session_id, now) for e in items]
    tx.memory.insert_episodes(episodes)
    return episodes
