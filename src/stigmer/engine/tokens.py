"""Capability tokens: attenuable, revocable bearer credentials minted from a key or from another token.

A token is `as_cap_` + 40 base62 characters, stored only as its SHA-256 digest. It holds scopes (native
read/write/watch or the capability scopes), optionally namespace/key prefixes, and optionally an expiry;
it is never wider than the principal that minted it. A token minted by a token is its child: the chain
(`lineage`) goes back to a root token minted by an API key (or in open mode). Revoking a token revokes
every descendant in the same statement; revoking the root API key refuses every token under it.

There is no cache of token rows: each request with a token reads its row (one indexed statement, joined
with the root key), so a revocation made on any replica refuses the very next request on every replica.

Who may revoke a token of a tenant: a credential of that tenant holding `admin`, `*` or `keys:write`; the
open-mode principal; the API key at the root of the token's chain; a token itself or any of its ancestors.
Any key or token may mint (within itself): delegating what one holds needs no further right.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
from typing import Callable, Iterable

import msgspec

from ..store.base import TokenRepository
from .access import CAPABILITY_SCOPES, READ, WATCH, WRITE, Grant, Principal
from .errors import Forbidden, InvalidArgument, NotFound
from .ids import new_id, new_secret
from .types import TokenRecord

log = logging.getLogger("stigmer.tokens")

PREFIX = "as_cap_"
SECRET_LENGTH = len(PREFIX) + 40
TOKEN_SCOPES = (READ, WRITE, WATCH, *CAPABILITY_SCOPES)  # what a token may hold
TOUCH_EVERY = 5.0  # seconds between two `last_used_at` writes of one token
MAX_DEPTH = 32  # tokens in one chain, root included
MAX_NAME = 255
KEY_PREFIX_LENGTH = 12
_TOUCHED_ROWS = 10_000


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def is_token(presented: str) -> bool:
    return presented.startswith(PREFIX)


class CreatedToken(msgspec.Struct, frozen=True):
    record: TokenRecord
    secret: str  # shown once, never stored


def principal_of(r: TokenRecord) -> Principal:
    grants = tuple(Grant.parse(p) for p in r.prefixes) or None
    return Principal(r.tenant, frozenset(r.scopes), grants, "token", r.id, r.expires_at)


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(scopes, str) or not all(isinstance(s, str) for s in scopes):
        raise InvalidArgument("scopes must be a list of strings", field="scopes")
    out = tuple(sorted({s.strip() for s in scopes if s.strip()}))
    if not out or any(s not in TOKEN_SCOPES for s in out):
        raise InvalidArgument(f"scopes must be some of {', '.join(TOKEN_SCOPES)}", field="scopes")
    return out


class Tokens:
    """Mint, list, revoke and authenticate capability tokens over a token repository."""

    def __init__(self, repo: TokenRepository, clock: Callable[[], float]):
        self.repo = repo
        self.clock = clock
        self._touched: dict[str, float] = {}
        self._pending: set[asyncio.Future[None]] = set()

    async def mint(self, by: Principal, name: str, scopes: list[str], prefixes: Iterable[str] = (),
                   expires_at: float | None = None) -> CreatedToken:
        """A token within `by`. Prefixes left out and expiry left out are inherited from `by`; asking for
        more than `by` holds raises Forbidden (reason `beyond_caller`). A past `expires_at` is accepted."""
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
            raise InvalidArgument(f"name must be 1-{MAX_NAME} characters", field="name")
        scopes_ = _check_scopes(scopes)
        if isinstance(prefixes, str) or not all(isinstance(p, str) for p in prefixes):
            raise InvalidArgument("prefixes must be a list of strings", field="prefixes")
        grants = tuple(dict.fromkeys(Grant.parse(p) for p in prefixes)) or by.grants
        if expires_at is not None and (not isinstance(expires_at, (int, float)) or not math.isfinite(expires_at)):
            raise InvalidArgument("expires_at must be a time in seconds", field="expires_at")
        if expires_at is None:
            expires_at = by.expires_at
        if by.kind not in ("key", "open", "token"):
            raise Forbidden("this credential cannot mint tokens", reason="beyond_caller")
        wanted = Principal(by.tenant, frozenset(scopes_), grants, "token", expires_at=expires_at)
        if not wanted.within(by):
            raise Forbidden("a token cannot be wider than the credential that mints it", reason="beyond_caller")
        parent = None
        if by.kind == "token":
            parent = await self.repo.get(by.tenant, by.key_id or "")
            if parent is None:
                raise Forbidden("the parent token does not exist", reason="parent_revoked")
            if len(parent.ancestors()) + 2 > MAX_DEPTH:
                raise InvalidArgument(f"a chain of tokens holds at most {MAX_DEPTH}", field="scopes")
        token_id, secret = new_id(), new_secret(PREFIX)
        record = TokenRecord(
            token_id, digest(secret), by.tenant, name, scopes_, tuple(str(g) for g in grants or ()),
            parent.id if parent else None, (parent.lineage if parent else "") + token_id + "/",
            parent.key_id if parent else (by.key_id if by.kind == "key" else None), secret[:KEY_PREFIX_LENGTH],
            self.clock(), expires_at)
        if not await self.repo.create(record):
            raise Forbidden("the parent token was revoked", reason="parent_revoked")
        return CreatedToken(record, secret)

    async def list(self, tenant: str, by: Principal | None = None) -> list[TokenRecord]:
        """The tenant's tokens that are not revoked (expired ones included), oldest first; with `by`, only
        those it may see (all with keys:read or keys:write; else those it may revoke)."""
        records = await self.repo.list(tenant)
        if by is None or by.kind == "open" or by.has("keys:read"):
            return records
        return [r for r in records if may_revoke(by, r)]

    async def get(self, tenant: str, token_id: str) -> TokenRecord | None:
        return await self.repo.get(tenant, token_id)

    async def revoke(self, by: Principal, token_id: str) -> TokenRecord:
        """Revoke a token of `by`'s tenant and every descendant at once (idempotent)."""
        record = await self.repo.get(by.tenant, token_id) if isinstance(token_id, str) else None
        if record is None:
            raise NotFound("no such token", id=token_id)
        if not may_revoke(by, record):
            raise Forbidden("revoking this token needs keys:write, its root key, or itself or an ancestor",
                            scope="keys:write")
        revoked = await self.repo.revoke(by.tenant, token_id, self.clock())
        if revoked is None:
            raise NotFound("no such token", id=token_id)
        return revoked

    async def authenticate(self, presented: str, now: float | None = None) -> Principal | None:
        """The principal of a valid token, or None: unknown, revoked (or an ancestor revoked: revocation
        marks every descendant), expired, or its root key revoked."""
        if len(presented) != SECRET_LENGTH or not is_token(presented):
            return None
        d = digest(presented)
        found = await self.repo.by_digest(d)
        if found is None:
            return None
        r, key_revoked = found
        now = self.clock() if now is None else now
        if not hmac.compare_digest(r.digest, d) or key_revoked or r.revoked_at is not None or (
                r.expires_at is not None and r.expires_at <= now):
            return None
        if now - self._touched.get(r.id, -math.inf) >= TOUCH_EVERY:
            if len(self._touched) >= _TOUCHED_ROWS:
                self._touched.clear()
            self._touched[r.id] = now
            self._touch_later(r.id, now)
        return principal_of(r)

    def _touch_later(self, token_id: str, now: float) -> None:
        """Record the use without making this request wait for a commit."""
        task = asyncio.ensure_future(self.repo.touch([token_id], now))
        self._pending.add(task)
        task.add_done_callback(self._touch_done)

    def _touch_done(self, task: "asyncio.Future[None]") -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record a token's last use: %s", task.exception())


def may_revoke(by: Principal, r: TokenRecord) -> bool:
    if by.tenant != r.tenant:
        return False
    if by.kind == "open" or by.has("keys:write"):
        return True
    if by.kind == "token":
        return by.key_id in r.ancestors() or by.key_id == r.id
    return by.kind == "key" and by.key_id is not None and by.key_id == r.key_id
