"""Request validation in FastAPI's terms, for the surfaces whose upstream is a FastAPI server (Statewave,
semvec): the request's shape is declared as a pydantic model, and a failure carries pydantic v2's own error
items (`type`, `loc`, `msg`, `input`, `ctx`), with `loc` starting at "body", "query", "path" or "header".

The items are what FastAPI sends; each surface wraps them in its own envelope (`RequestInvalid.items`).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, TypeVar

import pydantic

from .errors import Problem

M = TypeVar("M", bound=pydantic.BaseModel)


class RequestInvalid(Problem):
    """A 422 whose `items` are FastAPI-shaped validation errors, reported together."""

    def __init__(self, items: list[dict[str, Any]]):
        super().__init__(422, "validation_error", "Request validation failed", {"errors": items})
        self.items = items


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)  # an exception or a pattern in `ctx`, as FastAPI's encoder would spell it


def items_of(exc: pydantic.ValidationError, where: str) -> list[dict[str, Any]]:
    """pydantic's errors with `loc` under `where` ("body", "query", "path", "header")."""
    out = []
    for err in exc.errors(include_url=False):
        item: dict[str, Any] = {"type": err["type"], "loc": [where, *err["loc"]], "msg": err["msg"],
                                "input": _jsonable(err.get("input"))}
        if "ctx" in err:
            item["ctx"] = _jsonable(err["ctx"])
        out.append(item)
    return out


def missing(loc: list[Any]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}


def json_of(raw: bytes) -> Any:
    """The body as JSON, or RequestInvalid with FastAPI's `json_invalid` item (loc: the character offset).
    An empty body is None: the caller decides whether a body is required."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except UnicodeDecodeError as e:
        raise RequestInvalid([{"type": "json_invalid", "loc": ["body", e.start], "msg": "JSON decode error",
                               "input": {}, "ctx": {"error": "Invalid UTF-8"}}]) from None
    except json.JSONDecodeError as e:
        raise RequestInvalid([{"type": "json_invalid", "loc": ["body", e.pos], "msg": "JSON decode error",
                               "input": {}, "ctx": {"error": e.msg}}]) from None
    except RecursionError:
        raise RequestInvalid([{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
                               "input": {}, "ctx": {"error": "nested too deeply"}}]) from None


def body(raw: bytes, model: type[M]) -> M:
    """A required JSON body as `model`: absent → `missing` at ["body"]; not an object → pydantic's
    `model_attributes_type`; field errors under "body"."""
    data = json_of(raw)
    if data is None:
        raise RequestInvalid([missing(["body"])])
    return validate(model, data, "body")


def validate(model: type[M], data: Any, where: str) -> M:
    try:  # from_attributes, as FastAPI validates: a non-object body is `model_attributes_type`
        return model.model_validate(data, from_attributes=True)
    except pydantic.ValidationError as e:
        raise RequestInvalid(items_of(e, where)) from None


def query(params: Mapping[str, str], model: type[M]) -> M:
    """Query parameters as `model` (the last value of a repeated name, as FastAPI takes for a scalar);
    unknown parameters are ignored by the model's own settings."""
    return validate(model, dict(params), "query")
