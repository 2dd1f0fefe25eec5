"""The HTTP side of idempotency keys, for any surface: the `Idempotency-Key` header, the request's
fingerprint, and `idempotent(...)`, which wraps one route handler (docs/idempotency.md).

    put_key = idempotent(svc.idempotency, put_key, body_limit=limit)

A request without the header goes straight to the handler. With one, the body is read here (within the
route's own limit) and handed on to the handler unchanged; the engine runs the handler once per key and
fingerprint; a replay answers the stored status, body and headers plus `Idempotency-Replayed: true`.
Errors are engine errors, so each surface renders them in its own shape.
"""

from __future__ import annotations

from typing import Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from ...engine.errors import InvalidArgument
from ...engine.idempotency import Idempotency, Replay, canonical_json, fingerprint, validate_key
from .body import request_body
from .surface import principal

HEADER = "idempotency-key"
REPLAYED = "Idempotency-Replayed"
# Request headers that change what a request means (version checks, fences, the body's media type).
MEANING_HEADERS = ("content-type", "if-match", "if-none-match", "x-stigmer-fence")
# Response headers stored with the answer and replayed (never per-request ones like X-Request-ID).
REPLAY_HEADERS = frozenset({"content-type", "etag", "location", "x-stigmer-revision"})

Handler = Callable[[Request], Awaitable[Response]]


def idempotency_key(request: Request) -> str | None:
    """The request's key: None when the header is absent or empty; InvalidArgument beyond 255 characters."""
    return validate_key(request.headers.get(HEADER))


def canonical_body(body: bytes, as_json: bool = True) -> bytes:
    """A body that parses as JSON with its members sorted (order and spacing do not matter), whatever its
    Content-Type says (curl sends JSON as a form); other bodies, or all with `as_json=False`, as bytes."""
    if not body.strip():
        return b""
    if as_json:
        try:
            return b"json:" + canonical_json(msgspec.json.decode(body))
        except (msgspec.DecodeError, RecursionError, ValueError, TypeError):
            pass  # not JSON after all: the handler will say so
    return b"raw:" + body


def request_fingerprint(request: Request, body: bytes, extra: tuple[str, ...] = MEANING_HEADERS,
                        json_body: bool = True) -> bytes:
    """Method, path, query (parameter order ignored), the credential, the meaningful headers and the body."""
    p = principal(request)
    query = sorted(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    parts: list[bytes | str] = [request.method, request.url.path, msgspec.json.encode(query), p.key_id or p.kind]
    for name in extra:
        value = request.headers.get(name)
        parts.append(name if value is None else f"{name}:{value.strip().lower() if name == 'content-type' else value}")
    parts.append(canonical_body(body, json_body))
    return fingerprint(*parts)


def captured(response: Response) -> Replay | None:
    """What to store of a handler's response (None for a streamed one: it cannot be replayed)."""
    body = getattr(response, "body", None)
    if body is None:
        return None
    headers = tuple((k, v) for k, v in response.headers.items() if k in REPLAY_HEADERS)
    return Replay(response.status_code, bytes(body), headers)


def replayed(answer: Replay) -> Response:
    response = Response(answer.body, answer.status)
    for name, value in answer.headers:
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response


def _receive_again(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the client sends next (a disconnect, for handlers that listen)."""
    sent = False

    async def receive_() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_


def idempotent(idem: Idempotency, handler: Handler, *, body_limit: int, scope: str = "native",
               meaning_headers: tuple[str, ...] = MEANING_HEADERS, json_body: bool = True) -> Handler:
    """`handler` honouring `Idempotency-Key`; keys are the principal's tenant's, within `scope`.
    `json_body=False` for a route whose body is not JSON (compared byte for byte)."""

    async def endpoint(request: Request) -> Response:
        key = idempotency_key(request)
        if key is None:
            return await handler(request)
        body = await request_body(request, body_limit)
        fp = request_fingerprint(request, body, meaning_headers, json_body)
        again = Request(request.scope, _receive_again(body, request.receive))
        answer = await idem.run(principal(request).tenant, scope, key, fp, lambda: handler(again), captured)
        return replayed(answer) if isinstance(answer, Replay) else answer

    return endpoint


def not_replayable(handler: Handler) -> Handler:
    """`handler` for a call whose answer holds a secret shown once (minting a key or a token): replaying it
    would mean storing the secret, so an `Idempotency-Key` is refused rather than silently ignored."""

    async def endpoint(request: Request) -> Response:
        if idempotency_key(request) is not None:
            raise InvalidArgument("this call answers with a secret shown only once, so it is never replayed: "
                                  "send it without Idempotency-Key", field="Idempotency-Key")
        return await handler(request)

    return endpoint
