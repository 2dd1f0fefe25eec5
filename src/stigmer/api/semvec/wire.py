"""The semvec surface's wire: its route table and dispatcher, JSON bodies and the `{"detail": …}` errors.

Routes are matched here on the decoded path (upstream is FastAPI: `%2F` decodes before matching, and only
`{key:path}` spans segments). Per request, in the spec's order (§3): auth and the rate limit (the edge) →
scope (403) → body size (413) → validation (422) → the handler (404, then semantic errors).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ...engine import errors as engine_errors
from ...engine.sessions.work import Malformed
from ...engine.access import Principal, allows
from ...support.embeddings import EmbeddingUnavailable
from ..kit import validation
from ..kit.body import BodyTooLarge, request_body
from ..kit.errors import Problem, problem_of

log = logging.getLogger("stigmer.semvec")
_encode = msgspec.json.Encoder().encode
MAX_BODY = 1 << 20
MAX_IMPORT_BODY = 64 << 20


def fail(status: int, detail: str, headers: dict[str, str] | None = None) -> Problem:
    return Problem(status, "semvec", detail, headers=headers)


def json(body: Any, status: int = 200) -> Response:
    return Response(_encode(body), status, media_type="application/json")


def problem(exc: Exception) -> Problem:
    """Any error in this surface's terms: status and a `detail` string (or the validation items)."""
    if isinstance(exc, validation.RequestInvalid):
        return exc
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, Malformed):
        return fail(400, exc.message)
    if isinstance(exc, engine_errors.NotFound):
        return fail(404, exc.message)
    if isinstance(exc, engine_errors.Conflict):
        return fail(409, exc.message)
    if isinstance(exc, engine_errors.InvalidArgument):
        return fail(422, exc.message)
    if isinstance(exc, EmbeddingUnavailable):
        return fail(503, "embedding provider unavailable")
    if isinstance(exc, BodyTooLarge):
        return fail(413, "Request body too large")
    return problem_of(exc)


def _credential_presented(request: Request) -> bool:
    h = request.headers
    return bool((h.get("authorization") or "").strip() or (h.get("x-api-key") or "").strip())


def render(request: Request, p: Problem) -> Response:
    """`{"detail": …}`; errors the edge or the kit raised in native terms get the spec's wording."""
    if isinstance(p, validation.RequestInvalid):
        return json({"detail": p.items}, 422)
    headers = dict(p.headers)
    detail = p.message
    if p.code != "semvec":
        if p.status == 401:
            detail = "Invalid license: unknown API key" if _credential_presented(request) else "Missing license token"
            headers.pop("WWW-Authenticate", None)
        elif p.status == 429:
            retry = headers.get("Retry-After", "1")
            detail = f"rate limit exceeded; retry after ~{retry}s"
            headers = {"Retry-After": retry}
        elif p.status == 403 and p.code == "forbidden":
            detail = "Insufficient scope"
        elif p.status == 404:
            detail = "Not Found"
        elif p.status == 405:
            detail = "Method Not Allowed"
        elif p.status == 413:
            detail = "Request body too large"
        elif p.status >= 500 and p.status != 503:
            detail = "Internal Server Error"
    return Response(_encode({"detail": detail}), p.status, headers, media_type="application/json")


@dataclasses.dataclass
class Call:
    """One request as a handler sees it."""

    request: Request
    tenant: str
    params: dict[str, str]
    data: Any = None  # the parsed JSON body, once `body` read it

    async def raw(self, limit: int = MAX_BODY) -> bytes:
        return await request_body(self.request, limit)

    async def body(self, model: type[validation.M], limit: int = MAX_BODY, optional: bool = False) -> validation.M:
        """The JSON body as `model`; with `optional`, an absent body is `{}` (Decision D10)."""
        raw = await self.raw(limit)
        data = validation.json_of(raw)
        if data is None:
            if not optional:
                raise validation.RequestInvalid([validation.missing(["body"])])
            data = {}
        self.data = data
        return validation.validate(model, data, "body")

    async def json_body(self, limit: int = MAX_BODY) -> Any:
        return validation.json_of(await self.raw(limit))

    def query(self, model: type[validation.M]) -> validation.M:
        return validation.query(self.query_params(), model)

    def query_params(self) -> Mapping[str, str]:
        return dict(parse_qsl(self.request.scope["query_string"].decode("latin-1"), keep_blank_values=True))


Handler = Callable[[Call], Awaitable[Response]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/v1/session/{session_id}/entities/{key:path}"
    handler: Handler

    def match(self, path: str) -> dict[str, str] | None:
        pattern = self.path.strip("/").split("/")
        segments = path.strip("/").split("/")  # a collection root is served with and without its slash
        params: dict[str, str] = {}
        for i, p in enumerate(pattern):
            if p.endswith(":path}"):
                rest = "/".join(segments[i:])
                if not rest:
                    return None
                params[p[1:-6]] = rest
                return params
            if i >= len(segments):
                return None
            if p.startswith("{"):
                if not segments[i]:
                    return None
                params[p[1:-1]] = segments[i]
            elif p != segments[i]:
                return None
        return params if len(segments) == len(pattern) else None


class Dispatcher:
    """Every route of the surface; one endpoint for all of them."""

    def __init__(self, routes: list[Route], observe: Callable[[str, str, int, float], None] | None = None):
        self.routes = routes
        self.observe = observe  # (method, route template, status, seconds) for /metrics

    async def __call__(self, request: Request) -> Response:
        start = time.perf_counter()
        path = request.scope["path"]
        method = "GET" if request.method == "HEAD" else request.method
        allowed: list[str] = []
        template = None
        try:
            for r in self.routes:
                params = r.match(path)
                if params is None:
                    continue
                if r.method != method:
                    allowed.append(r.method)
                    continue
                template = request.scope["state"]["route"] = r.path  # the metrics' and the log's route
                p: Principal | None = request.scope["state"]["principal"]  # None only on a public path
                if p is not None and method not in ("GET", "HEAD") and p.kind != "open" and not allows(p, "write"):
                    raise fail(403, "Insufficient scope")
                response = await r.handler(Call(request, p.tenant if p is not None else "", params))
                break
            else:
                if allowed:
                    raise fail(405, "Method Not Allowed", {"Allow": ", ".join(dict.fromkeys(allowed))})
                raise fail(404, "Not Found")
        except Exception as exc:
            prob = problem(exc)
            if prob.status == 500:
                log.error("unexpected error on %s %s", request.method, path, exc_info=exc)
            response = render(request, prob)
        if self.observe is not None and template is not None:
            self.observe(method, template, response.status_code, time.perf_counter() - start)
        return response


