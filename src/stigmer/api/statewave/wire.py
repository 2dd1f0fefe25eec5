"""The Statewave surface's wire terms (specs/statewave.md §3.4, §3.5, §5): the error envelope and its codes,
the two timestamp forms, the Episode and Memory objects, and request bodies and queries parsed into pydantic
models with pydantic's own error items.

Where validation happens: the pydantic model at the door checks shape (required members, JSON types,
query numbers and their bounds); the engine checks the rules of what it stores (string lengths, batch size,
the tenant id) and raises `InvalidArgument` with `loc` and a pydantic `type`, rendered here as the same kind
of item. Nothing is checked twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import msgspec
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from ...engine.memory import Episode, MemoryRecord
from ..kit.errors import Problem
from ..kit import validation
from ..kit.body import request_body
from ..kit.validation import RequestInvalid

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 10 * 1024 * 1024  # §3.9
_encode = msgspec.json.Encoder().encode


def json(content: Any, status: int = 200) -> Response:
    """A JSON response; non-ASCII is sent as UTF-8 (§3.9)."""
    return Response(_encode(content), status, media_type="application/json")


class Failure(Problem):
    """An error already in this surface's terms (rendered as is); `items` only for `validation_error`."""

    def __init__(self, status: int, code: str, message: str, items: list | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status, code, message, None, headers)
        self.items = items


def fail(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Failure:
    return Failure(status, code, message, headers=headers)


def not_found(message: str = "Not Found") -> Failure:
    return fail(404, "not_found", message)


def invalid_one(type_: str, loc: list, msg: str, input_: Any = None) -> RequestInvalid:
    return RequestInvalid([{"type": type_, "loc": loc, "msg": msg, "input": input_}])


# --- timestamps (§3.4): integer microseconds in the engine

def _iso(micros: int) -> str:
    seconds, us = divmod(micros, 1_000_000)
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(microsecond=us).isoformat()


def z_time(micros: int | None) -> str | None:
    """`2026-04-29T12:00:00.123456Z`, no fraction at 0 µs."""
    return None if micros is None else _iso(micros)[:-6] + "Z"


def offset_time(micros: int | None) -> str | None:
    """`2026-04-29T12:00:00.123456+00:00`, no fraction at 0 µs."""
    return None if micros is None else _iso(micros)


# --- objects (§5, "Shared object shapes")

def episode(e: Episode) -> dict[str, Any]:
    return {"id": e.id, "subject_id": e.subject_id, "source": e.source, "type": e.type, "payload": e.payload,
            "metadata": e.metadata, "provenance": e.provenance, "session_id": e.session_id,
            "created_at": z_time(e.created_at)}


def memory(m: MemoryRecord) -> dict[str, Any]:
    return {"id": m.id, "subject_id": m.subject_id, "kind": m.kind, "content": m.content, "summary": m.summary,
            "confidence": float(m.confidence), "valid_from": z_time(m.valid_from), "valid_to": z_time(m.valid_to),
            "source_episode_ids": m.source_episode_ids, "metadata": m.metadata, "status": m.status,
            "created_at": z_time(m.created_at), "updated_at": z_time(m.updated_at)}


# --- requests

async def body(request: Request, model: type[M]) -> M:
    """The request body (at most 10 MiB) as `model`; 422 with pydantic's items (loc from "body")."""
    return validation.body(await request_body(request, MAX_BODY), model)


def query(request: Request, model: type[M]) -> M:
    """The query string as `model` (unknown parameters ignored); 422 with items whose loc starts "query"."""
    return validation.query(request.query_params, model)
