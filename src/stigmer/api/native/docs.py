"""OpenAPI 3.1 at /openapi.json (and /docs/openapi/native.json), generated from the msgspec models; the
reference page at /docs renders it (api/reference/).

The table below says, per route, what it really answers: every status code, typed query and header
parameters, and the media types. tests/api/test_openapi.py checks real responses against it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ... import __version__
from ...services import Services
from ..http import json_response
from . import claims as c, conversations as cv, models as m
from .semantic_sessions import KINDS as SESSION_KINDS, MAX_PAGE as SESSION_PAGE

MAX_PAGE = 1000  # engine Limits.max_page
MAX_WAIT = 60  # watch.MAX_WAIT

# Query parameters by name: one schema wherever the name is used.
QUERY: dict[str, dict[str, Any]] = {
    "prefix": {"schema": {"type": "string"}, "description": "Only keys starting with this."},
    "cursor": {"schema": {"type": "string"}, "description": "`next_cursor` of the previous page."},
    "start_after": {"schema": {"type": "string"}, "description": "Only keys after this one (not with cursor)."},
    "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}},
    "values": {"schema": {"type": "boolean", "default": True}, "description": "false leaves the values out."},
    "ttl": {"schema": {"type": "number", "minimum": 0},
            "description": "Expire after this many seconds; 0 (or `none`) removes the expiry."},
    "before": {"schema": {"type": "integer", "minimum": 0}, "description": "`next_before` of the previous page."},
    "namespace": {"schema": {"type": "string"}},
    "key": {"schema": {"type": "string"}, "description": "Only this key (needs namespace)."},
    "from": {"schema": {"type": "integer", "minimum": 0}, "description": "SSE: start at this revision (inclusive)."},
    "index": {"schema": {"type": "integer", "minimum": 0},
              "description": "Long-poll: answer with change sets after this revision (JSON, not SSE)."},
    "wait": {"schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT, "default": 30},
             "description": "Long-poll: seconds to wait for a change (an `s` suffix is accepted)."},
    "prev_value": {"schema": {"type": "boolean", "default": False}, "description": "Include each change's previous value."},
    "tenant": {"schema": {"type": "string"}, "description": "Only this tenant's keys."},
    "access_token": {"schema": {"type": "string"}, "description": "An API key, for clients that cannot send headers."},
    "lease_id": {"schema": {"type": "string"}, "description": "The lease to release (or give `fencing_token`)."},
    "fencing_token": {"schema": {"type": "integer", "minimum": 1}, "description": "The lease to release, by its token."},
    "order": {"schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
              "description": "Claims by (created_at, id), conversations by (updated_at, id)."},
    "subject_type": {"schema": {"type": "string"}, "description": "Only claims about this subject type."},
    "subject_id": {"schema": {"type": "string"}, "description": "Only claims about this subject id."},
    "tag": {"schema": {"type": "string"}, "description": "Only conversations carrying this tag."},
    "messages": {"schema": {"type": "boolean", "default": True}, "description": "false leaves the messages out."},
    "last": {"schema": {"type": "integer", "minimum": 0},
             "description": "Start at the last N messages (instead of `cursor`)."},
    "kind": {"schema": {"type": "string", "enum": list(SESSION_KINDS), "default": "session"},
             "description": "Sessions of this kind (cluster, region and observer back the coordination layers)."},
    "session_limit": {"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": SESSION_PAGE, "default": 50}},
    "q": {"schema": {"type": "string", "minLength": 1}, "required": True,
          "description": "The text to search for: every token of it, as whole tokens (docs/search.md)."},
    "search_limit": {"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": cv.MAX_SEARCH_PAGE,
                                                 "default": cv.DEFAULT_SEARCH_PAGE}},
    "export_limit": {"name": "limit", "schema": {"type": "integer", "minimum": 1},
                     "description": "Only the N most recently updated conversations."},
}

HEADERS: dict[str, dict[str, Any]] = {
    "If-Match": {"schema": {"type": "string"}, "description": "`*`, an ETag `\"version.revision\"` or a version `\"3\"`."},
    "If-None-Match": {"schema": {"type": "string"}},
    "Last-Event-ID": {"schema": {"type": "integer", "minimum": 0}, "description": "SSE resume: the last `id` received."},
    "X-Stigmer-Fence": {"schema": {"type": "string"}, "description": "`<resource>:<token>` (the lease's `fence`): "
                        "write only while that token is the resource's active lease, else 409 `fence_stale`."},
    "Idempotency-Key": {"schema": {"type": "string", "maxLength": 255}, "description": "Run this write once: a "
                        "repeat with the same request answers the first answer (`Idempotency-Replayed: true`); "
                        "another request under the key is 409 `idempotency_conflict` (docs/idempotency.md)."},
}

# API keys as bearer tokens (docs/security.md); the public routes opt out with an empty requirement.
SECURITY_SCHEMES: dict[str, Any] = {"apiKey": {
    "type": "http", "scheme": "bearer",
    "description": "A Stigmer API key (`stg_…`). Not needed in open mode (no key created yet)."}}
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]
PUBLIC = {"/healthz", "/health", "/readyz", "/ready", "/openapi.json", "/docs"}

ERRORS = {
    400: "Invalid argument or body", 401: "No valid API key (missing, unknown, revoked or expired)",
    403: "The key lacks the scope or prefix; a reserved namespace; a cross-site write; a non-loopback Host in open mode",
    404: "No such key, lease, claim or conversation", 408: "The body did not arrive in time",
    409: "Version, type or compare conflict; a lease held, expired or a stale fence; an Idempotency-Key reused; "
         "an external_id taken",
    410: "History needed is compacted", 412: "If-Match `*` and the key does not exist",
    413: "Body or value too large", 429: "Rate limit, or too many open streams", 503: "Not ready",
}
ACCESS_ERRORS = (401, 403, 429)  # every authenticated route, from the edge
JSON = "application/json"
SSE = "text/event-stream"
ENTRY_HEADERS = {"ETag": {"schema": {"type": "string"}, "description": "`\"version.revision\"`"},
                 "X-Stigmer-Revision": {"schema": {"type": "integer"}}}


@dataclasses.dataclass
class Op:
    method: str
    path: str
    summary: str
    ok: dict[int, Any]  # status -> model, None (no body), or {media type: model or schema}
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    body: Any = None  # request model, or a schema dict
    body_media: tuple[str, ...] = (JSON,)


ANY: dict[str, Any] = {}
CONVERSATION = {"anyOf": [{"$ref": "#/components/schemas/ConversationWithMessagesOut"},
                          {"$ref": "#/components/schemas/ConversationOut"}],
                "description": "ConversationOut with messages=false"}
OPS: list[Op] = [
    Op("get", "/v1/kv/{namespace}", "List live keys by key byte order", {200: m.ListOut}, (400,),
       ("prefix", "cursor", "start_after", "limit", "values")),
    Op("get", "/v1/namespaces", "The tenant's namespaces with their live key counts", {200: m.NamespacesOut}),
    Op("get", "/v1/semantic-sessions", "The tenant's semantic sessions, newest first (the console's list)",
       {200: m.SemanticSessionsOut}, (400,), ("kind", "session_limit", "cursor")),
    Op("get", "/v1/semantic-sessions/{id}", "A semantic session and its drift, one point per stored turn",
       {200: m.SemanticSessionDetailOut}, (404,)),
    Op("post", "/v1/kv/{namespace}:batch", "Read up to max_batch keys from one snapshot", {200: m.BatchOut},
       (400, 413), body=m.BatchRequest),
    Op("get", "/v1/kv/{namespace}/{key}", "Read a key (If-None-Match with its ETag gives 304)",
       {200: m.EntryOut, 304: None}, (400, 404), headers=("If-None-Match",)),
    Op("put", "/v1/kv/{namespace}/{key}", "Write a key; the body is the JSON value. 201 when it created the key; "
       "If-Match for compare-and-set, If-None-Match: * to create only", {200: m.EntryMetaOut, 201: m.EntryMetaOut},
       (400, 409, 412, 413), ("ttl",), ("If-Match", "If-None-Match", "X-Stigmer-Fence", "Idempotency-Key"), body=ANY),
    Op("patch", "/v1/kv/{namespace}/{key}", "Atomic incr / merge / append / JSON Patch; 201 when it created the key",
       {200: m.EntryOut, 201: m.EntryOut}, (400, 404, 409, 412, 413), ("ttl",), ("If-Match", "X-Stigmer-Fence", "Idempotency-Key"),
       body=m.PatchRequest,
       body_media=(JSON, "application/merge-patch+json", "application/json-patch+json")),
    Op("delete", "/v1/kv/{namespace}/{key}", "Delete a key (If-Match)", {200: m.DeleteOut}, (400, 404, 409, 412),
       headers=("If-Match", "X-Stigmer-Fence", "Idempotency-Key")),
    Op("get", "/v1/history/{namespace}/{key}", "Past changes of a key within retention, newest first",
       {200: m.HistoryOut}, (400,), ("before", "limit")),
    Op("post", "/v1/txn", "Compares and ops, all or nothing, one revision", {200: m.TxnOut}, (400, 404, 409, 413),
       headers=("X-Stigmer-Fence", "Idempotency-Key"), body=m.TxnRequest),
    Op("post", "/v1/leases/{resource}", "Acquire the resource's lease (409 while another is active; `wait` queues)",
       {201: m.LeaseOut}, (400, 409, 413), headers=("Idempotency-Key",), body=m.AcquireRequest),
    Op("patch", "/v1/leases/{resource}", "Renew the newest lease, named by lease_id or fencing_token: expiry = now + ttl",
       {200: m.LeaseOut}, (400, 404, 409, 413), headers=("Idempotency-Key",), body=m.RenewRequest),
    Op("delete", "/v1/leases/{resource}", "Release the newest lease, named by lease_id or fencing_token",
       {200: m.LeaseOut}, (400, 404), ("lease_id", "fencing_token"), ("Idempotency-Key",)),
    Op("get", "/v1/leases/{resource}", "The resource's newest lease, active or not", {200: m.LeaseOut}, (400, 404)),
    Op("post", "/v1/claims", "Create a claim with 1-50 evidence items (status pending)", {201: c.ClaimOut},
       (400, 413), body=c.CreateClaimRequest),
    Op("get", "/v1/claims", "List claims (without evidence) by (created_at, id)", {200: c.ClaimsOut}, (400,),
       ("limit", "cursor", "order", "subject_type", "subject_id")),
    Op("get", "/v1/claims/{id}", "A claim and its evidence", {200: c.ClaimOut}, (404,)),
    Op("post", "/v1/claims/{id}/verify", "Verify every evidence item now: a new run, whose status the claim takes",
       {201: c.RunOut}, (404,)),
    Op("get", "/v1/claims/{id}/runs", "Every verification run of a claim", {200: c.RunsOut}, (400, 404),
       ("limit", "cursor", "order")),
    Op("post", "/v1/conversations", "Create a conversation with its messages (up to 1000) and tags (up to 50)",
       {201: cv.ConversationWithMessagesOut}, (400, 409, 413), headers=("Idempotency-Key",),
       body=cv.CreateConversationRequest),
    Op("get", "/v1/conversations", "List conversations (without messages) by (updated_at, id)",
       {200: cv.ConversationsOut}, (400,), ("limit", "cursor", "order", "tag")),
    Op("get", "/v1/conversations:export", "Every conversation with all its messages, newest first, one per line "
       "(NDJSON, streamed)", {200: {cv.NDJSON: {"type": "string"}}}, (400,), ("export_limit",)),
    Op("get", "/v1/conversations:search", "Conversations whose messages hold every token of q, best match first "
       "(BM25), each with a snippet and its highlights", {200: cv.SearchOut}, (400,), ("q", "search_limit", "cursor")),
    Op("get", "/v1/conversations:tags", "The distinct tags of the tenant's conversations", {200: cv.TagsOut}),
    Op("get", "/v1/conversations:by-external-id/{external_id}", "The conversation with this external id and all "
       "its messages", {200: {JSON: CONVERSATION}}, (400, 404), ("messages",)),
    Op("get", "/v1/conversations/{id}", "A conversation and its first 1000 messages",
       {200: {JSON: CONVERSATION}}, (400, 404), ("messages",)),
    Op("patch", "/v1/conversations/{id}", "Change title, metadata or external_id (members left out stay)",
       {200: cv.ConversationOut}, (400, 404, 409, 413), headers=("Idempotency-Key",),
       body=cv.UpdateConversationRequest),
    Op("delete", "/v1/conversations/{id}", "Delete a conversation, its messages and tags",
       {200: cv.DeletedConversationOut}, (404,), headers=("Idempotency-Key",)),
    Op("post", "/v1/conversations/{id}/messages", "Append 1-1000 messages", {201: cv.MessagesOut},
       (400, 404, 413), headers=("Idempotency-Key",), body=cv.AppendRequest),
    Op("get", "/v1/conversations/{id}/messages", "Messages in order, a page at a time", {200: cv.MessagesOut},
       (400, 404), ("limit", "cursor", "last")),
    Op("delete", "/v1/conversations/{id}/messages", "Remove every message (the conversation stays)",
       {200: cv.ClearedOut}, (404,), headers=("Idempotency-Key",)),
    Op("delete", "/v1/conversations/{id}/messages/last", "Remove and return the last message (null when none)",
       {200: cv.PoppedOut}, (404,), headers=("Idempotency-Key",)),
    Op("get", "/v1/conversations/{id}/tags", "A conversation's tags, sorted", {200: cv.TagsOut}, (404,)),
    Op("post", "/v1/conversations/{id}/tags", "Add 1-50 tags", {200: cv.TagsOut}, (400, 404, 413),
       headers=("Idempotency-Key",), body=cv.TagsRequest),
    Op("delete", "/v1/conversations/{id}/tags/{tag}", "Remove one tag (absent: nothing happens)", {200: cv.TagsOut},
       (404,), headers=("Idempotency-Key",)),
    Op("get", "/v1/watch", "Change stream over SSE; with `index`, a JSON long-poll instead",
       {200: {SSE: {"type": "string"}, JSON: m.WatchPollOut}}, (400, 410),
       ("namespace", "prefix", "key", "from", "index", "wait", "prev_value", "access_token"), ("Last-Event-ID",)),
    Op("get", "/v1/revision", "The tenant's current and compacted revisions", {200: m.RevisionOut}),
    Op("get", "/v1/settings", "The server's settings, secrets redacted (admin)", {200: {JSON: {"type": "object"}}}),
    Op("get", "/v1/whoami", "The request's principal: tenant, scopes, prefixes", {200: m.PrincipalOut}),
    Op("post", "/v1/admin/keys", "Create an API key; the secret is shown only here (admin)", {201: m.CreatedKeyOut},
       (400, 413), body=m.CreateKeyRequest),
    Op("get", "/v1/admin/keys", "List API keys, never their secrets (admin)", {200: m.KeysOut}, (), ("tenant",)),
    Op("delete", "/v1/admin/keys/{id}", "Revoke an API key (admin)", {200: m.KeyEnvelopeOut}, (404,)),
    Op("get", "/v1/admin/metrics", "Server-wide request, latency, watcher, job and webhook figures (unrestricted admin)",
       {200: m.ServerMetricsOut}, (403,)),
    Op("get", "/v1/admin/tenants", "List tenants (admin)", {200: m.TenantsOut}),
    Op("post", "/v1/tokens", "Mint a capability token within the caller; the secret is shown only here",
       {201: m.CreatedTokenOut}, (400, 403, 413), body=m.MintTokenRequest),
    Op("get", "/v1/tokens", "The tenant's capability tokens that are not revoked, oldest first", {200: m.TokensOut}),
    Op("delete", "/v1/tokens/{id}", "Revoke a capability token and every token minted from it",
       {200: m.TokenEnvelopeOut}, (403, 404)),
    Op("get", "/healthz", "Liveness; touches nothing", {200: m.HealthOut}),
    Op("get", "/health", "Alias of /healthz", {200: m.HealthOut}),
    Op("get", "/readyz", "Readiness; runs a trivial database query", {200: m.ReadyOut, 503: m.ReadyOut}),
    Op("get", "/ready", "Alias of /readyz", {200: m.ReadyOut, 503: m.ReadyOut}),
    Op("get", "/openapi.json", "This document", {200: {JSON: {"type": "object"}}}),
    Op("get", "/docs", "The API reference page of every surface", {200: {"text/html": {"type": "string"}}}),
]

SSE_DESCRIPTION = (
    "Frames `id: R` / `event: change` / `data: ChangeSetOut`; `event: compacted` with `data: CompactedOut` when "
    "the history needed is gone; `: keep-alive` comments when idle. The stream ends when the server stops; "
    "reconnect with Last-Event-ID."
)


def _ref(model: Any) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schema(x: Any) -> dict[str, Any]:
    return _ref(x) if isinstance(x, type) else x


def _models() -> list[type]:
    found = {m.ErrorOut, m.ChangeSetOut, m.CompactedOut, m.DeleteOut, m.EntryMetaOut}
    for op in OPS:
        found |= {x for x in (op.body, *op.ok.values()) if isinstance(x, type)}
        found |= {x for v in op.ok.values() if isinstance(v, dict) for x in v.values() if isinstance(x, type)}
    return sorted(found, key=lambda t: t.__name__)


def _response(status: int, ok: Any) -> dict[str, Any]:
    if ok is None:
        return {"description": "Not modified", "headers": ENTRY_HEADERS}
    media = ok if isinstance(ok, dict) and not any(k in ok for k in ("type", "$ref")) else {JSON: ok}
    out: dict[str, Any] = {"description": "Created" if status == 201 else "OK",
                           "content": {t: {"schema": _schema(s)} for t, s in media.items()}}
    if SSE in media:
        out["description"] += ". " + SSE_DESCRIPTION
    return out


def _operation(op: Op) -> dict[str, Any]:
    error = {"content": {JSON: {"schema": _ref(m.ErrorOut)}}}
    responses = {str(s): _response(s, v) for s, v in op.ok.items()}
    if op.path.startswith("/v1/kv/") and op.path.endswith("{key}") and op.method != "delete":
        for s in op.ok:
            responses[str(s)]["headers"] = ENTRY_HEADERS
    statuses = (*op.errors, *(() if op.path in PUBLIC else ACCESS_ERRORS))
    if op.body is not None:
        statuses += (408,)
    responses |= {str(s): {"description": ERRORS[s], **error} for s in sorted(statuses) if str(s) not in responses}
    responses["5XX"] = {"description": "Server error", **error}
    for r in responses.values():
        r["headers"] = {**r.get("headers", {}), "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    parameters: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in ("namespace", "key", "id", "resource", "external_id", "tag") if "{" + n + "}" in op.path]
    parameters += [{"name": n, "in": "query", "required": False, **QUERY[n]} for n in op.query]
    parameters += [{"name": n, "in": "header", "required": False, **HEADERS[n]} for n in op.headers]
    parameters.append({"$ref": "#/components/parameters/X-Request-ID"})
    out: dict[str, Any] = {"summary": op.summary, "parameters": parameters, "responses": responses}
    if op.path in PUBLIC:
        out["security"] = []
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {t: {"schema": _schema(op.body)} for t in op.body_media}}
    return out


def openapi() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_models(), ref_template="#/components/schemas/{name}")
    # msgspec cannot express an untagged union of structs; say these by hand.
    schemas["TxnOut"]["properties"]["results"]["items"] = {"anyOf": [_ref(m.EntryOut), _ref(m.DeleteOut)]}
    schemas["ListOut"]["properties"]["entries"]["items"] = {"anyOf": [_ref(m.EntryOut), _ref(m.EntryMetaOut)]}
    paths: dict[str, Any] = {}
    for op in OPS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    components: dict[str, Any] = {
        "schemas": schemas,
        "parameters": {"X-Request-ID": {
            "name": "X-Request-ID", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 128},
            "description": "Echoed in the response (one is made up when absent or invalid)."}},
        "headers": {"X-Request-ID": {"schema": {"type": "string"}, "description": "The request's id, for the logs."}},
    }
    if SECURITY_SCHEMES:
        components["securitySchemes"] = SECURITY_SCHEMES
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Stigmer native API", "version": __version__},
        "paths": paths,
        "components": components,
    }
    if SECURITY:
        spec["security"] = SECURITY
    return spec


def routes(svc: Services) -> list[Route]:
    spec_json = msgspec.json.encode(openapi())

    async def openapi_json(request: Request) -> Response:
        return json_response(spec_json)

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
