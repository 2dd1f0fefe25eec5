"""The I/O-free core shared by `Client` and `AsyncClient`.

Everything that does not wait lives here: URL building, JSON encoding, response and error decoding,
retry timing, the SSE parser and the watch bookkeeping ("resume after revision R"). The two clients
only send the `Call`s built here and feed the bytes back.
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

import httpx
import msgspec

from . import errors
from .models import (
    UNSET, ChangeSet, Claim, ClaimPage, ClaimRun, ClaimRunPage, Compare, Conversation, ConversationPage, CreatedToken,
    Deleted, Entry, HistoryPage, Lease, Memory, Message, MessagePage, Op, Page, PollResult, Revision, SearchPage, Token,
    TxnResult
)

DEFAULT_URL = "http://127.0.0.1:7474"
USER_AGENT = "stigmer-python"

_encode = msgspec.json.Encoder().encode
_decoders: dict[Any, msgspec.json.Decoder] = {}


def decode(data: bytes, model: Any = Any) -> Any:
    dec = _decoders.get(model)
    if dec is None:
        dec = _decoders[model] = msgspec.json.Decoder(model)
    return dec.decode(data)


def default_url() -> str:
    return os.environ.get("STIGMER_URL") or DEFAULT_URL


def default_api_key() -> str | None:
    return os.environ.get("STIGMER_API_KEY") or None


def key_path(namespace: str, key: str) -> str:
    """`/v1/kv/{ns}/{key}` with each key segment percent-encoded ('/' kept; '.' and '..' escaped so no
    URL normalisation can fold them)."""
    segs = [quote(s, safe="") if s not in (".", "..") else s.replace(".", "%2E") for s in key.split("/")]
    return f"/v1/kv/{quote(namespace, safe='')}/" + "/".join(segs)


@dataclasses.dataclass(frozen=True)
class Retry:
    """Retry timing: exponential backoff with full jitter, `backoff * 2**attempt` capped at `max_backoff`.

    Requests are retried `retries` times: reads on any transport error or 502/503/504; writes only when
    the connection could not be opened (so the request surely was not applied). A watch reconnects
    without limit unless `max_reconnects` is set; its backoff starts over after each good connection.
    """

    retries: int = 2
    backoff: float = 0.1
    max_backoff: float = 5.0
    max_reconnects: int | None = None

    def delay(self, attempt: int) -> float:
        cap = min(self.max_backoff, self.backoff * (2 ** attempt))
        return cap / 2 + random.random() * cap / 2


RETRY_STATUS = (502, 503, 504)


@dataclasses.dataclass
class Call:
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    params: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    content: bytes | None = None
    idempotent: bool = False

    def may_retry(self, attempt: int, retry: Retry, exc: Exception | None = None,
                  response: httpx.Response | None = None) -> bool:
        if attempt >= retry.retries:
            return False
        if exc is not None:
            return self.idempotent or isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
        return self.idempotent and response is not None and response.status_code in RETRY_STATUS


def error_from_response(response: httpx.Response) -> errors.StigmerError:
    """Decode the `{"error": {...}}` envelope (or make one up for a foreign answer)."""
    code, message, details, rid = "", "", None, response.headers.get("x-request-id")
    try:
        body = msgspec.json.decode(response.content)
        err = body["error"]
        code, message = str(err["code"]), str(err["message"])
        details, rid = err.get("details"), err.get("request_id") or rid
    except Exception:
        message = response.text[:200] or response.reason_phrase
    cls = errors.error_class(code, response.status_code)
    return cls(message or f"HTTP {response.status_code}", code=code or None, status=response.status_code,
               details=details, request_id=rid)


def transport_error(exc: Exception) -> errors.ConnectionFailedError:
    return errors.ConnectionFailedError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _check(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)


def _entry(response: httpx.Response) -> Entry:
    _check(response)
    return decode(response.content, Entry)


def _model(model: Any) -> Callable[[httpx.Response], Any]:
    def parse(response: httpx.Response) -> Any:
        _check(response)
        return decode(response.content, model)
    return parse


class _TxnOut(msgspec.Struct):
    revision: int
    results: list[dict[str, Any]]


def _txn(response: httpx.Response) -> TxnResult:
    _check(response)
    out = decode(response.content, _TxnOut)
    return TxnResult(out.revision, [msgspec.convert(r, Deleted if "deleted" in r else Entry) for r in out.results])


def _versions(if_version: int | None, create_only: bool = False) -> dict[str, str]:
    if create_only:
        return {"If-None-Match": "*"}
    return {"If-Match": f'"{int(if_version)}"'} if if_version is not None else {}


def _ttl(ttl: float | None) -> dict[str, Any] | None:
    return {"ttl": ttl} if ttl is not None else None


def _json(value: Any) -> bytes:
    return _encode(value)


# ---- the calls, one builder per operation --------------------------------------------------------


def _fenced(headers: dict[str, str], fence: Lease | str | None) -> dict[str, str]:
    if fence is None:
        return headers
    return {**headers, "X-Stigmer-Fence": fence.fence if isinstance(fence, Lease) else str(fence)}


def keyed(call: Call, idempotency_key: str | None) -> Call:
    """The call with an `Idempotency-Key`: the server runs it once, so it may be retried like a read."""
    if not idempotency_key:
        return call
    return dataclasses.replace(call, headers={**(call.headers or {}), "Idempotency-Key": idempotency_key},
                               idempotent=True)


def get(namespace: str, key: str) -> Call:
    return Call("GET", key_path(namespace, key), _entry, idempotent=True)


def put(namespace: str, key: str, value: Any, ttl: float | None, if_version: int | None, create_only: bool,
        fence: Lease | str | None = None) -> Call:
    def parse(response: httpx.Response) -> Entry:
        return msgspec.structs.replace(_entry(response), value=value)
    return Call("PUT", key_path(namespace, key), parse, _ttl(ttl), _fenced(_versions(if_version, create_only), fence),
                _json(value))


def patch_op(namespace: str, key: str, body: dict[str, Any], ttl: float | None, if_version: int | None,
             fence: Lease | str | None = None) -> Call:
    return Call("PATCH", key_path(namespace, key), _entry, _ttl(ttl), _fenced(_versions(if_version), fence),
                _json(body))


def incr_body(amount: int | float, field: str | None, path: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"op": "incr", "amount": amount}
    if path is not None:
        body["path"] = list(path)
    elif field is not None:
        body["field"] = field
    return body


def merge_body(value: Mapping[str, Any], deep: bool) -> dict[str, Any]:
    return {"op": "merge", "value": value, "deep": deep}


def append_body(value: Any, max_items: int | None) -> dict[str, Any]:
    body = {"op": "append", "value": value}
    if max_items is not None:
        body["max"] = max_items
    return body


def patch_body(ops: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"op": "patch", "patch": [dict(o) for o in ops]}


def delete(namespace: str, key: str, if_version: int | None, fence: Lease | str | None = None) -> Call:
    return Call("DELETE", key_path(namespace, key), _model(Deleted), headers=_fenced(_versions(if_version), fence))


def batch_get(namespace: str, keys: Iterable[str]) -> Call:
    def parse(response: httpx.Response) -> list[Entry | None]:
        _check(response)
        return decode(response.content, _Batch).entries
    return Call("POST", f"/v1/kv/{quote(namespace, safe='')}:batch", parse, content=_json({"keys": list(keys)}),
                idempotent=True)


class _Batch(msgspec.Struct):
    entries: list[Entry | None]


def list_page(namespace: str, prefix: str | None, cursor: str | None, limit: int | None, values: bool,
              start_after: str | None = None) -> Call:
    params: dict[str, Any] = {}
    if prefix:
        params["prefix"] = prefix
    if cursor:
        params["cursor"] = cursor
    elif start_after is not None:
        params["start_after"] = start_after
    if limit is not None:
        params["limit"] = limit
    if not values:
        params["values"] = "false"
    return Call("GET", f"/v1/kv/{quote(namespace, safe='')}", _model(Page), params, idempotent=True)


def history(namespace: str, key: str, before: int | None, limit: int | None) -> Call:
    params = {k: v for k, v in (("before", before), ("limit", limit)) if v is not None}
    path = "/v1/history/" + key_path(namespace, key).removeprefix("/v1/kv/")
    return Call("GET", path, _model(HistoryPage), params, idempotent=True)


def txn(compare: Iterable[Compare | Mapping[str, Any]], ops: Iterable[Op | Mapping[str, Any]],
        fence: Lease | str | None = None) -> Call:
    body = {"compare": [c if isinstance(c, Compare) else dict(c) for c in compare],
            "ops": [o if isinstance(o, Op) else dict(o) for o in ops]}
    return Call("POST", "/v1/txn", _txn, headers=_fenced({}, fence), content=_json(body))


# ---- leases ---------------------------------------------------------------------------------------


def lease_path(resource: str) -> str:
    return "/v1/leases/" + key_path("_", resource).removeprefix("/v1/kv/_/")


def acquire_lease(resource: str, holder: str, ttl: float | None, wait: float | None) -> Call:
    body: dict[str, Any] = {"holder": holder}
    if ttl is not None:
        body["ttl"] = ttl
    if wait:
        body["wait"] = wait
    return Call("POST", lease_path(resource), _model(Lease), content=_json(body))


def _lease_name(lease_id: str | None, fencing_token: int | None) -> dict[str, Any]:
    if lease_id is None and fencing_token is None:
        raise errors.InvalidArgumentError("name the lease: lease_id or fencing_token", code="invalid_argument")
    return {k: v for k, v in (("lease_id", lease_id), ("fencing_token", fencing_token)) if v is not None}


def renew_lease(resource: str, lease_id: str | None, fencing_token: int | None, ttl: float | None) -> Call:
    body = _lease_name(lease_id, fencing_token) | ({"ttl": ttl} if ttl is not None else {})
    return Call("PATCH", lease_path(resource), _model(Lease), content=_json(body))


def release_lease(resource: str, lease_id: str | None, fencing_token: int | None) -> Call:
    return Call("DELETE", lease_path(resource), _model(Lease), _lease_name(lease_id, fencing_token))


def get_lease(resource: str) -> Call:
    return Call("GET", lease_path(resource), _model(Lease), idempotent=True)


# ---- memory (the Statewave surface's routes, docs/memory.md) -------------------------------------------


class _Memories(msgspec.Struct):
    memories: list[Memory]


def search_memories(subject_id: str, q: str | None, kind: str | None, limit: int | None,
                    tenant_id: str | None, api_key: str | None) -> Call:
    params = {k: v for k, v in {"subject_id": subject_id, "q": q, "kind": kind, "limit": limit}.items()
              if v is not None}
    headers = ({"X-API-Key": api_key} if api_key else {}) | ({"X-Tenant-ID": tenant_id} if tenant_id else {})

    def parse(response: httpx.Response) -> list[Memory]:
        _check(response)
        return decode(response.content, _Memories).memories
    return Call("GET", "/v1/memories/search", parse, params=params, headers=headers, idempotent=True)


# ---- capability tokens ------------------------------------------------------------------------------


class _TokenEnvelope(msgspec.Struct):
    token: Token


class _Tokens(msgspec.Struct):
    tokens: list[Token]


def mint_token(name: str, scopes: Iterable[str], prefixes: Iterable[str] | None, expires_in: float | None,
               expires_at: Any) -> Call:
    body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
    if prefixes:
        body["prefixes"] = list(prefixes)
    if expires_in is not None:
        body["expires_in"] = int(expires_in)
    if expires_at is not None:  # a datetime (sent as RFC 3339) or seconds since the epoch
        body["expires_at"] = expires_at.isoformat() if hasattr(expires_at, "isoformat") else expires_at
    return Call("POST", "/v1/tokens", _model(CreatedToken), content=_json(body))


def list_tokens() -> Call:
    return Call("GET", "/v1/tokens", lambda r: _model(_Tokens)(r).tokens, idempotent=True)


def revoke_token(token_id: str) -> Call:
    return Call("DELETE", "/v1/tokens/" + quote(token_id, safe=""), lambda r: _model(_TokenEnvelope)(r).token,
                idempotent=True)


# ---- claims ---------------------------------------------------------------------------------------


def _claim_path(claim_id: str, tail: str = "") -> str:
    return f"/v1/claims/{quote(claim_id, safe='')}{tail}"


def _pages(limit: int | None, cursor: str | None, order: str | None, **filters: str | None) -> dict[str, Any]:
    given = {"limit": limit, "cursor": cursor, "order": order, **filters}
    return {k: v for k, v in given.items() if v is not None}


def create_claim(subject_type: str, subject_id: str, statement: str, evidence: Iterable[Mapping[str, Any]]) -> Call:
    body = {"subject_type": subject_type, "subject_id": subject_id, "statement": statement,
            "evidence": [dict(e) for e in evidence]}
    return Call("POST", "/v1/claims", _model(Claim), content=_json(body))


def get_claim(claim_id: str) -> Call:
    return Call("GET", _claim_path(claim_id), _model(Claim), idempotent=True)


def list_claims(limit: int | None, cursor: str | None, order: str | None, subject_type: str | None,
                subject_id: str | None) -> Call:
    params = _pages(limit, cursor, order, subject_type=subject_type, subject_id=subject_id)
    return Call("GET", "/v1/claims", _model(ClaimPage), params, idempotent=True)


def verify_claim(claim_id: str) -> Call:
    return Call("POST", _claim_path(claim_id, "/verify"), _model(ClaimRun))


def claim_runs(claim_id: str, limit: int | None, cursor: str | None, order: str | None) -> Call:
    return Call("GET", _claim_path(claim_id, "/runs"), _model(ClaimRunPage), _pages(limit, cursor, order),
                idempotent=True)


# ---- conversations --------------------------------------------------------------------------------


def _conversation_path(conversation_id: str, tail: str = "") -> str:
    return f"/v1/conversations/{quote(conversation_id, safe='')}{tail}"


def _messages_body(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(m) for m in messages]


class _Messages(msgspec.Struct):
    messages: list[Message]


class _Popped(msgspec.Struct):
    message: Message | None


class _Cleared(msgspec.Struct):
    deleted: int


class _Tags(msgspec.Struct):
    tags: list[str]


def _with_messages(messages: bool) -> dict[str, Any] | None:
    return None if messages else {"messages": "false"}


def create_conversation(external_id: str | None, title: str | None, metadata: Mapping[str, Any] | None,
                        tags: Iterable[str] | None, messages: Iterable[Mapping[str, Any]] | None) -> Call:
    body: dict[str, Any] = {k: v for k, v in (("external_id", external_id), ("title", title),
                                              ("metadata", metadata)) if v is not None}
    if tags:
        body["tags"] = list(tags)
    if messages:
        body["messages"] = _messages_body(messages)
    return Call("POST", "/v1/conversations", _model(Conversation), content=_json(body))


def get_conversation(conversation_id: str, messages: bool) -> Call:
    return Call("GET", _conversation_path(conversation_id), _model(Conversation), _with_messages(messages),
                idempotent=True)


def conversation_by_external_id(external_id: str, messages: bool) -> Call:
    path = "/v1/conversations:by-external-id/" + key_path("_", external_id).removeprefix("/v1/kv/_/")
    return Call("GET", path, _model(Conversation), _with_messages(messages), idempotent=True)


def list_conversations(limit: int | None, cursor: str | None, order: str | None, tag: str | None) -> Call:
    return Call("GET", "/v1/conversations", _model(ConversationPage), _pages(limit, cursor, order, tag=tag),
                idempotent=True)


def search_conversations(q: str, limit: int | None, cursor: str | None) -> Call:
    return Call("GET", "/v1/conversations:search", _model(SearchPage), _pages(limit, cursor, None, q=q),
                idempotent=True)


def update_conversation(conversation_id: str, changes: dict[str, Any]) -> Call:
    """`changes` holds only the members to change (None clears one)."""
    body = {k: v for k, v in changes.items() if v is not UNSET}
    return Call("PATCH", _conversation_path(conversation_id), _model(Conversation), content=_json(body))


def delete_conversation(conversation_id: str) -> Call:
    return Call("DELETE", _conversation_path(conversation_id), _check)


def append_messages(conversation_id: str, messages: Iterable[Mapping[str, Any]]) -> Call:
    return Call("POST", _conversation_path(conversation_id, "/messages"), lambda r: _model(_Messages)(r).messages,
                content=_json({"messages": _messages_body(messages)}))


def list_messages(conversation_id: str, limit: int | None, cursor: str | None, last: int | None) -> Call:
    params = {k: v for k, v in (("limit", limit), ("cursor", cursor), ("last", last)) if v is not None}
    return Call("GET", _conversation_path(conversation_id, "/messages"), _model(MessagePage), params,
                idempotent=True)


def pop_message(conversation_id: str) -> Call:
    return Call("DELETE", _conversation_path(conversation_id, "/messages/last"),
                lambda r: _model(_Popped)(r).message)


def clear_messages(conversation_id: str) -> Call:
    return Call("DELETE", _conversation_path(conversation_id, "/messages"), lambda r: _model(_Cleared)(r).deleted)


def conversation_tags(conversation_id: str) -> Call:
    return Call("GET", _conversation_path(conversation_id, "/tags"), lambda r: _model(_Tags)(r).tags, idempotent=True)


def add_conversation_tags(conversation_id: str, tags: Iterable[str]) -> Call:
    return Call("POST", _conversation_path(conversation_id, "/tags"), lambda r: _model(_Tags)(r).tags,
                content=_json({"tags": list(tags)}), idempotent=True)


def remove_conversation_tag(conversation_id: str, tag: str) -> Call:
    return Call("DELETE", _conversation_path(conversation_id, "/tags/" + quote(tag, safe="")),
                lambda r: _model(_Tags)(r).tags, idempotent=True)


def export_params(limit: int | None) -> dict[str, Any]:
    return {"limit": limit} if limit is not None else {}


def export_line(line: str) -> Conversation | None:
    return decode(line.encode(), Conversation) if line else None


def revision() -> Call:
    return Call("GET", "/v1/revision", _model(Revision), idempotent=True)


def poll(namespace: str | None, prefix: str | None, key: str | None, index: int, wait: float,
         prev_value: bool = False) -> Call:
    params = {**watch_filter(namespace, prefix, key, prev_value), "index": index, "wait": wait}
    return Call("GET", "/v1/watch", _model(PollResult), params, idempotent=True)


def watch_filter(namespace: str | None, prefix: str | None, key: str | None, prev_value: bool = False) -> dict[str, Any]:
    out = {k: v for k, v in (("namespace", namespace), ("prefix", prefix), ("key", key)) if v is not None}
    if prev_value:
        out["prev_value"] = "true"
    return out


# ---- server-sent events --------------------------------------------------------------------------


@dataclasses.dataclass
class SSEvent:
    event: str = ""
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed lines (without their line ending); returns an event at each blank line (WHATWG rules)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._event, self._data, self._id, self._retry, self._any = "", [], None, None, False

    def feed(self, line: str) -> SSEvent | None:
        if not line:
            if not self._any:
                return None
            ev = SSEvent(self._event, "\n".join(self._data), self._id, self._retry)
            self._reset()
            return ev
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        else:
            return None
        self._any = True
        return None


class WatchState:
    """Bookkeeping of one watch across connections: what to ask for, what was already handed out.

    `last` is the revision the stream stands at: the id of the opening frame (the server's starting
    point), of the last change set yielded, or of a keep-alive (the server's progress id). Each reconnect sends it as Last-Event-ID, so the server
    replays exactly what came after it; a change set at or below `last` is never yielded twice.
    """

    def __init__(self, namespace: str | None, prefix: str | None, key: str | None, from_revision: int | None,
                 retry: Retry, prev_value: bool = False):
        self.filter = watch_filter(namespace, prefix, key, prev_value)
        self.from_revision = from_revision
        self.retry = retry
        self.last: int | None = None
        self.failures = 0  # consecutive failed connections
        self.reconnects = 0
        self.server_retry_ms: int | None = None
        self._decoder = SSEDecoder()

    def params(self) -> dict[str, Any]:
        if self.last is None and self.from_revision is not None:
            return {**self.filter, "from": self.from_revision}
        return dict(self.filter)

    def headers(self) -> dict[str, str]:
        h = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last is not None:
            h["Last-Event-ID"] = str(self.last)
        return h

    def connected(self, response: httpx.Response) -> None:
        """Check a fresh connection's answer; an error answer raises (5xx only after the retries)."""
        self._decoder = SSEDecoder()  # a half-received event of the old connection is dropped
        if response.is_success:
            return
        err = error_from_response(response)
        if response.status_code in RETRY_STATUS:
            raise _Retryable(err)
        raise err

    def feed(self, line: str) -> ChangeSet | None:
        ev = self._decoder.feed(line)
        if ev is None:
            return None
        if ev.retry is not None:
            self.server_retry_ms = ev.retry
        if ev.event == "compacted":
            details = msgspec.json.decode(ev.data) if ev.data else {}
            raise errors.CompactedError(
                f"history before revision {details.get('oldest_revision')} was compacted",
                status=410, details=details)
        if ev.event == "change":
            cs = decode(ev.data.encode(), ChangeSet)
            self.failures = 0
            if self.last is not None and cs.revision <= self.last:
                return None  # already yielded (never happens with a correct server; kept as a guard)
            self.last = cs.revision
            return cs
        if ev.id is not None and ev.id.isdigit():
            # The opening frame (where the server starts) or a keep-alive's progress id: everything
            # this watch matches up to that revision has been sent, so resuming after it loses nothing
            # and does not ask for history that compaction may have removed (a quiet key's case).
            self.failures = 0
            if self.last is None or int(ev.id) > self.last:
                self.last = int(ev.id)
        return None

    def dropped(self, exc: BaseException | None) -> float:
        """The connection failed or ended: return the delay before reconnecting, or raise."""
        if self.retry.max_reconnects is not None and self.reconnects >= self.retry.max_reconnects:
            if isinstance(exc, _Retryable):
                raise exc.error
            raise transport_error(exc) if isinstance(exc, Exception) else errors.ConnectionFailedError(
                "the watch stream ended")
        delay = self.retry.delay(self.failures)
        self.failures += 1
        self.reconnects += 1
        return delay


class _Retryable(Exception):
    def __init__(self, error: errors.StigmerError):
        super().__init__(str(error))
        self.error = error


def timeouts(timeout: float | httpx.Timeout) -> httpx.Timeout:
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


def watch_timeout(base: httpx.Timeout, read: float) -> httpx.Timeout:
    """A stream's read timeout must outlast the server's keep-alive interval (15 s by default)."""
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


class BaseClient:
    """Settings shared by both clients."""

    def __init__(self, url: str | None, timeout: float | httpx.Timeout, retry: Retry | None,
                 headers: Mapping[str, str] | None, watch_read_timeout: float, api_key: str | None = None):
        self.url = (url or default_url()).rstrip("/")
        self.timeout = timeouts(timeout)
        self.retry = retry or Retry()
        api_key = api_key or default_api_key()
        self.api_key = api_key  # the memory runtime's routes take it as X-API-Key (its surface's own header)
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.headers = {"User-Agent": USER_AGENT, **auth, **(headers or {})}
        self.watch_read_timeout = watch_read_timeout

    def _watch_state(self, namespace: str | None, prefix: str | None, key: str | None,
                     from_revision: int | None, prev_value: bool) -> WatchState:
        if namespace is None and (prefix is not None or key is not None):
            raise errors.InvalidArgumentError("key and prefix need a namespace", code="invalid_argument")
        return WatchState(namespace, prefix, key, from_revision, self.retry, prev_value)


__all__ = ["BaseClient", "Call", "Retry", "SSEDecoder", "SSEvent", "WatchState", "DEFAULT_URL", "UNSET"]
