"""The table of surfaces the harness drives. A new surface adds a class here and rows to the tables below.

Each surface knows how to write, read and delete one key over its own routes, where its changes show in the
tenant change log, what its error body looks like, which routes the fuzzer may hit and which limits it has.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
from hypothesis import strategies as st

MISSING = object()


class Refused(Exception):
    """A write answered with a non-2xx status."""

    def __init__(self, resp: httpx.Response):
        super().__init__(f"{resp.request.method} {resp.request.url} -> {resp.status_code} {resp.text[:300]}")
        self.resp = resp


@dataclass
class Ack:
    value: Any = None          # the value the write left (the counter after an incr)
    revision: int | None = None  # its revision, when the surface says it


def _ok(resp: httpx.Response) -> httpx.Response:
    if not 200 <= resp.status_code < 300:
        raise Refused(resp)
    return resp


# --- surfaces ----------------------------------------------------------------------------------------------
class Native:
    name = "native"
    namespace = "rel"  # where its keys are in the tenant change log

    def log_key(self, key: str) -> tuple[str, str]:
        return self.namespace, key

    def put(self, c: httpx.Client, key: str, value: Any) -> Ack:
        e = _ok(c.put(f"/v1/kv/{self.namespace}/{key}", json=value)).json()
        return Ack(value, e["mod_revision"])

    def incr(self, c: httpx.Client, key: str) -> Ack:
        e = _ok(c.patch(f"/v1/kv/{self.namespace}/{key}", json={"op": "incr"})).json()
        return Ack(e["value"], e["mod_revision"])

    def delete(self, c: httpx.Client, key: str) -> Ack:
        return Ack(None, _ok(c.delete(f"/v1/kv/{self.namespace}/{key}")).json()["revision"])

    def txn(self, c: httpx.Client, key: str, value: Any) -> Ack:
        """One transaction writing `key` in two namespaces: both or neither survive."""
        ops = [{"op": "put", "namespace": ns, "key": key, "value": value} for ns in (self.namespace, "rel-txn")]
        return Ack(value, _ok(c.post("/v1/txn", json={"ops": ops})).json()["revision"])

    def get(self, c: httpx.Client, key: str, namespace: str | None = None) -> Any:
        r = c.get(f"/v1/kv/{namespace or self.namespace}/{key}")
        if r.status_code == 404:
            return MISSING
        return _ok(r).json()["value"]

    @staticmethod
    def is_error(status: int, body: Any) -> bool:
        return isinstance(body, dict) and set(body) == {"error"} and {"code", "message"} <= set(body["error"])


class Statevec:
    name = "statevec"
    namespace = "statevec"  # may become unreadable through the native watch once API keys land

    @staticmethod
    def secret(key: str) -> str:
        return f"reliability:{key}:0123456789abcdef"

    def address(self, key: str) -> str:
        return hashlib.sha256(self.secret(key).encode()).hexdigest()

    def log_key(self, key: str) -> tuple[str, str]:
        return self.namespace, self.address(key)

    def put(self, c: httpx.Client, key: str, value: Any) -> Ack:
        _ok(c.put("/v", json={"key": self.secret(key), "val": value}))
        return Ack(value)

    def incr(self, c: httpx.Client, key: str) -> Ack:
        return Ack(_ok(c.patch("/v", json={"key": self.secret(key), "op": "incr"})).json()["val"])

    def delete(self, c: httpx.Client, key: str) -> Ack:
        _ok(c.request("DELETE", "/v", json={"key": self.secret(key)}))
        return Ack(None)

    def get(self, c: httpx.Client, key: str) -> Any:
        r = c.get(f"/v/{self.address(key)}")
        if r.status_code == 404:
            return MISSING
        return _ok(r).json()["val"]

    @staticmethod
    def is_error(status: int, body: Any) -> bool:
        return (isinstance(body, dict) and body.get("ok") is False and isinstance(body.get("error"), str)
                and (status == 429 or set(body) == {"ok", "error"}))


class CntrlNode:
    name = "cntrlnode"
    namespace = "cntrlnode"
    workflow = "relwf"

    def log_key(self, key: str) -> tuple[str, str]:
        return self.namespace, f"{self.workflow}/{key}"

    def put(self, c: httpx.Client, key: str, value: Any) -> Ack:
        return Ack(value, _ok(c.post(f"/v1/state/{self.workflow}/{key}", json={"value": value})).json()["revision"])

    def delete(self, c: httpx.Client, key: str) -> Ack:
        _ok(c.delete(f"/v1/state/{self.workflow}/{key}"))
        return Ack(None)

    def get(self, c: httpx.Client, key: str) -> Any:
        r = c.get(f"/v1/state/{self.workflow}/{key}")
        if r.status_code == 404:
            return MISSING
        return _ok(r).json()["value"]

    @staticmethod
    def is_error(status: int, body: Any) -> bool:
        return (isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)
                and set(body) <= {"error", "message", "currentVersion"})


SURFACES = {s.name: s for s in (Native(), Statevec(), CntrlNode())}

# --- crash loop: which (surface, kind of write) pairs the writers run ---------------------------------------
# kinds: put (unique values), incr (a counter), delete (put a fresh key, then delete it), txn (two keys at once)
CRASH_WRITES: list[tuple[str, str]] = [
    ("native", "put"), ("native", "incr"), ("native", "delete"), ("native", "txn"),
    ("statevec", "put"), ("statevec", "incr"), ("statevec", "delete"),
    ("cntrlnode", "put"), ("cntrlnode", "delete"),
]

# --- fuzzing: the routes of the compatible surfaces (the native API is fuzzed from /openapi.json) ----------
# path: a template whose {segment}s are filled from strategies (raw, percent-escapes included);
# body: "json" (objects built around `members`), or None; headers: names the fuzzer varies.
@dataclass(frozen=True)
class FuzzRoute:
    surface: str
    method: str
    path: str
    body_members: dict[str, Any] = field(default_factory=dict)  # member -> strategy of likely values
    headers: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    fixed_query: str = ""      # always sent (e.g. wait=0, so that a valid long-poll does not wait)
    body_value: bool = False   # the body is any JSON value (native PUT) rather than an object of members


_big_ints = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70),
                      st.integers(min_value=-2**70, max_value=-2**63 + 2))
_numbers = st.one_of(_big_ints, st.floats(allow_nan=False), st.just(1e308), st.just(-1e308), st.just(1.5))
_scalars = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=20))
JSON_VALUES = st.recursive(_scalars, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                          st.dictionaries(st.text(max_size=8), ch, max_size=4)),
                           max_leaves=12)
_secret = st.one_of(st.text(min_size=1, max_size=40), st.just("reliability:fuzz:0123456789abcdef"), _scalars)
_op = st.one_of(st.sampled_from(["incr", "merge", "append", "INCR", ""]), _scalars)

FUZZ_ROUTES: list[FuzzRoute] = [
    FuzzRoute("statevec", "PUT", "/v", {"key": _secret, "val": JSON_VALUES, "ttl": _numbers}),
    FuzzRoute("statevec", "PATCH", "/v", {"key": _secret, "op": _op, "val": JSON_VALUES, "field": _scalars,
                                          "amount": _numbers, "deep": _scalars, "max": _numbers, "ttl": _numbers}),
    FuzzRoute("statevec", "DELETE", "/v", {"key": _secret}),
    FuzzRoute("statevec", "GET", "/v/{hash}", headers=("If-None-Match", "x-statevec-key", "X-Forwarded-For")),
    FuzzRoute("statevec", "HEAD", "/v/{hash}", headers=("If-None-Match",)),
    FuzzRoute("statevec", "POST", "/v/batch", {"hashes": st.one_of(st.lists(st.text(max_size=70), max_size=25),
                                                                    _scalars)}),
    FuzzRoute("statevec", "OPTIONS", "/v", headers=("Access-Control-Request-Headers", "Origin")),
    FuzzRoute("cntrlnode", "POST", "/v1/state/{wf}/{key}", {"value": JSON_VALUES, "ttl": _numbers},
              headers=("X-CntrlNode-Key", "Authorization", "X-Request-Id")),
    FuzzRoute("cntrlnode", "POST", "/v1/state/{wf}/{key}/version",
              {"value": JSON_VALUES, "expectedVersion": _numbers, "ttl": _numbers}),
    FuzzRoute("cntrlnode", "GET", "/v1/state/{wf}/{key}", headers=("X-Request-Id",)),
    FuzzRoute("cntrlnode", "DELETE", "/v1/state/{wf}/{key}"),
    FuzzRoute("cntrlnode", "GET", "/v1/state/{wf}", query=("prefix", "limit", "cursor")),
    FuzzRoute("cntrlnode", "GET", "/v1/state/{wf}/{key}/stream", headers=("Last-Event-ID",),
              query=("fromRevision", "apiKey")),
    # native routes whose headers and query strings /openapi.json does not describe
    FuzzRoute("native", "GET", "/v1/watch", headers=("Last-Event-ID",), query=("namespace", "prefix", "key", "from")),
    FuzzRoute("native", "GET", "/v1/watch", query=("namespace", "index", "from"), fixed_query="wait=0"),
    FuzzRoute("native", "GET", "/v1/history/{ns}/{key}", query=("limit", "before")),
    FuzzRoute("native", "GET", "/v1/kv/{ns}", query=("prefix", "limit", "cursor", "values")),
    FuzzRoute("native", "PUT", "/v1/kv/{ns}/{key}", headers=("If-Match", "If-None-Match", "X-Request-ID"),
              query=("ttl",), body_value=True),
    FuzzRoute("native", "PATCH", "/v1/kv/{ns}/{key}", {"op": _op, "amount": _numbers, "field": _scalars,
                                                       "value": JSON_VALUES, "max": _numbers, "ttl": _numbers},
              headers=("If-Match",), query=("ttl",)),
    FuzzRoute("native", "GET", "/v1/kv/{ns}/{key}", headers=("If-None-Match",)),
]

# --- limits: settings the limits server runs with, and one over-limit request per row ----------------------
LIMIT_SETTINGS: dict[str, object] = {
    "max_value_bytes": 4096, "max_key_bytes": 64, "max_batch": 5,
    "statevec_max_value_bytes": 2048, "statevec_max_body_bytes": 8192, "statevec_max_batch": 4,
    "cntrlnode_max_value_bytes": 4096, "cntrlnode_max_streams": 3,
}


@dataclass(frozen=True)
class Limit:
    surface: str
    what: str
    request: Callable[[], dict]  # httpx.Client.request keyword arguments


_BIG_URL = 60_000     # bytes of path: beyond any sane URL limit (the client refuses > 64 KiB)
_BIG_HEADER = 70_000  # bytes of one header value

LIMITS: list[Limit] = [
    Limit("native", "value", lambda: dict(method="PUT", url="/v1/kv/lim/k", json="x" * 5000)),
    Limit("native", "body", lambda: dict(method="PUT", url="/v1/kv/lim/k", content=b'"' + b"x" * 80_000 + b'"')),
    Limit("native", "key", lambda: dict(method="PUT", url="/v1/kv/lim/" + "k" * 65, json=1)),
    Limit("native", "namespace", lambda: dict(method="PUT", url="/v1/kv/" + "n" * 257 + "/k", json=1)),
    Limit("native", "batch", lambda: dict(method="POST", url="/v1/kv/lim:batch", json={"keys": list("abcdef")})),
    Limit("native", "txn ops", lambda: dict(method="POST", url="/v1/txn", json={"ops": [
        {"op": "put", "namespace": "lim", "key": str(i), "value": i} for i in range(6)]})),
    Limit("native", "url", lambda: dict(method="GET", url="/v1/kv/lim/" + "k" * _BIG_URL)),
    Limit("native", "header", lambda: dict(method="GET", url="/v1/kv/lim/k", headers={"X-Big": "h" * _BIG_HEADER})),
    Limit("native", "header count", lambda: dict(method="GET", url="/v1/kv/lim/k",
                                                  headers={f"X-H{i}": "v" for i in range(2000)})),
    Limit("statevec", "value", lambda: dict(method="PUT", url="/v", json={"key": "k" * 16, "val": "x" * 3000})),
    Limit("statevec", "body", lambda: dict(method="PUT", url="/v", json={"key": "k" * 16, "val": 1, "pad": "x" * 9000})),
    Limit("statevec", "key", lambda: dict(method="PUT", url="/v", json={"key": "k" * 1025, "val": 1})),
    Limit("statevec", "batch", lambda: dict(method="POST", url="/v/batch", json={"hashes": ["0" * 64] * 5})),
    Limit("statevec", "url", lambda: dict(method="GET", url="/v/" + "a" * _BIG_URL)),
    Limit("statevec", "header", lambda: dict(method="GET", url="/v/" + "a" * 64, headers={"X-Big": "h" * _BIG_HEADER})),
    Limit("cntrlnode", "value", lambda: dict(method="POST", url="/v1/state/wf/k", json={"value": "x" * 5000})),
    Limit("cntrlnode", "body", lambda: dict(method="POST", url="/v1/state/wf/k",
                                            json={"value": 1, "pad": "x" * 80_000})),
    Limit("cntrlnode", "key", lambda: dict(method="POST", url="/v1/state/wf/" + "k" * 257, json={"value": 1})),
    Limit("cntrlnode", "workflow id", lambda: dict(method="GET", url="/v1/state/" + "w" * 257)),
    Limit("cntrlnode", "url", lambda: dict(method="GET", url="/v1/state/wf/" + "k" * _BIG_URL)),
    Limit("cntrlnode", "header", lambda: dict(method="GET", url="/v1/state/wf/k", headers={"X-Big": "h" * _BIG_HEADER})),
]
