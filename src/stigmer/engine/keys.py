"""API keys: created at random and shown once, stored as SHA-256, resolved into principals.

A key is `stg_` followed by 43 URL-safe characters (256 random bits), or, in the AgentState format,
`as_live_` followed by 40 base62 characters. Only its digest is stored; a key is found by its digest and
compared in constant time. Expiry and a revocation made through this server take effect on the next
request; a key row read from the store is trusted for at most CACHE_SECONDS, so a change made elsewhere
(the offline CLI) is seen within that. `authenticate` also resolves capability tokens (`as_cap_…`,
engine/tokens.py), which are never cached: every credential goes through this one call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import Callable, Iterable

import msgspec

from ..store.base import KeyRepository
from .types import KeyRecord
from .access import ADMIN, DEFAULT_TENANT, GRANTABLE, Grant, Principal
from .errors import Forbidden, InvalidArgument, NotFound
from .ids import new_secret as new_base62_secret
from .tokens import Tokens, is_token

log = logging.getLogger("stigmer.keys")

PREFIX = "stg_"
AGENTSTATE_PREFIX = "as_live_"
SECRET_FORMATS = ("stigmer", "agentstate")
MIN_IMPORTED_LENGTH = 32  # an existing key brought in with `--secret` must be at least this long
TOUCH_EVERY = 60.0  # seconds between two `last_used_at` writes of one key
CACHE_SECONDS = 1.0  # how long a key row read from the store is trusted
CACHE_ROWS = 10_000
_TENANT = re.compile(r"[A-Za-z0-9._-]{1,64}")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_secret(secret_format: str = "stigmer") -> str:
    if secret_format == "agentstate":
        return new_base62_secret(AGENTSTATE_PREFIX)
    return PREFIX + secrets.token_urlsafe(32)


class CreatedKey(msgspec.Struct, frozen=True):
    record: KeyRecord
    secret: str  # shown once, never stored


def principal_of(r: KeyRecord) -> Principal:
    grants = tuple(Grant.parse(p) for p in r.prefixes) or None
    return Principal(r.tenant, frozenset(r.scopes), grants, "key", r.id, r.expires_at)


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    bad = [s for s in out if s not in GRANTABLE]
    if bad or not out:
        raise InvalidArgument(f"scopes must be some of {', '.join(GRANTABLE)}", field="scopes")
    return out


class Keys:
    """Create, list, revoke and authenticate API keys over a key repository."""

    def __init__(self, repo: KeyRepository, clock: Callable[[], float] = time.time, tokens: Tokens | None = None):
        self.repo = repo
        self.clock = clock
        self.tokens = tokens  # None: capability tokens are not accepted (a store without them)
        self._touched: dict[str, float] = {}
        self._pending: set[asyncio.Future[None]] = set()
        # What the store said, and when (monotonic): a change made through this object clears it at once; one
        # made elsewhere (the offline CLI, another replica) is seen within CACHE_SECONDS.
        self._rows: dict[bytes, tuple[float, KeyRecord | None, Principal | None]] = {}
        self._open_checked = -CACHE_SECONDS

    async def open_mode(self) -> bool:
        """True while no key was ever created (once one exists, never again)."""
        if self._open_checked is None:
            return False
        now = time.monotonic()
        if now - self._open_checked < CACHE_SECONDS:
            return True
        if await self.repo.any():
            self._open_checked = None
            return False
        self._open_checked = now
        return True

    async def _row(self, d: bytes) -> tuple[KeyRecord | None, Principal | None]:
        now = time.monotonic()
        cached = self._rows.get(d)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
        r = await self.repo.by_digest(d)
        if len(self._rows) >= CACHE_ROWS:  # bounded: unknown keys sent by a client must not grow it
            self._rows.clear()
        p = principal_of(r) if r is not None else None
        self._rows[d] = (now, r, p)
        return r, p

    def _forget(self) -> None:
        self._rows.clear()
        if self._open_checked is not None:
            self._open_checked = -CACHE_SECONDS

    async def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of a valid key or capability token, or None (unknown, revoked or expired). Works
        in open mode too: a token is always looked up."""
        if not presented or len(presented) > 256:
            return None
        if is_token(presented):
            return None if self.tokens is None else await self.tokens.authenticate(presented, self.clock())
        d = digest(presented)
        r, p = await self._row(d)
        now = self.clock()
        if r is None or not hmac.compare_digest(r.digest, d) or r.revoked_at is not None or (
                r.expires_at is not None and r.expires_at <= now):
            return None
        if now - self._touched.get(r.id, 0.0) >= TOUCH_EVERY:
            self._touched[r.id] = now
            self._touch_later(r.id, now)
        return p

    def _touch_later(self, key_id: str, now: float) -> None:
        """Record the use without making this request wait for a commit."""
        task = asyncio.ensure_future(self.repo.touch([key_id], now))
        self._pending.add(task)
        task.add_done_callback(self._touch_done)

    def _touch_done(self, task: "asyncio.Future[None]") -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record a key's last use: %s", task.exception())

    async def create(self, tenant: str, scopes: Iterable[str], prefixes: Iterable[str] = (), *, name: str = "",
                     expires_at: float | None = None, secret: str | None = None,
                     by: Principal | None = None, secret_format: str = "stigmer") -> CreatedKey:
        """A new key; `by` (an admin principal) may mint only within what it holds itself. `secret_format`
        "agentstate" makes an `as_live_` secret (for AgentState clients)."""
        if secret_format not in SECRET_FORMATS:
            raise InvalidArgument(f"format must be one of {', '.join(SECRET_FORMATS)}", field="format")
        if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
            raise InvalidArgument("tenant must be 1-64 ASCII letters, digits, '.', '_' or '-'", field="tenant")
        scopes = _check_scopes(scopes)
        grants = tuple(Grant.parse(p) for p in prefixes)
        now = self.clock()
        if expires_at is not None and expires_at <= now:
            raise InvalidArgument("expires_at must be in the future", field="expires_at")
        if secret is not None and len(secret) < MIN_IMPORTED_LENGTH:
            raise InvalidArgument(f"an imported key must have at least {MIN_IMPORTED_LENGTH} characters", field="secret")
        if secret is not None and is_token(secret):
            raise InvalidArgument("an API key cannot look like a capability token (as_cap_)", field="secret")
        if by is not None:
            self._authorize(by, tenant)
            wanted = Principal(tenant, frozenset(scopes), grants or None, expires_at=expires_at)
            if not wanted.within(msgspec.structs.replace(by, tenant=tenant)):
                raise Forbidden("a key cannot be wider than the key that creates it")
        secret = secret or new_secret(secret_format)
        record = KeyRecord(secrets.token_hex(8), digest(secret), tenant, name, scopes,
                           tuple(str(g) for g in grants), now, expires_at)
        if await self.repo.by_digest(record.digest) is not None:
            raise InvalidArgument("this key already exists", field="secret")
        created = await self.repo.create(record)
        self._forget()
        return CreatedKey(created, secret)

    async def list(self, tenant: str | None = None, by: Principal | None = None) -> list[KeyRecord]:
        if by is not None:
            tenant = self._scope_tenant(by, tenant)
        return await self.repo.list(tenant)

    async def revoke(self, key_id: str, by: Principal | None = None) -> KeyRecord:
        tenant = None if by is None or by.tenant == DEFAULT_TENANT else by.tenant
        if by is not None and not by.has(ADMIN):
            raise Forbidden("managing keys needs the admin scope", scope="admin")
        r = await self.repo.revoke(key_id, tenant, self.clock())
        self._forget()
        if r is None:
            raise NotFound("no such key", id=key_id)
        return r

    async def tenants(self) -> list[str]:
        return await self.repo.tenants()

    @staticmethod
    def _authorize(by: Principal, tenant: str) -> None:
        """Admins manage their own tenant's keys; admins of the default tenant manage every tenant."""
        if not by.has(ADMIN):
            raise Forbidden("managing keys needs the admin scope", scope="admin")
        if tenant != by.tenant and (by.tenant != DEFAULT_TENANT or by.grants is not None):
            raise Forbidden("an admin key manages only its own tenant", tenant=tenant)

    def _scope_tenant(self, by: Principal, tenant: str | None) -> str | None:
        if tenant is None and (by.tenant != DEFAULT_TENANT or by.grants is not None):
            tenant = by.tenant
        self._authorize(by, tenant if tenant is not None else by.tenant)
        return tenant
