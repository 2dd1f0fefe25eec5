"""The authentication edge: one pure-ASGI layer ahead of every route, the key fast path included.

For each request it picks the surface by path, works out the client's address (believing forwarded
headers only from trusted proxies), refuses what a browser could send cross-site where it would write,
checks `Host` in open mode (DNS rebinding), resolves the credential the surface's spec names into a
principal, refuses a missing or invalid one where the surface requires it, charges the rate limit, and
adds the surface's CORS and rate-limit headers to the response. The result lands in `scope["state"]`:
`surface` (its name), `principal` (None for an anonymous statevec request), `client` (`key:<id>` or `ip:<addr>`) and
`client_ip`. No front door authenticates or compares keys by itself.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.access import Principal
from ..engine.keys import Keys
from ..engine.tokens import is_token
from ..support.ratelimit import Network, RateLimiter, client_ip
from .kit.errors import Problem
from .kit.ratelimit import charge
from .kit.surface import Surface, header, surface_for

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def forwarded_for(scope: Scope) -> str | None:
    """The forwarded client chain as X-Forwarded-For reads it; RFC 7239 `Forwarded: for=` too."""
    xff = header(scope, b"x-forwarded-for")
    if xff is not None:
        return xff
    fwd = header(scope, b"forwarded")
    if fwd is None:
        return None
    hops = []
    for element in fwd.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "for":
                value = value.strip('"')
                hops.append(value[1:value.find("]")] if value.startswith("[") else value.rsplit(":", 1)[0]
                            if value.count(":") == 1 else value)
    return ",".join(hops) or None


class Edge:
    def __init__(self, app: ASGIApp, surfaces: list[Surface], keys: Keys, limiter: RateLimiter,
                 trusted: list[Network], allowed_hosts: frozenset[str]):
        self.app = app
        self.surfaces = surfaces
        self.keys = keys
        self.limiter = limiter
        self.trusted = trusted
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        surface = surface_for(self.surfaces, scope["path"], scope.get("query_string", b""))
        state = scope.setdefault("state", {})
        state["surface"] = surface.name  # for the metrics and the log
        peer = scope["client"][0] if scope.get("client") else None
        ip = state["client_ip"] = client_ip(peer, forwarded_for(scope) if self.trusted else None, self.trusted)
        origin = header(scope, b"origin")
        cors = surface.cors.headers(origin)
        try:
            principal = await self._admit(scope, surface, origin)
            state["principal"] = principal
            key_id = principal.key_id if principal is not None else None
            state["client"] = f"key:{key_id}" if key_id is not None else f"ip:{ip}"
            extra = cors
            if scope["method"] not in surface.free_methods and scope["path"] not in surface.public:
                limit_headers, limited = await charge(self.limiter, surface, key_id, ip)
                extra = cors + limit_headers
                if limited is not None:
                    raise limited
        except Problem as problem:
            state.setdefault("principal", None)
            await self._send_problem(scope, receive, send, surface, problem, cors)
            return
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _admit(self, scope: Scope, surface: Surface, origin: str | None) -> Principal | None:
        method = scope["method"]
        open_mode = await self.keys.open_mode()
        host = header(scope, b"host")
        if open_mode and host is not None and not self.any_host and scope["path"] not in surface.public:
            name = host_name(host)
            if not is_loopback_host(name) and name not in self.allowed_hosts:
                raise Problem(403, "forbidden_host", "this server answers only loopback host names in open mode"
                              " (set STIGMER_ALLOWED_HOSTS or create an API key)", {"host": name})
        if method in MUTATING and self._cross_site(scope, surface, origin, host):
            raise Problem(403, "cross_site", "cross-site write refused: this origin is not allowed by CORS",
                          {"origin": origin or ""})
        scope["state"]["open_mode"] = open_mode
        if not open_mode:
            principal = await self._authenticate(scope, surface, method, origin)
        else:  # a capability token is narrower than open mode: always looked up and honoured
            presented = (surface.open_credential(scope) if surface.open_credential is not None
                         else next((c for c in surface.credentials(scope) if c and is_token(c)), None))
            principal = surface.open_as() if presented is None else await self._token(presented)
        raw_path = scope.get("raw_path") or b""
        if surface.checks_path and b"%" in raw_path:
            try:
                unquote_to_bytes(raw_path.split(b"?", 1)[0]).decode("utf-8")
            except UnicodeDecodeError:
                raise Problem(400, "invalid_path", "the path is not valid UTF-8 once percent-decoded") from None
        return principal

    async def _token(self, presented: str) -> Principal:
        principal = await self.keys.authenticate(presented)
        if principal is None:
            raise Problem(401, "unauthenticated", "unknown, revoked or expired capability token",
                          headers={"WWW-Authenticate": "Bearer"})
        return principal

    async def _authenticate(self, scope: Scope, surface: Surface, method: str, origin: str | None) -> Principal | None:
        for presented in surface.credentials(scope):
            principal = await self.keys.authenticate(presented)
            if principal is not None:
                return principal
        preflight = method == "OPTIONS" and origin is not None
        if surface.requires_key and not preflight and scope["path"] not in surface.public:
            raise Problem(401, "unauthenticated", "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})
        return None

    @staticmethod
    def _cross_site(scope: Scope, surface: Surface, origin: str | None, host: str | None) -> bool:
        if origin is not None:
            if surface.cors.allows(origin):
                return False
            return host is None or origin not in (f"http://{host}", f"https://{host}")
        return header(scope, b"sec-fetch-site") == "cross-site"

    async def _send_problem(self, scope: Scope, receive: Receive, send: Send, surface: Surface, problem: Problem,
                            cors: list[tuple[bytes, bytes]]) -> None:
        response = surface.render(Request(scope, receive), problem)
        present = {k.lower() for k, _ in response.raw_headers}
        response.raw_headers.extend(h for h in cors if h[0] not in present)
        await response(scope, receive, send)
