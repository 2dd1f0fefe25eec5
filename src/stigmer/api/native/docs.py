"""OpenAPI 3.1 at /openapi.json, generated from the msgspec models; a browsable page at /docs."""

from __future__ import annotations

import html
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ... import __version__
from ...services import Services
from ..http import json_response
from . import models as m

# (method, path, summary, request model or media type, response model, extra parameters)
ENDPOINTS: list[tuple[str, str, str, Any, Any, list[str]]] = [
    ("get", "/v1/kv/{namespace}", "List live keys by key byte order", None, m.ListOut, ["prefix", "cursor", "limit", "values"]),
    ("post", "/v1/kv/{namespace}:batch", "Read up to max_batch keys from one snapshot", m.BatchRequest, m.BatchOut, []),
    ("get", "/v1/kv/{namespace}/{key}", "Read a key (If-None-Match gives 304)", None, m.EntryOut, []),
    ("put", "/v1/kv/{namespace}/{key}", "Write a key; the body is the JSON value (If-Match, If-None-Match: *)", "any", m.EntryOut, ["ttl"]),
    ("patch", "/v1/kv/{namespace}/{key}", "Atomic incr / merge / append / JSON Patch (also merge-patch+json and json-patch+json bodies)", m.PatchRequest, m.EntryOut, ["ttl"]),
    ("delete", "/v1/kv/{namespace}/{key}", "Delete a key (If-Match)", None, m.DeleteOut, []),
    ("get", "/v1/history/{namespace}/{key}", "Past changes of a key within retention, newest first", None, m.HistoryOut, ["before", "limit"]),
    ("post", "/v1/txn", "Compares and ops, all or nothing, one revision", m.TxnRequest, m.TxnOut, []),
    ("get", "/v1/watch", "Change stream: SSE (text/event-stream), or long-poll with index and wait", None, m.WatchPollOut,
     ["namespace", "prefix", "key", "from", "index", "wait", "prev_value"]),
    ("get", "/v1/revision", "The tenant's current and compacted revisions", None, m.RevisionOut, []),
    ("get", "/v1/settings", "The server's settings", None, None, []),
    ("get", "/healthz", "Liveness; touches nothing", None, None, []),
    ("get", "/readyz", "Readiness; runs a trivial database query (503 when it fails)", None, None, []),
]


def _ref(model: Any) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi() -> dict[str, Any]:
    models = [x for e in ENDPOINTS for x in (e[3], e[4]) if isinstance(x, type)] + [m.ErrorOut]
    _, components = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")
    paths: dict[str, Any] = {}
    for method, path, summary, request, response, params in ENDPOINTS:
        op: dict[str, Any] = {"summary": summary, "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": _ref(response) if response else {}}}},
            "default": {"description": "Error envelope", "content": {"application/json": {"schema": _ref(m.ErrorOut)}}},
        }}
        parameters = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                      for n in ("namespace", "key") if "{" + n + "}" in path]
        parameters += [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in params]
        if parameters:
            op["parameters"] = parameters
        if request is not None:
            schema = {} if request == "any" else _ref(request)
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stigmer native API", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }


def _docs_page(spec: dict[str, Any]) -> str:
    rows = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td></tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Stigmer API</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;"
        "border-bottom:1px solid #ddd}code{font-size:.95em}</style></head><body>"
        f"<h1>Stigmer native API {html.escape(spec['info']['version'])}</h1>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1). "
        "Errors: <code>{\"error\": {\"code\", \"message\", \"details\"?, \"request_id\"}}</code>.</p>"
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Query</th></tr>" + "".join(rows) + "</table>"
        "</body></html>"
    )


def routes(svc: Services) -> list[Route]:
    spec = openapi()
    spec_json = msgspec.json.encode(spec)
    page = _docs_page(spec)

    async def openapi_json(request: Request) -> Response:
        return json_response(spec_json)

    async def docs_page(request: Request) -> Response:
        return HTMLResponse(page)

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
    ]
