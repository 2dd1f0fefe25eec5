"""/openapi.json tells the truth: real responses of the app have documented statuses, media types and
bodies that validate against the documented schemas; parameters used are documented with fitting types."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from support import ADMIN_KEY, app_settings, live_app

# ---- a validator for the JSON Schema subset msgspec and docs.py emit --------------------------------

KNOWN = {"$ref", "anyOf", "enum", "const", "type", "properties", "required", "additionalProperties", "items",
         "minimum", "maximum", "minLength", "maxLength", "title", "description", "default", "format"}
TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def errors(value: Any, schema: dict[str, Any], spec: dict[str, Any], at: str = "$") -> list[str]:
    unknown = set(schema) - KNOWN
    assert not unknown, f"the test's validator does not know {unknown} (at {at})"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return errors(value, spec["components"]["schemas"][name], spec, at)
    if "anyOf" in schema:
        tries = [errors(value, s, spec, at) for s in schema["anyOf"]]
        return [] if any(not t for t in tries) else [f"{at}: matches no anyOf branch: {tries}"]
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{at}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{at}: {value!r} != {schema['const']!r}")
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(TYPES[t](value) for t in types):
            return out + [f"{at}: {value!r} is not {types}"]
    if TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{at}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{at}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            out.append(f"{at}: length {len(value)} out of range")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{at}: missing {name!r}" for name in schema.get("required", []) if name not in value]
        for name, v in value.items():
            if name in props:
                out += errors(v, props[name], spec, f"{at}.{name}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{at}: undocumented member {name!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(v, schema["additionalProperties"], spec, f"{at}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += errors(v, schema["items"], spec, f"{at}[{i}]")
    return out


def test_the_validator_itself():
    spec = {"components": {"schemas": {"S": {"type": "object", "properties": {"a": {"type": "integer", "minimum": 1}},
                                             "required": ["a"], "additionalProperties": False}}}}
    ref = {"$ref": "#/components/schemas/S"}
    assert errors({"a": 1}, ref, spec) == []
    assert errors({"a": 0}, ref, spec) and errors({"a": True}, ref, spec) and errors({}, ref, spec)
    assert errors({"a": 1, "b": 2}, ref, spec) and errors(None, {"anyOf": [{"type": "string"}]}, spec)
    assert errors(None, {"anyOf": [{"type": "string"}, {"type": "null"}]}, spec) == []


# ---- matching requests to operations ------------------------------------------------------------------


def find_operation(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    for template, ops in spec["paths"].items():
        pattern = re.escape(template).replace(r"\{namespace\}", "[^/:]+").replace(r"\{key\}", ".+").replace(
            r"\{id\}", "[^/]+").replace(r"\{resource\}", ".+").replace(r"\{external_id\}", ".+").replace(r"\{tag\}", "[^/]+")
        if re.fullmatch(pattern, path) and method.lower() in ops:
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path}: no documented operation")


def parameters(spec: dict[str, Any], op: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for p in op.get("parameters", []):
        if "$ref" in p:
            p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        out[(p["in"], p["name"].lower())] = p
    return out


def fits(raw: str, schema: dict[str, Any]) -> bool:
    """Does a query or header string fit a parameter schema (as the server parses it)?"""
    t = schema.get("type")
    if t == "integer":
        return raw.isdigit() and schema.get("minimum", 0) <= int(raw) <= schema.get("maximum", int(raw))
    if t == "number":
        n = float(raw.removesuffix("s"))
        return schema.get("minimum", n) <= n <= schema.get("maximum", n)
    if t == "boolean":
        return raw in ("true", "false")
    return True


def check(spec: dict[str, Any], request: httpx.Request, response: httpx.Response) -> str:
    """Assert the exchange is documented; return the operation's key, e.g. 'put /v1/kv/{namespace}/{key}'."""
    template, op = find_operation(spec, request.method, request.url.path)
    where = f"{request.method} {request.url.path}?{request.url.query.decode()} -> {response.status_code}"
    status = str(response.status_code)
    documented = op["responses"].get(status) or op["responses"].get(f"{status[0]}XX")
    assert documented, f"{where}: status not documented ({list(op['responses'])})"
    params = parameters(spec, op)
    for name, raw in request.url.params.multi_items():
        assert ("query", name.lower()) in params, f"{where}: query parameter {name!r} not documented"
        if response.is_success:
            assert fits(raw, params[("query", name.lower())]["schema"]), f"{where}: {name}={raw!r} misfits its schema"
    for name in ("if-match", "if-none-match", "last-event-id", "x-request-id", "x-stigmer-fence"):
        if name in request.headers:
            assert ("header", name) in params, f"{where}: header {name} not documented"
    for name in documented.get("headers", {}):
        assert name in response.headers, f"{where}: documented header {name} missing"
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if not response.content and "content" not in documented:
        return f"{request.method.lower()} {template}"
    assert media in documented.get("content", {}), f"{where}: {media!r} not documented"
    if media == "application/json":
        problems = errors(response.json(), documented["content"][media]["schema"], spec)
        assert not problems, f"{where}: body does not fit the schema: {problems}"
    return f"{request.method.lower()} {template}"


# ---- the requests ---------------------------------------------------------------------------------------


def exchanges(c) -> list[httpx.Response]:
    r: list[httpx.Response] = []
    put = lambda path, body=b'{"x": 1}', **kw: c.put(path, content=body, **kw)  # noqa: E731
    r += [put("/v1/kv/oa/a"), put("/v1/kv/oa/a"), put("/v1/kv/oa/a", params={"ttl": "60"}),
          put("/v1/kv/oa/t", params={"ttl": "0"}), put("/v1/kv/oa/a", params={"ttl": "-1"}),
          put("/v1/kv/oa/a", headers={"If-None-Match": "*"}), put("/v1/kv/oa/none", headers={"If-Match": "*"}),
          put("/v1/kv/oa/a", headers={"If-Match": '"99"'}), put("/v1/kv/oa/a", body=b""), put("/v1/kv/oa/a", body=b"{"),
          put("/v1/kv/oa/big", body=b'"' + b"x" * 2000 + b'"'), put("/v1/kv/bad%20ns/a"),
          put("/v1/kv/oa/a", headers={"X-Request-ID": "oa-1"})]
    etag = r[-1].headers["etag"]
    r += [c.get("/v1/kv/oa/a"), c.get("/v1/kv/oa/a", headers={"If-None-Match": etag}), c.get("/v1/kv/oa/missing"),
          c.get("/v1/kv/oa/a", headers={"If-None-Match": '"0.0"'}), c.get("/v1/kv/bad%20ns/a")]
    r += [c.patch("/v1/kv/oa/n", json={"op": "incr", "amount": 2}), c.patch("/v1/kv/oa/n", json={"op": "incr"}),
          c.patch("/v1/kv/oa/m", content=b'{"a": {"b": 1}}', headers={"Content-Type": "application/merge-patch+json"}),
          c.patch("/v1/kv/oa/m", content=b'[{"op": "add", "path": "/c", "value": 2}]',
                  headers={"Content-Type": "application/json-patch+json"}),
          c.patch("/v1/kv/oa/l", json={"op": "append", "value": 1, "max": 3}, params={"ttl": "30"}),
          c.patch("/v1/kv/oa/none", json={"op": "patch", "patch": []}), c.patch("/v1/kv/oa/a", json={"op": "incr"}),
          c.patch("/v1/kv/oa/none", json={"op": "incr"}, headers={"If-Match": "*"}),
          c.patch("/v1/kv/oa/n", json={"op": "nope"}), c.patch("/v1/kv/oa/n", json={"op": "incr", "amount": "x"}),
          c.patch("/v1/kv/oa/m", json={"op": "merge", "value": {"z": "y" * 2000}})]
    r += [c.delete("/v1/kv/oa/t"), c.delete("/v1/kv/oa/t"), c.delete("/v1/kv/oa/a", headers={"If-Match": '"99"'}),
          c.delete("/v1/kv/oa/a", headers={"If-Match": "nonsense"}), c.delete("/v1/kv/oa/gone", headers={"If-Match": "*"})]
    r += [c.get("/v1/kv/oa"), c.get("/v1/kv/oa", params={"limit": "1", "prefix": "n", "values": "false"}),
          c.get("/v1/kv/oa", params={"limit": "0"}), c.get("/v1/kv/oa", params={"limit": "x"}),
          c.get("/v1/kv/oa", params={"cursor": "!!"})]
    first = c.get("/v1/kv/oa", params={"limit": "1"}).json()["next_cursor"]
    r += [c.get("/v1/kv/oa", params={"cursor": first}), c.get("/v1/namespaces")]
    sid = c.post("/v1/run", json={"message": "q", "response": "a"}).json()["session_id"]
    r += [c.get("/v1/semantic-sessions"), c.get("/v1/semantic-sessions", params={"kind": "x"}),
          c.get(f"/v1/semantic-sessions/{sid}"), c.get("/v1/semantic-sessions/missing")]
    r += [c.get("/v1/admin/metrics")]
    r += [c.post("/v1/kv/oa:batch", json={"keys": ["a", "nope"]}), c.post("/v1/kv/oa:batch", json={"keys": []}),
          c.post("/v1/kv/oa:batch", content=b"{")]
    r += [c.get("/v1/history/oa/a"), c.get("/v1/history/oa/a", params={"limit": "1", "before": "3"}),
          c.get("/v1/history/oa/a", params={"limit": "0"})]
    r += [c.post("/v1/txn", json={"compare": [{"namespace": "oa", "key": "a", "exists": True}],
                                  "ops": [{"op": "put", "namespace": "oa", "key": "tx", "value": 1},
                                          {"op": "delete", "namespace": "oa", "key": "tx"}]}),
          c.post("/v1/txn", json={"compare": [{"namespace": "oa", "key": "a", "version": 999}], "ops": []}),
          c.post("/v1/txn", json={"ops": [{"op": "patch", "namespace": "oa", "key": "none", "patch": []}]}),
          c.post("/v1/txn", json={"ops": "nope"})]
    r += [c.get("/v1/watch", params={"namespace": "oa", "index": "0", "wait": "0", "prev_value": "true"}),
          c.get("/v1/watch", params={"index": "0", "wait": "99"}), c.get("/v1/watch", params={"key": "a"}),
          c.get("/v1/watch", params={"namespace": "oa", "index": "x"})]
    lease = c.post("/v1/leases/oa/l", json={"holder": "w", "ttl": 30})
    fence = {"X-Stigmer-Fence": lease.json()["fence"]}
    r += [lease, c.post("/v1/leases/oa/l", json={"holder": "w2"}), c.post("/v1/leases/oa/l", json={"holder": ""}),
          c.get("/v1/leases/oa/l"), c.get("/v1/leases/oa/never"),
          c.patch("/v1/leases/oa/l", json={"lease_id": lease.json()["lease_id"], "ttl": 60}),
          c.patch("/v1/leases/oa/l", json={"fencing_token": 9}), c.patch("/v1/leases/oa/l", json={}),
          c.put("/v1/kv/oa/fenced", content=b"1", headers=fence),
          c.put("/v1/kv/oa/fenced", content=b"1", headers={"X-Stigmer-Fence": "oa/l:9"}),
          c.patch("/v1/kv/oa/fenced", json={"op": "incr"}, headers=fence),
          c.post("/v1/txn", json={"ops": [{"op": "delete", "namespace": "oa", "key": "fenced"}]}, headers=fence),
          c.delete("/v1/kv/oa/fenced", headers=fence),
          c.delete("/v1/leases/oa/l", params={"fencing_token": "1"}), c.delete("/v1/leases/oa/l", params={"lease_id": "x"}),
          c.delete("/v1/leases/oa/l")]
    hello = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    claim = c.post("/v1/claims", json={"subject_type": "doc", "subject_id": "d1", "statement": "s", "evidence": [
        {"kind": "text_hash", "source": "s", "data": "hello world", "hash": hello},
        {"kind": "json_value", "source": "j", "data": {"a": None}, "json_path": "$.a", "expected_value": None},
        {"kind": "key_value", "namespace": "oa", "key": "a", "json_path": "$.x", "expected_value": 1},
        {"kind": "state_event", "source": "1", "hash": hello}]})
    cid = claim.json()["id"]
    r += [claim, c.post("/v1/claims", json={"subject_type": "doc"}),
          c.post("/v1/claims", json={"subject_type": "d", "subject_id": "d", "statement": "s",
                                     "evidence": [{"kind": "text_hash", "source": "s", "data": "x", "hash": "no"}]}),
          c.post(f"/v1/claims/{cid}/verify"), c.post("/v1/claims/nope/verify"),
          c.get(f"/v1/claims/{cid}"), c.get("/v1/claims/nope"),
          c.get("/v1/claims", params={"limit": "1", "order": "asc", "subject_type": "doc", "subject_id": "d1"}),
          c.get("/v1/claims", params={"cursor": "!!"}), c.get("/v1/claims", params={"order": "up"}),
          c.get(f"/v1/claims/{cid}/runs", params={"limit": "5", "order": "desc"}), c.get("/v1/claims/nope/runs"),
          c.get(f"/v1/claims/{cid}/runs", params={"limit": "0"})]
    conv = c.post("/v1/conversations", json={"external_id": "oa/1", "title": "T", "metadata": {"k": 1}, "tags": ["a"],
                                             "messages": [{"role": "user", "content": "hi", "metadata": {"x": None}},
                                                          {"role": "assistant", "content": "yo", "token_count": 2}]})
    conv_id = conv.json()["id"]
    page = c.get(f"/v1/conversations/{conv_id}/messages", params={"limit": "1"})
    r += [conv, c.post("/v1/conversations", json={"external_id": "oa/1"}),
          c.post("/v1/conversations", json={"messages": [{"role": "robot", "content": "x"}]}),
          c.post("/v1/conversations", content=b"x" * (11 * 1024 * 1024)),
          c.get("/v1/conversations", params={"limit": "1", "order": "asc", "tag": "a"}),
          c.get("/v1/conversations", params={"cursor": "!!"}),
          c.get("/v1/conversations:export", params={"limit": "5"}), c.get("/v1/conversations:export", params={"limit": "0"}),
          c.get("/v1/conversations:tags"),
          c.get("/v1/conversations:search", params={"q": "hi", "limit": "5"}),
          c.get("/v1/conversations:search", params={"q": " "}),
          c.get("/v1/conversations:search", params={"q": "hi", "cursor": "!!"}),
          c.get("/v1/conversations:by-external-id/oa/1"), c.get("/v1/conversations:by-external-id/oa/1",
                                                                params={"messages": "false"}),
          c.get("/v1/conversations:by-external-id/nope"), c.get("/v1/conversations:by-external-id/oa/1",
                                                                params={"messages": "maybe"}),
          c.get(f"/v1/conversations/{conv_id}"), c.get(f"/v1/conversations/{conv_id}", params={"messages": "false"}),
          c.get("/v1/conversations/nope"), c.get(f"/v1/conversations/{conv_id}", params={"messages": "x"}),
          c.patch(f"/v1/conversations/{conv_id}", json={"title": None, "metadata": {"k": 2}}),
          c.patch(f"/v1/conversations/{conv_id}", json={"title": 1}), c.patch("/v1/conversations/nope", json={}),
          c.patch(f"/v1/conversations/{c.post('/v1/conversations', json={}).json()['id']}",
                  json={"external_id": "oa/1"}),
          c.patch(f"/v1/conversations/{conv_id}", content=b"x" * (11 * 1024 * 1024)),
          c.post(f"/v1/conversations/{conv_id}/messages", json={"messages": [{"role": "tool", "content": "t"}]}),
          c.post(f"/v1/conversations/{conv_id}/messages", json={"messages": []}),
          c.post("/v1/conversations/nope/messages", json={"messages": [{"role": "tool", "content": "t"}]}),
          c.post(f"/v1/conversations/{conv_id}/messages", content=b"x" * (11 * 1024 * 1024)),
          page, c.get(f"/v1/conversations/{conv_id}/messages", params={"cursor": page.json()["next_cursor"]}),
          c.get(f"/v1/conversations/{conv_id}/messages", params={"last": "2"}),
          c.get(f"/v1/conversations/{conv_id}/messages", params={"limit": "0"}),
          c.get("/v1/conversations/nope/messages"),
          c.delete(f"/v1/conversations/{conv_id}/messages/last"), c.delete("/v1/conversations/nope/messages/last"),
          c.get(f"/v1/conversations/{conv_id}/tags"), c.get("/v1/conversations/nope/tags"),
          c.post(f"/v1/conversations/{conv_id}/tags", json={"tags": ["b"]}),
          c.post(f"/v1/conversations/{conv_id}/tags", json={"tags": ["no tag"]}),
          c.post("/v1/conversations/nope/tags", json={"tags": ["b"]}),
          c.post(f"/v1/conversations/{conv_id}/tags", content=b"x" * (11 * 1024 * 1024)),
          c.delete(f"/v1/conversations/{conv_id}/tags/b"), c.delete("/v1/conversations/nope/tags/b"),
          c.delete(f"/v1/conversations/{conv_id}/messages"), c.delete("/v1/conversations/nope/messages"),
          c.delete(f"/v1/conversations/{conv_id}/messages/last"),
          c.delete(f"/v1/conversations/{conv_id}"), c.delete(f"/v1/conversations/{conv_id}")]
    r += [c.get(p) for p in ("/v1/revision", "/v1/settings", "/healthz", "/health", "/readyz", "/ready",
                             "/openapi.json", "/docs")]
    return r


def access_exchanges(c, limited) -> list[httpx.Response]:
    """With keys in force: the admin routes, and the edge's 401, 403 and 429 on the others."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    made = c.post("/v1/admin/keys", json={"scopes": ["read"], "name": "ro", "expires_in": 3600}, headers=admin)
    reader = {"Authorization": f"Bearer {made.json()['secret']}"}
    r = [made, c.post("/v1/admin/keys", json={"scopes": ["fly"]}, headers=admin),
         c.post("/v1/admin/keys", json={"scopes": ["read"]}, headers=reader),
         c.get("/v1/admin/keys", headers=admin), c.get("/v1/admin/keys", params={"tenant": "default"}, headers=admin),
         c.get("/v1/admin/tenants", headers=admin), c.get("/v1/whoami", headers=reader), c.get("/v1/whoami"),
         c.delete(f"/v1/admin/keys/{made.json()['key']['id']}", headers=admin),
         c.delete("/v1/admin/keys/nope", headers=admin), c.get("/v1/settings", headers=admin)]
    r += [c.get("/v1/kv/oa/a"), c.put("/v1/kv/oa/a", json=1, headers=reader), c.get("/v1/revision", headers=reader)]
    r += [c.get("/v1/watch", params={"index": "0", "wait": "0", "access_token": ADMIN_KEY})]
    token = c.post("/v1/tokens", json={"name": "t", "scopes": ["read"], "expires_in": 60}, headers=admin)
    reader = {"Authorization": f"Bearer {c.post('/v1/admin/keys', json={'scopes': ['read']}, headers=admin).json()['secret']}"}
    r += [token, c.post("/v1/tokens", json={"name": "t", "scopes": ["fly"]}, headers=admin),
          c.post("/v1/tokens", json={"name": "t", "scopes": ["write"]}, headers=reader),
          c.get("/v1/tokens", headers=admin), c.delete("/v1/tokens/nope", headers=admin),
          c.delete(f"/v1/tokens/{token.json()['token']['id']}", headers=reader),
          c.delete(f"/v1/tokens/{token.json()['token']['id']}", headers=admin)]
    return r + [limited.get("/v1/revision") for _ in range(2)]


@pytest.fixture
def small_client(make_client):
    return make_client(max_value_bytes=1024)


def test_every_response_is_documented(small_client, make_client):
    spec = small_client.get("/openapi.json").json()
    seen: dict[str, set[int]] = {}
    keyed, limited = make_client(admin_key=ADMIN_KEY), make_client(native_rate_limit=1)
    for resp in [*exchanges(small_client), *access_exchanges(keyed, limited)]:
        seen.setdefault(check(spec, resp.request, resp), set()).add(resp.status_code)
    every = {f"{method} {path}" for path, ops in spec["paths"].items() for method in ops}
    assert every - set(seen) == {"get /v1/watch"} - set(seen), f"not exercised: {every - set(seen)}"
    # The statuses the requests above must have met, so the test keeps its teeth.
    assert {200, 201, 400, 409, 412, 413} <= seen["put /v1/kv/{namespace}/{key}"]
    assert {200, 304, 404} <= seen["get /v1/kv/{namespace}/{key}"]
    assert {200, 201, 400, 404, 409, 412, 413} <= seen["patch /v1/kv/{namespace}/{key}"]
    assert {200, 404, 409} <= seen["delete /v1/kv/{namespace}/{key}"]
    assert {200, 400, 404, 409} <= seen["post /v1/txn"]
    assert {201, 400, 403} <= seen["post /v1/admin/keys"] and {200, 404} <= seen["delete /v1/admin/keys/{id}"]
    assert {201, 400, 403} <= seen["post /v1/tokens"] and {200, 403, 404} <= seen["delete /v1/tokens/{id}"]
    assert {200, 401} <= seen["get /v1/whoami"] and 429 in seen["get /v1/revision"]
    assert {201, 400, 409} <= seen["post /v1/leases/{resource}"] and {200, 404} <= seen["get /v1/leases/{resource}"]
    assert {200, 400, 404} <= seen["patch /v1/leases/{resource}"] <= seen["patch /v1/leases/{resource}"]
    assert {200, 400, 404} <= seen["delete /v1/leases/{resource}"]
    assert {201, 400} <= seen["post /v1/claims"] and {200, 400} <= seen["get /v1/claims"]
    assert {200, 404} <= seen["get /v1/claims/{id}"] and {201, 404} <= seen["post /v1/claims/{id}/verify"]
    assert {200, 400, 404} <= seen["get /v1/claims/{id}/runs"]
    assert {201, 400, 409, 413} <= seen["post /v1/conversations"] and {200, 400} <= seen["get /v1/conversations"]
    assert {200, 400} <= seen["get /v1/conversations:export"] and {200, 400} <= seen["get /v1/conversations:search"]
    assert {200, 400, 404} <= seen["get /v1/conversations:by-external-id/{external_id}"]
    assert {200, 400, 404} <= seen["get /v1/conversations/{id}"]
    assert {200, 400, 404, 409, 413} <= seen["patch /v1/conversations/{id}"]
    assert {200, 404} <= seen["delete /v1/conversations/{id}"]
    assert {201, 400, 404, 413} <= seen["post /v1/conversations/{id}/messages"]
    assert {200, 400, 404} <= seen["get /v1/conversations/{id}/messages"]
    assert {200, 404} <= seen["delete /v1/conversations/{id}/messages"]
    assert {200, 404} <= seen["delete /v1/conversations/{id}/messages/last"]
    assert {200, 404} <= seen["get /v1/conversations/{id}/tags"] and {200, 404} <= seen["delete /v1/conversations/{id}/tags/{tag}"]
    assert {200, 400, 404, 413} <= seen["post /v1/conversations/{id}/tags"]


def test_allow_matches_the_documented_methods(client):
    spec = client.get("/openapi.json").json()
    mismatched = {}
    for template, ops in spec["paths"].items():
        path = template.replace("{namespace}", "oa").replace("{key}", "k/1").replace("{resource}", "r/1").replace(
            "{external_id}", "e/1").replace("{tag}", "t")
        documented = {m.upper() for m in ops} | ({"HEAD"} if "get" in ops else set())
        probe = next(m for m in ("POST", "PUT", "DELETE", "GET") if m not in documented)
        r = client.request(probe, path)
        assert r.status_code == 405, (probe, path, r.status_code)
        allow = {m.strip() for m in r.headers["allow"].split(",")}
        if allow != documented:
            mismatched[template] = (sorted(allow), sorted(documented))
        options = client.options(path)
        assert options.status_code == 204 and {m.strip() for m in options.headers["allow"].split(",")} == documented | {
            "OPTIONS"}, (path, options.headers.get("allow"))
    assert mismatched == {}


@pytest.fixture
def live_url(tmp_path):
    """The app on uvicorn in a thread: an SSE stream needs a real server to be read and left."""
    with live_app(app_settings({"data_dir": str(tmp_path)})) as url:
        yield url


def test_sse_watch_is_documented(live_url):
    with httpx.Client(base_url=live_url, timeout=5) as c:
        spec = c.get("/openapi.json").json()
        _, op = find_operation(spec, "GET", "/v1/watch")
        with c.stream("GET", "/v1/watch", params={"namespace": "oa", "from": "1"}, headers={"Last-Event-ID": "0"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].split(";")[0] in op["responses"]["200"]["content"]
            assert r.headers["content-type"].startswith("text/event-stream")
            assert next(r.iter_lines()).startswith("retry:")
        params = parameters(spec, op)
        assert fits("1", params[("query", "from")]["schema"]) and ("header", "last-event-id") in params
