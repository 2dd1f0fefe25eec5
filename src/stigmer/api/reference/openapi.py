"""OpenAPI 3.1 documents for the surfaces that declare their routes as a list (method, path, scope) or
dispatch by hand (a table of `Operation`s): what /docs renders beside the native API's document."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
OBJECT: dict[str, Any] = {"type": "object"}
REF = "#/components/schemas/"


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str
    path: str  # with `{name}` parameters (a `{name:path}` converter is shown as `{name}`)
    summary: str = ""
    scope: str = ""  # the key scope it needs, when the surface has scopes
    query: tuple[str, ...] = ()  # optional string query parameters
    query_params: tuple[dict[str, Any], ...] = ()  # whole OpenAPI parameter objects (from a query model)
    body: dict[str, Any] | None = None  # the request body's JSON schema
    status: int | str = 200  # the success status ("2XX" where the route list does not say)
    response: dict[str, Any] | None = None  # the success body's JSON schema; None: no body


def _operation(op: Operation, error: dict[str, Any]) -> dict[str, Any]:
    parameters = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in _PARAM.findall(op.path)]
    parameters += [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in op.query]
    parameters += op.query_params
    ok: dict[str, Any] = {"description": {201: "Created", 204: "No content", "2XX": "Success"}.get(op.status, "OK")}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": op.response}}
    summary = op.summary or f"{op.method.upper()} {op.path}"
    out: dict[str, Any] = {
        "summary": summary + (f" (scope `{op.scope}`)" if op.scope else ""),
        "parameters": parameters,
        "responses": {str(op.status): ok, "default": {
            "description": "An error, in the surface's own shape",
            "content": {"application/json": {"schema": error}}}},
    }
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    return out


def document(title: str, version: str, ops: list[Operation], security: dict[str, Any],
             error: dict[str, Any] = OBJECT, description: str = "",
             schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    """One surface's document; `security` is its one security scheme (how a key is presented); `schemas` the
    named components the operations' schemas refer to."""
    paths: dict[str, Any] = {}
    for op in ops:
        paths.setdefault(_PARAM.sub(lambda m: "{" + m.group(1) + "}", op.path), {})[op.method.lower()] = (
            _operation(op, error))
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"securitySchemes": {"apiKey": security}, "schemas": schemas or {}},
        "security": [{"apiKey": []}],
    }


def from_routes(routes: list[Any], base: str = "", schemas: dict[str, Any] | None = None) -> list[Operation]:
    """Operations of a surface whose routes carry `method`, `path` (under `base`) and `scope` (agentstate,
    statewave), and maybe `body`, a pydantic model: its schema goes into `schemas`, the operation refers to it."""
    out = []
    for r in routes:
        model = getattr(r, "body", None)
        body = None
        if model is not None and schemas is not None:
            found = model.model_json_schema(ref_template=REF + "{model}")
            schemas.update(found.pop("$defs", {}))
            schemas[model.__name__] = found
            body = {"$ref": REF + model.__name__}
        out.append(Operation(r.method, base + r.path, summary_of(r.handler), r.scope, body=body, status="2XX",
                             query_params=_query_params(getattr(r, "query", None))))
    return out


def _query_params(model: Any) -> tuple[dict[str, Any], ...]:
    """A pydantic query model's fields as query parameters."""
    if model is None:
        return ()
    schema = model.model_json_schema(ref_template=REF + "{model}")
    required = set(schema.get("required", ()))
    return tuple({"name": name, "in": "query", "required": name in required,
                  "schema": {k: v for k, v in s.items() if k not in ("title", "description")},
                  **({"description": s["description"]} if "description" in s else {})}
                 for name, s in schema.get("properties", {}).items())


def summary_of(handler: Any) -> str:
    """The handler's docstring's first line, else its name in words (`put_state` -> "Put state")."""
    doc = (getattr(handler, "__doc__", None) or "").strip().splitlines()
    name = getattr(handler, "__name__", "").strip("_").replace("_", " ")
    return doc[0] if doc else name[:1].upper() + name[1:]


def header_key(name: str, description: str) -> dict[str, Any]:
    return {"type": "apiKey", "in": "header", "name": name, "description": description}


BEARER: dict[str, Any] = {"type": "http", "scheme": "bearer", "description": "A Stigmer API key"}
